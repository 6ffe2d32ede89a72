"""GigE Vision receive cost on Aravis' camera simulator, free-running: the gateway's capture
(CaptureBuffer + GigESource, Mono8 as BGR) beside a bare Aravis loop (pop and push buffers,
nothing else), each in its own process; CPU seconds per second of that process.

    python -m bench.gige_capture [--size 1920x1080] [--seconds 10]

Needs the gige extra and Debian's aravis-tools (`make test` installs both).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

from bench.report import write_report
from simulators.gige_camera import FakeGigECamera, gige_available


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bare(device: str, width: int, height: int, seconds: float) -> tuple[int, float, float]:
    import gi

    gi.require_version("Aravis", "0.8")
    from gi.repository import Aravis

    Aravis.update_device_list()
    camera = Aravis.Camera.new(device)
    camera.set_region(0, 0, width, height)
    camera.set_acquisition_mode(Aravis.AcquisitionMode.CONTINUOUS)
    stream = camera.create_stream(None, None)
    for _ in range(8):
        stream.push_buffer(Aravis.Buffer.new_allocate(camera.get_payload()))
    camera.start_acquisition()
    time.sleep(1.0)
    frames, cpu, started = 0, _cpu_s(), time.monotonic()
    while time.monotonic() - started < seconds:
        buffer = stream.timeout_pop_buffer(1_000_000)
        if buffer is not None:
            frames += buffer.get_status() == Aravis.BufferStatus.SUCCESS
            stream.push_buffer(buffer)
    elapsed = time.monotonic() - started
    camera.stop_acquisition()
    return frames, _cpu_s() - cpu, elapsed


def gateway(device: str, width: int, height: int, seconds: float) -> tuple[int, float, float]:
    from gateway.capture import CaptureBuffer
    from gateway.config import GigESourceConfig
    from gateway.sources.gige import GigESource

    region = {"x": 0, "y": 0, "width": width, "height": height}
    source = GigESource(
        GigESourceConfig.model_validate({"type": "gige", "device": device, "region": region})
    )
    capture = CaptureBuffer("bench", source)
    capture.start()
    time.sleep(1.0)
    before, cpu, started = capture.health().frames, _cpu_s(), time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    frames, used = capture.health().frames - before, _cpu_s() - cpu
    capture.stop()
    return frames, used, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "DEVICE"))
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.split("x"))
    if args.child:
        variant, device = args.child
        measure = bare if variant == "bare" else gateway
        frames, cpu, elapsed = measure(device, width, height, args.seconds)
        print(json.dumps({"variant": variant, "fps": frames / elapsed, "cpu": cpu / elapsed}))
        return 0
    missing = gige_available()
    if missing is not None:
        print(missing, file=sys.stderr)
        return 1
    rows: list[dict[str, Any]] = []
    with FakeGigECamera() as camera:
        for variant in ("bare", "gateway"):
            done = subprocess.run(
                [sys.executable, "-m", "bench.gige_capture", "--size", args.size,
                 "--seconds", str(args.seconds), "--child", variant, camera.device_id],
                capture_output=True, text=True, timeout=args.seconds + 60, check=True,
            )  # fmt: skip
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    floor = rows[0]["cpu"]
    lines = [
        f"GigE Vision receive, Aravis fake camera, Mono8 {args.size}, free-running, one run",
        "",
        "| reader | fps | CPU s/s | ratio to bare Aravis |",
        "|---|---|---|---|",
        *(
            f"| {row['variant']} | {row['fps']:.1f} | {row['cpu']:.3f} | {row['cpu'] / floor:.2f} |"
            for row in rows
        ),
    ]
    write_report(f"gige_capture_{args.size}", {"rows": rows}, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
