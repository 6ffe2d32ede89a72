"""Generation -> frame available to a trigger, on the RTSP simulator's time-coded pattern: the
gateway's capture (CaptureBuffer + PyAV) beside GStreamer's own client (`rtspsrc latency=0`,
the floor) and a bare OpenCV reader, in one run. Also how wrong the gateway's frame time is
(its exposure estimate minus the true generation time) with latency_ms from the probe.

    python -m bench.rtsp_latency --size 1280x720 --frames 300
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np

from bench.report import summary, write_report
from gateway.capture import CaptureBuffer
from gateway.cli_camera import measure_latency_ms, timecode_ms
from gateway.sources import PyAVSource
from simulators.rtsp_camera import SYSTEM_PYTHON, RtspCamera

SKIP = 60
"""Frames left out at the start: the burst queued before a connection."""


def gateway_delays(url: str, frames: int, latency_ms: float) -> tuple[list[float], list[float]]:
    """Per frame: generation -> in the capture buffer, and frame time - generation time."""
    capture = CaptureBuffer("bench", PyAVSource(url), latency_s=latency_ms / 1000)
    capture.start()
    available: list[float] = []
    error: list[float] = []
    seen = 0
    try:
        deadline = time.monotonic() + frames / 10 + 30
        while len(available) < frames + SKIP and time.monotonic() < deadline:
            frame = capture.latest()
            if frame is None or frame.frame_id == seen:
                time.sleep(0.001)
                continue
            seen = frame.frame_id
            now_ms = time.time() * 1000
            generated = timecode_ms(frame.image)
            available.append(now_ms - generated)
            error.append(frame.captured_at * 1000 - generated)
    finally:
        capture.stop()
    return available[SKIP:], error[SKIP:]


def opencv_delays(url: str, frames: int) -> list[float]:
    capture = cv2.VideoCapture(url)
    delays = []
    for _ in range(frames + SKIP):
        ok, image = capture.read()
        if not ok:
            break
        delays.append(time.time() * 1000 - timecode_ms(np.asarray(image, np.uint8)))
    capture.release()
    return delays[SKIP:]


def gstreamer_delays(url: str, frames: int) -> list[float]:
    client = Path(__file__).with_name("gst_client.py")
    done = subprocess.run(
        [str(SYSTEM_PYTHON), str(client), url, str(frames + SKIP)],
        capture_output=True, text=True, timeout=frames / 10 + 60, check=True,
    )  # fmt: skip
    return [float(line) for line in done.stdout.split()][SKIP:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args(argv)
    width, height = (int(part) for part in args.size.split("x"))
    with RtspCamera(width=width, height=height, fps=args.fps, pattern="timecode") as camera:
        probe = PyAVSource(camera.url)
        probe.open()
        latency_ms = float(int(min(measure_latency_ms(probe)[0]) + 0.999))
        probe.close()
        floor = summary(gstreamer_delays(camera.url, args.frames))
        available, error = gateway_delays(camera.url, args.frames, latency_ms)
        gateway, estimate = summary(available), summary(error)
        opencv = summary(opencv_delays(camera.url, args.frames))
    interval = 1000 / args.fps
    lines = [
        f"Generation -> frame available, RTSP H.264 {args.size} @ {args.fps} fps "
        f"(frame interval {interval:.1f} ms)",
        "",
        "| reader | p50 ms | p99 ms | n | p50 - floor |",
        "|---|---|---|---|---|",
    ]
    for name, figures in (
        ("GStreamer rtspsrc latency=0 (floor)", floor),
        ("gateway (CaptureBuffer + PyAV)", gateway),
        ("bare OpenCV", opencv),
    ):
        added = figures["p50_ms"] - floor["p50_ms"]
        lines.append(
            f"| {name} | {figures['p50_ms']:.1f} | {figures['p99_ms']:.1f} | {figures['n']} "
            f"| {added:+.1f} |"
        )
    lines += [
        "",
        f"Gateway frame time - true generation time, latency_ms {latency_ms:g} from the probe: "
        f"p50 {estimate['p50_ms']:+.1f} ms, p99 {estimate['p99_ms']:+.1f} ms",
    ]
    write_report(f"rtsp_latency_{args.size}", {"floor": floor, "gateway": gateway,
                 "opencv": opencv, "frame_time_error": estimate}, lines)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
