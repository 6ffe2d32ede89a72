"""The demo's conveyor scene as a real RTSP camera: frames are rendered here at the camera's
rate and streamed through GStreamer's RTSP server (`rtsp_server.py --pattern stdin`), so the
gateway reads H.264 over RTSP with its real delay while the line's photo-eye and ground truth
come from the same scene, as with the synthetic camera."""

from __future__ import annotations

import threading
import time

from gateway.sources.scene import ConveyorScene, sensed
from simulators.process import SimulatorProcess
from simulators.rtsp_camera import RtspCamera


class RtspSceneCamera(SimulatorProcess):
    """`with RtspSceneCamera() as camera:` serves the scene on `camera.url`."""

    def __init__(self, scene: ConveyorScene | None = None, fps: int = 30) -> None:
        self.scene = scene or ConveyorScene()
        self._fps = fps
        self._server = RtspCamera(self.scene.width, self.scene.height, fps, pattern="stdin")
        self._index = 0
        self._stop = threading.Event()
        self._feeder: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self._server.url

    def part_in_position(self) -> int | None:
        """The number of the part resting in the newest frame, else None."""
        return sensed(self.scene.part_in_position, self._index - 1)

    def part_arrived(self) -> int | None:
        """The PLC's photo-eye: the number of the part that has just come to rest in the newest
        frame (`ConveyorScene.part_arrived`), else None."""
        return sensed(self.scene.part_arrived, self._index - 1)

    def start(self) -> None:
        self._server.start()
        self._stop.clear()
        self._feeder = threading.Thread(target=self._feed, name="rtsp-scene", daemon=True)
        self._feeder.start()

    def stop(self) -> None:
        self._stop.set()
        if self._feeder is not None:
            self._feeder.join(5)
        self._server.stop()

    def _feed(self) -> None:
        interval = 1.0 / self._fps
        due = time.monotonic()
        while not self._stop.is_set():
            frame = self.scene.render(self._index).tobytes()
            if not self._server.write_frame(frame):
                return
            self._index += 1
            due = max(due + interval, time.monotonic() - interval)
            self._stop.wait(max(0.0, due - time.monotonic()))
