"""A real RTSP camera for tests and the demo: GStreamer's RTSP server (GstRtspServer) serving a
live H.264 test pattern on rtsp://127.0.0.1:<port>/scene.

`--pattern timecode` serves frames that carry the wall-clock time they were generated, as a row
of 48 black/white blocks (milliseconds since the epoch, modulo 2**48, most significant bit
first) across the top quarter of the frame: a reader compares it with when the frame reached it
(`simulators.timecode` decodes it). Blocks that large survive H.264 at any quality.
`--pattern stdin` serves the BGR frames written to its standard input (width * height * 3 bytes
each, as they come): the demo renders its conveyor scene and streams it through this.

Run by Debian's own python3, which has PyGObject and GStreamer's typelibs (packages python3-gi,
gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-{base,good,ugly}), as a separate process like
Mosquitto: it imports nothing of the gateway. `simulators.rtsp_camera` starts and stops it.
Prints `ready` once listening; SIGSTOP stalls it (the connection stays open, nothing flows),
SIGCONT resumes it, SIGTERM stops it.

`--damage N` damages every Nth keyframe, the way a lossy link or a sender's bug does: keyframes
are encoded in 4 slices and one is dropped before the payloader (the receiver's decoder must
conceal it, and the damage carries through the GOP).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

TIMECODE_BITS = 48
ENCODER = "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} ! "
PAYLOADER = "rtph264pay name=pay0 pt=96 config-interval=1 )"
BYTE_STREAM = "video/x-h264,stream-format=byte-stream"
DAMAGING = (
    f'option-string="slices=4" ! {BYTE_STREAM} ! h264parse ! {BYTE_STREAM},alignment=nal ! '
    f"identity name=damage ! h264parse ! {BYTE_STREAM},alignment=au ! "
)
IDR_SLICE, SPS = 5, 7


def pipeline(pattern: str, width: int, height: int, fps: int, gop: int, damage: int) -> str:
    caps = f"width={width},height={height},framerate={fps}/1"
    if pattern == "timecode":
        source = "( appsrc name=timecode is-live=true format=time "
        source += (
            f"caps=video/x-raw,format=GRAY8,{caps} ! videoconvert ! video/x-raw,format=I420 ! "
        )
    elif pattern == "stdin":
        source = "( appsrc name=feed is-live=true do-timestamp=true format=time "
        source += f"caps=video/x-raw,format=BGR,{caps} ! videoconvert ! video/x-raw,format=I420 ! "
    else:
        source = f"( videotestsrc is-live=true pattern=ball ! video/x-raw,{caps} ! "
    encoder = ENCODER.format(gop=gop)
    if damage:
        encoder = encoder.removesuffix("! ") + DAMAGING
    return source + encoder + PAYLOADER


def timecode_frame(width: int, height: int, now_ms: int) -> bytes:
    """A GRAY8 frame: the top quarter is the time code, the rest mid-grey."""
    block = width // TIMECODE_BITS
    row = bytearray(width)
    for bit in range(TIMECODE_BITS):
        if now_ms >> (TIMECODE_BITS - 1 - bit) & 1:
            row[bit * block : (bit + 1) * block] = b"\xff" * block
    band = height // 4
    return bytes(row) * band + b"\x80" * (width * (height - band))


class TimecodeFeeder:
    """Pushes a time-coded frame into the media's appsrc every 1/fps seconds."""

    def __init__(self, width: int, height: int, fps: int) -> None:
        self.width, self.height, self.fps = width, height, fps

    def attach(self, _: object, media: GstRtspServer.RTSPMedia) -> None:
        appsrc = media.get_element().get_by_name_recurse_up("timecode")

        def push() -> bool:
            clock = appsrc.get_clock()
            if clock is None:  # not playing yet
                return True
            stamp, now_ms = clock.get_time() - appsrc.get_base_time(), time.time() * 1000
            data = timecode_frame(self.width, self.height, int(now_ms))
            buffer = Gst.Buffer.new_wrapped(data)
            buffer.pts = stamp  # the moment the painted time was read: what RTCP maps to NTP
            buffer.duration = Gst.SECOND // self.fps
            flow = appsrc.emit("push-buffer", buffer)
            return bool(flow == Gst.FlowReturn.OK)

        GLib.timeout_add(max(1, 1000 // self.fps), push)


class KeyframeDamager:
    """Drops the second slice of every `every`th keyframe (NAL units pass one per buffer)."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.keyframes = 0
        self.idr_slices = 0

    def attach(self, _: object, media: GstRtspServer.RTSPMedia) -> None:
        damage = media.get_element().get_by_name_recurse_up("damage")
        damage.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, self.probe)

    def probe(self, _: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        buffer = info.get_buffer()
        ok, mapped = buffer.map(Gst.MapFlags.READ)
        if not ok:
            return Gst.PadProbeReturn.OK
        head = bytes(mapped.data[:5])
        buffer.unmap(mapped)
        nal_type = head[4 if head.startswith(b"\0\0\0\1") else 3] & 0x1F
        if nal_type == SPS:  # a keyframe begins with its parameter sets
            self.idr_slices = 0
            self.keyframes += 1
        elif nal_type == IDR_SLICE:
            self.idr_slices += 1
            if self.idr_slices == 2 and self.keyframes % self.every == 0:
                return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK


class StdinFeeder:
    """Pushes each BGR frame read from standard input into the media's appsrc (frames read
    while no client watches are dropped); stops the server at end of input."""

    def __init__(self, width: int, height: int, fps: int, loop: GLib.MainLoop) -> None:
        self.frame_bytes = width * height * 3
        self.fps = fps
        self.appsrc: Gst.Element | None = None
        self.loop = loop
        threading.Thread(target=self.run, daemon=True).start()

    def attach(self, _: object, media: GstRtspServer.RTSPMedia) -> None:
        self.appsrc = media.get_element().get_by_name_recurse_up("feed")

    def run(self) -> None:
        while len(data := sys.stdin.buffer.read(self.frame_bytes)) == self.frame_bytes:
            appsrc = self.appsrc
            if appsrc is not None:
                buffer = Gst.Buffer.new_wrapped(data)
                buffer.duration = Gst.SECOND // self.fps
                appsrc.emit("push-buffer", buffer)
        self.loop.quit()


ELEMENTS = ("videotestsrc", "x264enc", "h264parse", "rtph264pay")


def missing_elements() -> list[str]:
    return [name for name in ELEMENTS if Gst.ElementFactory.find(name) is None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a GStreamer part is missing"
    )
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--gop", type=int, default=30, help="frames between keyframes")
    parser.add_argument("--pattern", choices=("ball", "timecode", "stdin"), default="ball")
    parser.add_argument(
        "--shared",
        action="store_true",
        help="one pipeline for every client (benches with many readers); GstRtspServer 1.22 "
        "may abort when clients join a shared media together (gst_rtsp_media_get_rates)",
    )
    parser.add_argument(
        "--damage", type=int, default=0, metavar="N", help="damage every Nth keyframe"
    )
    args = parser.parse_args(argv)
    Gst.init(None)
    if args.check or missing_elements():
        missing = missing_elements()
        if missing:
            print(f"missing GStreamer elements: {', '.join(missing)}", file=sys.stderr)
        return 1 if missing else 0
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        pipeline(args.pattern, args.width, args.height, args.fps, args.gop, args.damage)
    )
    factory.set_shared(args.shared)
    if args.pattern == "timecode":
        factory.connect("media-configure", TimecodeFeeder(args.width, args.height, args.fps).attach)
    loop = GLib.MainLoop()
    if args.pattern == "stdin":
        factory.connect(
            "media-configure", StdinFeeder(args.width, args.height, args.fps, loop).attach
        )
    if args.damage:
        factory.connect("media-configure", KeyframeDamager(args.damage).attach)
    server.get_mount_points().add_factory("/scene", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print("ready", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
