"""A real RTSP camera for tests and the demo: GStreamer's RTSP server (GstRtspServer) serving a
live H.264 test pattern on rtsp://127.0.0.1:<port>/scene.

Run by Debian's own python3, which has PyGObject and GStreamer's typelibs (packages python3-gi,
gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-{base,good,ugly}), as a separate process like
Mosquitto: it imports nothing of the gateway. `simulators.rtsp_camera` starts and stops it.
Prints `ready` once listening; SIGSTOP stalls it (the connection stays open, nothing flows),
SIGCONT resumes it, SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def pipeline(width: int, height: int, fps: int, gop: int) -> str:
    return (
        f"( videotestsrc is-live=true pattern=ball ! "
        f"video/x-raw,width={width},height={height},framerate={fps}/1 ! "
        f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} ! "
        f"rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


ELEMENTS = ("videotestsrc", "x264enc", "rtph264pay")


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
    factory.set_launch(pipeline(args.width, args.height, args.fps, args.gop))
    factory.set_shared(True)
    server.get_mount_points().add_factory("/scene", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print("ready", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
