"""Aravis' GigE Vision camera simulator (`arv-fake-gv-camera-0.8`, Debian's aravis-tools) as a
process: started on 127.0.0.1, killed (a camera unplugged) and started again.

GigE Vision's control port (UDP 3956) is fixed by the standard, so one simulated camera runs on
127.0.0.1 at a time."""

from __future__ import annotations

import shutil
import subprocess

from simulators.process import SimulatorProcess

FAKE_CAMERA = "arv-fake-gv-camera-0.8"


def gige_available() -> str | None:
    """None when the simulator and Aravis' Python bindings are here, else what is missing."""
    if shutil.which(FAKE_CAMERA) is None:
        return f"{FAKE_CAMERA} is missing (Debian's aravis-tools; `make test` installs it)"
    try:
        import gi

        gi.require_version("Aravis", "0.8")
    except (ImportError, ValueError):
        return "Aravis' bindings are missing (the gige extra and gir1.2-aravis-0.8)"
    return None


class FakeGigECamera(SimulatorProcess):
    def __init__(self, serial: str = "GW0001") -> None:
        self.serial = serial
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def device_id(self) -> str:
        return f"Aravis-Fake-{self.serial}"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [FAKE_CAMERA, "-i", "127.0.0.1", "-s", self.serial],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        self.unplug()

    def unplug(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(timeout=10)
