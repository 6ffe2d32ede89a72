"""Capture cost per RTSP stream: the gateway's capture buffer (PyAV) beside the floors in the
same run, on one GStreamer RTSP server (a shared media: one encoder, N readers).

Each variant runs in its own process reading N streams for `--seconds`; the figure is that
process's CPU seconds per second, divided by N. Variants:
  gateway   CaptureBuffer + PyAVSource, as a stream uses them (decode every frame, BGR)
  on_trigger  the same with `decode: on_trigger` (packets kept, nothing decoded until used)
  pyav      a bare PyAV decode loop per stream (frames to BGR arrays), one thread each
  opencv    a bare cv2.VideoCapture read loop per stream, one thread each
  demux     PyAV reading packets only, no decoding (what decoding on a trigger would cost)

    python -m bench.capture --streams 1 2 4 --size 1280x720 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from typing import Any

import av
import av.error
import cv2

from bench.report import summary, write_report
from simulators.rtsp_camera import RtspCamera

VARIANTS = ("gateway", "on_trigger", "pyav", "opencv", "demux")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _open(url: str) -> Any:
    """Readers connecting at once to a server preparing its shared media are sometimes refused,
    or the server aborts (GstRtspServer 1.22, gst_rtsp_media_get_rates): three attempts (the
    gateway's grabber retries too); a run whose server died shows 0 fps and is run again."""
    for attempt in range(3):
        try:
            return av.open(url, options={"rtsp_transport": "tcp"}, timeout=(5, 5))
        except av.error.FFmpegError:
            if attempt == 2:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def _pyav_loop(url: str, stop: threading.Event, counts: list[int], decode: bool) -> None:
    container = _open(url)
    stream = container.streams.video[0]
    stream.thread_type = "SLICE"
    try:
        for packet in container.demux(stream):
            if stop.is_set():
                break
            if decode:
                for frame in packet.decode():
                    frame.to_ndarray(format="bgr24")
                    counts[0] += 1
            else:
                counts[0] += 1
    finally:
        container.close()


def _opencv_loop(url: str, stop: threading.Event, counts: list[int]) -> None:
    capture = cv2.VideoCapture(url)
    while not stop.is_set() and capture.read()[0]:
        counts[0] += 1
    capture.release()


def run_variant(variant: str, url: str, streams: int, seconds: float) -> dict[str, Any]:
    """In this process: N readers for `seconds` (after a 2 s warm-up); CPU and frames."""
    stop = threading.Event()
    counts = [[0] for _ in range(streams)]
    captures = []
    threads = []
    if variant in ("gateway", "on_trigger"):
        from gateway.capture import CaptureBuffer
        from gateway.sources import PyAVSource

        for index in range(streams):
            source = PyAVSource(url, decode_on_trigger=variant == "on_trigger")
            capture = CaptureBuffer(f"s{index}", source)
            capture.start()
            captures.append(capture)
    else:
        for index in range(streams):
            target: Any = _opencv_loop if variant == "opencv" else _pyav_loop
            args: tuple[Any, ...] = (url, stop, counts[index])
            if variant != "opencv":
                args += (variant == "pyav",)
            threads.append(threading.Thread(target=target, args=args, daemon=True))
            threads[-1].start()
    time.sleep(2.0)
    frames_before = _frames(captures, counts)
    cpu_before, wall_before = _cpu_s(), time.monotonic()
    time.sleep(seconds)
    cpu, wall = _cpu_s() - cpu_before, time.monotonic() - wall_before
    frames = _frames(captures, counts) - frames_before
    decode_ms = _decode_on_trigger_ms(captures) if variant == "on_trigger" else None
    stop.set()
    for capture in captures:
        capture.stop()
    for thread in threads:
        thread.join(10)  # a thread left inside OpenCV at exit aborts the process
    return {
        "variant": variant,
        "streams": streams,
        "cpu_per_stream": cpu / wall / streams,
        "fps_per_stream": frames / wall / streams,
        "trigger_decode_ms": decode_ms,
    }


def _decode_on_trigger_ms(captures: list[Any]) -> dict[str, float] | None:
    """What a trigger pays to decode the newest frame (its GOP so far), 30 times."""
    times = []
    for _ in range(30):
        frame = captures[0].latest()
        if frame is None:
            continue
        started = time.monotonic()
        frame.image  # noqa: B018 (decodes)
        times.append((time.monotonic() - started) * 1000)
        time.sleep(0.037)
    return summary(times) if times else None


def _frames(captures: list[Any], counts: list[list[int]]) -> int:
    if captures:
        return sum(capture.health().frames for capture in captures)
    return sum(count[0] for count in counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "URL", "STREAMS"))
    args = parser.parse_args(argv)
    if args.child:  # one measurement, in its own process
        variant, url, streams = args.child
        print(json.dumps(run_variant(variant, url, int(streams), args.seconds)), flush=True)
        return 0
    width, height = (int(part) for part in args.size.split("x"))
    rows: list[dict[str, Any]] = []
    for streams in args.streams:
        for variant in args.variants:
            # a fresh server per measurement, shared (one encoder for N readers): an aborted
            # server then costs one measurement
            with RtspCamera(width=width, height=height, fps=args.fps, shared=True) as camera:
                done = subprocess.run(
                    [sys.executable, "-m", "bench.capture", "--seconds", str(args.seconds),
                     "--child", variant, camera.url, str(streams)],
                    capture_output=True, text=True, timeout=args.seconds + 120, check=True,
                )  # fmt: skip
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    lines = [
        f"Capture CPU per stream, RTSP H.264 {args.size} @ {args.fps} fps, {args.seconds:g} s",
        "",
        f"| streams | variant | CPU s/s per stream | fps per stream | ratio to "
        f"{'bare PyAV' if 'pyav' in args.variants else args.variants[-1]} |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        same = [r for r in rows if r["streams"] == row["streams"]]
        base = "pyav" if "pyav" in args.variants else args.variants[-1]
        floor = next(r for r in same if r["variant"] == base)
        ratio = row["cpu_per_stream"] / max(floor["cpu_per_stream"], 1e-9)
        lines.append(
            f"| {row['streams']} | {row['variant']} | {row['cpu_per_stream']:.3f} | "
            f"{row['fps_per_stream']:.1f} | {ratio:.2f} |"
        )
    for row in rows:
        decode = row.get("trigger_decode_ms")
        if decode:
            lines.append(
                f"\non_trigger, {row['streams']} stream(s): decoding the newest frame on a trigger "
                f"p50 {decode['p50_ms']:.1f} ms, p99 {decode['p99_ms']:.1f} ms (n={decode['n']})"
            )
    write_report(f"capture_{args.size}", {"rows": rows}, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
