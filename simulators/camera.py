"""A synthetic conveyor camera: parts move across the image, every Nth one defective.

Each frame is a pure function of its index, so tests know the ground truth of any frame, and
the index is written into the top rows as a binary stripe (`decode_frame_index`) so a test can
tell exactly which frame a result was computed on.

Run it standalone to write a video file: `python -m simulators.camera --help`.
"""

from __future__ import annotations

import argparse
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gateway.capture import Image, SourceError

STRIPE_BITS = 24
STRIPE_ROWS = 6
BACKGROUND_BGR = (70, 70, 70)
GOOD_BGR = (60, 170, 60)
DEFECT_BGR = (50, 60, 200)


@dataclass(frozen=True, slots=True)
class Part:
    index: int
    center_x: float
    defective: bool


class ConveyorScene:
    """Geometry and ground truth of the generated scene."""

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        part_period_frames: int = 30,
        defect_every: int = 4,
    ) -> None:
        if width < STRIPE_BITS * 2:
            raise ValueError(f"width must be at least {STRIPE_BITS * 2} pixels")
        self.width = width
        self.height = height
        self.period = part_period_frames
        self.defect_every = defect_every
        self.part_size = int(height * 0.4)
        # Parts are half an image width apart and cross the centre once per period.
        self.speed = (width / 2) / part_period_frames

    def is_defective(self, part_index: int) -> bool:
        return self.defect_every > 0 and part_index % self.defect_every == self.defect_every - 1

    def parts(self, frame_index: int) -> list[Part]:
        """Parts at least partly visible in frame `frame_index`."""
        half = self.part_size / 2
        visible = []
        # Part k is at the image centre at frame k * period.
        first = (frame_index - 2 * self.period) // self.period
        for k in range(max(first, 0), frame_index // self.period + 3):
            x = self.width / 2 + (frame_index - k * self.period) * self.speed
            if -half < x < self.width + half:
                visible.append(Part(k, x, self.is_defective(k)))
        return visible

    def part_in_position(self, frame_index: int, tolerance_px: float | None = None) -> Part | None:
        """The part whose centre is within `tolerance_px` of the image centre (the "sensor")."""
        tolerance = self.speed / 2 if tolerance_px is None else tolerance_px
        for part in self.parts(frame_index):
            if abs(part.center_x - self.width / 2) <= tolerance:
                return part
        return None

    def render(self, frame_index: int) -> Image:
        image = np.empty((self.height, self.width, 3), np.uint8)
        image[:] = BACKGROUND_BGR
        # belt edges
        cv2.rectangle(
            image, (0, self.height // 6), (self.width, self.height // 6 + 4), (40, 40, 40), -1
        )
        cv2.rectangle(
            image,
            (0, self.height * 5 // 6),
            (self.width, self.height * 5 // 6 + 4),
            (40, 40, 40),
            -1,
        )
        half = self.part_size // 2
        cy = self.height // 2
        for part in self.parts(frame_index):
            x0, x1 = int(part.center_x) - half, int(part.center_x) + half
            colour = DEFECT_BGR if part.defective else GOOD_BGR
            cv2.rectangle(image, (x0, cy - half), (x1, cy + half), colour, -1)
            cv2.circle(image, (int(part.center_x), cy), max(half // 5, 2), (30, 30, 30), -1)
            cv2.putText(
                image,
                f"P{part.index}",
                (x0 + 4, cy - half + 18),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.5,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
        cv2.putText(
            image,
            f"#{frame_index}",
            (8, self.height - 10),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
        encode_frame_index(image, frame_index)
        return image


def encode_frame_index(image: Image, frame_index: int) -> None:
    """Write the index into the top rows: a black or white cell per bit, most significant first."""
    cell = image.shape[1] // STRIPE_BITS
    for bit in range(STRIPE_BITS):
        on = (frame_index >> (STRIPE_BITS - 1 - bit)) & 1
        image[:STRIPE_ROWS, bit * cell : (bit + 1) * cell] = 255 if on else 0


def decode_frame_index(image: Image) -> int:
    """Read back `encode_frame_index`; survives JPEG/H.264 compression of the stripe."""
    cell = image.shape[1] // STRIPE_BITS
    value = 0
    for bit in range(STRIPE_BITS):
        patch = image[1 : STRIPE_ROWS - 1, bit * cell + cell // 4 : (bit + 1) * cell - cell // 4]
        value = (value << 1) | int(patch.mean() > 127)
    return value


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


def write_video(path: Path, scene: ConveyorScene, frames: int, fps: float = 30.0) -> Path:
    """Record `frames` frames of the scene to a video file (MJPG in .avi: every OpenCV reads it)."""
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (scene.width, scene.height)
    )
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    try:
        for index in range(frames):
            writer.write(scene.render(index))
    finally:
        writer.release()
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.camera",
        description="Write the synthetic conveyor scene to a video file (MJPG .avi).",
    )
    parser.add_argument("output", type=Path, help="video file to write, e.g. conveyor.avi")
    parser.add_argument("--frames", type=int, default=300, help="number of frames (default 300)")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate (default 30)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--defect-every", type=int, default=4, help="every Nth part defective")
    args = parser.parse_args(argv)
    scene = ConveyorScene(args.width, args.height, defect_every=args.defect_every)
    write_video(args.output, scene, args.frames, args.fps)
    print(f"wrote {args.frames} frames to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
