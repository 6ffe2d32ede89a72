"""A private Mosquitto broker on a free loopback port, for the tests, benchmarks and demo."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from simulators.net import free_port


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        raise FileNotFoundError("mosquitto is not installed (`make test` installs it)")
    return found


class Mosquitto:
    """One broker process; `restart()` keeps its port (for broker-restart tests)."""

    def __init__(self, workdir: Path, settings: str = "allow_anonymous true\n") -> None:
        """`settings`: listener options (TLS files, password_file...) after the listener line."""
        self.port = free_port()
        self._config = workdir / "mosquitto.conf"
        # As root, mosquitto drops to user `mosquitto`, who cannot read the test's private files.
        run_as = "user root\n" if os.geteuid() == 0 else ""
        self._config.write_text(
            run_as + "persistence false\n"
            "log_type error\n"
            f"listener {self.port} 127.0.0.1\n"
            "set_tcp_nodelay true\n" + settings
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self._config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"mosquitto exited: {stderr}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on port {self.port}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
            if self._process.stderr is not None:
                self._process.stderr.close()
            self._process = None

    def kill(self) -> None:
        """SIGKILL: the broker dies without a goodbye to anyone."""
        if self._process is not None:
            self._process.kill()
        self.stop()
