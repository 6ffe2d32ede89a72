"""The synthetic camera: the conveyor scene as a `FrameSource`, for the demo and the tests."""

from __future__ import annotations

import threading

from gateway.frame_source import Image, SourceError
from gateway.sources.scene import ConveyorScene, sensed


class SyntheticCamera:
    """A `FrameSource` that renders the conveyor scene, paced at `fps` by the capture thread.

    `unplug()` makes the camera vanish (reads fail, opens fail) until `plug()`: the cable
    being pulled, for the demo and for tests of disconnect handling.
    """

    def __init__(self, scene: ConveyorScene, fps: float = 30.0) -> None:
        self.scene = scene
        self._fps = fps
        self._index = 0
        self._plugged = threading.Event()
        self._plugged.set()
        self.opens = 0

    @property
    def description(self) -> str:
        return f"synthetic camera {self.scene.width}x{self.scene.height}@{self._fps:g}"

    @property
    def paced_fps(self) -> float | None:
        return self._fps

    def unplug(self) -> None:
        self._plugged.clear()

    def plug(self) -> None:
        self._plugged.set()

    def part_in_position(self) -> int | None:
        """The number of the part resting in the newest frame, else None."""
        return sensed(self.scene.part_in_position, self._index - 1)

    def part_arrived(self) -> int | None:
        """The PLC's photo-eye: the number of the part that has just come to rest in the newest
        frame (`ConveyorScene.part_arrived`), else None."""
        return sensed(self.scene.part_arrived, self._index - 1)

    def open(self) -> None:
        self.opens += 1
        if not self._plugged.is_set():
            raise SourceError(f"{self.description}: no camera at this address (unplugged)")

    def read(self) -> Image | None:
        if not self._plugged.is_set():
            return None
        image = self.scene.render(self._index)
        self._index += 1
        return image

    def close(self) -> None:
        pass
