"""Starts and stops the RTSP camera simulator (`simulators/rtsp_server.py`, GStreamer's RTSP
server) as its own process under Debian's python3, and stalls, resumes or restarts it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from simulators.process import SimulatorProcess

SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = Path("/usr/bin/python3")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def rtsp_available() -> str | None:
    """None when the simulator can run here, else what is missing (and what installs it)."""
    if not SYSTEM_PYTHON.exists():
        return "Debian's python3 is missing"
    probe = subprocess.run(
        [str(SYSTEM_PYTHON), str(SERVER), "--check"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        problem = probe.stderr.strip().splitlines()[-1:] or ["failed"]
        return f"GStreamer's RTSP server cannot run ({problem[0]}): `make test` installs it"
    return None


class RtspCamera(SimulatorProcess):
    """`with RtspCamera() as camera: camera.url ...`; `stall()`/`resume()` send SIGSTOP/SIGCONT,
    `restart()` kills it and starts it again on the same port."""

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        fps: int = 30,
        gop: int = 30,
        pattern: str = "ball",
        damage: int = 0,
        shared: bool = False,
    ) -> None:
        """`pattern="stdin"`: the frames come from `write_frame` (BGR, width x height), for one
        client. `shared`: one encoder for all clients (benches); else a pipeline per client,
        because GstRtspServer 1.22 aborts when clients join a shared media together."""
        self.port = free_port()
        self._args = ["--width", str(width), "--height", str(height), "--pattern", pattern]
        self._args += ["--fps", str(fps), "--gop", str(gop), "--damage", str(damage)]
        self._args += ["--shared"] if shared else []
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/scene"

    def start(self, timeout_s: float = 20.0) -> None:
        # its warnings go to a file: a pipe nobody reads fills up and stalls the server
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        process = subprocess.Popen(
            [str(SYSTEM_PYTHON), str(SERVER), "--port", str(self.port), *self._args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
            env={**os.environ, "GST_DEBUG": "0"},
        )
        assert process.stdout is not None
        line = process.stdout.readline()  # `ready` once listening (or EOF if it failed)
        if line.strip() != b"ready":
            process.kill()
            process.wait(timeout_s)
            self._errors.seek(0)
            error = self._errors.read().decode(errors="replace").strip()
            raise RuntimeError(f"RTSP simulator did not start: {error}")
        self._process = process

    def write_frame(self, frame: bytes) -> bool:
        """Send a frame to a `stdin` camera; False once the simulator is gone."""
        process = self._process
        if process is None or process.stdin is None:
            return False
        try:
            process.stdin.write(frame)
            process.stdin.flush()
        except (BrokenPipeError, ValueError):
            return False
        return True

    def stall(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        self._errors.close()
        process.send_signal(signal.SIGCONT)  # a stalled process cannot handle SIGTERM
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)

    def _signal(self, number: int) -> None:
        assert self._process is not None, "not running"
        self._process.send_signal(number)
