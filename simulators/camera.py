"""The demo line's photo-eye helpers and a video writer for the synthetic conveyor scene
(the scene and its camera are in `gateway.sources`).

Run it standalone to write a video file: `python -m simulators.camera --help`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import cv2

from gateway.sources.scene import ConveyorScene

PartSensor = Callable[[], int | None]
"""A part sensor: the number of the part in position (`SyntheticCamera.part_in_position`), or
just come to rest (`part_arrived`, the PLC's photo-eye), else None."""


def wait_for_part(sensor: PartSensor | None, timeout_s: float = 2.0) -> None:
    """Block until a part is in position (at most `timeout_s`); at once without a sensor."""
    deadline = time.monotonic() + timeout_s
    while sensor is not None and sensor() is None and time.monotonic() < deadline:
        time.sleep(0.01)


async def await_part(sensor: PartSensor | None, timeout_s: float = 2.0) -> None:
    """`wait_for_part` for the event loop (a sensor is polled, as a PLC scans its inputs)."""
    deadline = time.monotonic() + timeout_s
    while sensor is not None and sensor() is None and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


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
