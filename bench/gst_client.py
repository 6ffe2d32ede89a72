"""GStreamer's own RTSP client as the latency floor (`rtspsrc latency=0 ! decodebin ! appsink`),
run by Debian's python3 (PyGObject): for each frame of the time-coded pattern, generation ->
decoded frame available, in ms, one per line. No numpy: the time code is read from the GRAY8
bytes directly (see simulators/rtsp_server.py)."""

from __future__ import annotations

import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

BITS = 48


def timecode(data: bytes, width: int, height: int) -> int:
    row = (height // 8) * width
    block = width // BITS
    value = 0
    for bit in range(BITS):
        start = row + bit * block + block // 4
        middle = data[start : start + block // 2]
        value = (value << 1) | int(sum(middle) > 128 * len(middle))
    return value


def main() -> int:
    url, frames = sys.argv[1], int(sys.argv[2])
    Gst.init(None)
    pipeline = Gst.parse_launch(
        f"rtspsrc location={url} latency=0 protocols=tcp ! decodebin ! videoconvert ! "
        "video/x-raw,format=GRAY8 ! appsink name=sink sync=false max-buffers=1 drop=true"
    )
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    seen = 0
    try:
        while seen < frames:
            sample = sink.emit("try-pull-sample", 5 * Gst.SECOND)
            if sample is None:
                return 1
            arrived = time.time() * 1000
            structure = sample.get_caps().get_structure(0)
            width, height = structure.get_value("width"), structure.get_value("height")
            buffer = sample.get_buffer()
            ok, info = buffer.map(Gst.MapFlags.READ)
            if not ok:
                continue
            try:
                generated = timecode(bytes(info.data), width, height)
            finally:
                buffer.unmap(info)
            print(f"{arrived - generated:.2f}", flush=True)
            seen += 1
    finally:
        pipeline.set_state(Gst.State.NULL)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
