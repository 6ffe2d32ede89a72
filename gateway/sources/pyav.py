"""Network cameras (RTSP, HTTP) read through PyAV: FFmpeg in PyAV's wheels, opened per camera
with its own options and timeouts.

Chosen over OpenCV's FFmpeg backend for network cameras because, measured on a GStreamer RTSP
server: OpenCV serialises opens across the process (one stalled camera delayed another's
connect by 30 s), its reads have no timeout a stall respects (frames 30 and 60 s old came back
as new), and a reader stuck in FFmpeg cannot be abandoned safely. PyAV opens independently,
gives up on a stalled open or read within its timeouts (`timeout=(open, read)`), decodes
single-threaded (one frame less of delay than OpenCV's frame-threaded decoder) and reports
damaged frames. OpenCV stays for USB cameras and video files.

Damaged frames: a lost slice or packet is concealed by FFmpeg's error resilience, which flags
the frame (`is_corrupt`), but only when decoding without threads: with slice threading the
decoder conceals nothing and flags nothing, and a keyframe missing half its slices comes out
as a plausible picture (measured on the RTSP simulator's `--damage` stream). So decoding is
single-threaded, and a damaged frame's error travels with the GOP: every frame from a damaged
one to the next clean keyframe is counted (`damaged_frames`) and never handed out.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import av
import av.error
import structlog

from gateway.frame_source import Image, SourceError
from gateway.redact import redact

log = structlog.get_logger(__name__)


def _single_threaded(context: Any) -> None:
    """No decoder threads: FFmpeg conceals and flags damage only then (see the module doc)."""
    context.thread_type = "NONE"
    context.thread_count = 1


class GopImage:
    """A frame kept as the packets from the last keyframe through it (`decode: on_trigger`):
    decoded by a decoder of its own when first used, on the thread that uses it."""

    def __init__(self, packets: tuple[Any, ...], codec: str, extradata: bytes | None) -> None:
        self._packets = packets
        self._codec = codec
        self._extradata = extradata
        self._image: Image | None = None
        self._lock = threading.Lock()

    def decode(self) -> Image:
        with self._lock:
            if self._image is None:
                self._image = self._decode()
                self._packets = ()  # the image is kept now, not the packets
            return self._image

    def _decode(self) -> Image:
        context: Any = av.CodecContext.create(self._codec, "r")  # a video decoder
        if self._extradata:
            context.extradata = self._extradata
        _single_threaded(context)
        last = None
        try:
            for packet in (*self._packets, None):  # None flushes the decoder
                for frame in context.decode(packet):
                    if frame.is_corrupt:  # its damage reaches every later frame of the GOP
                        raise SourceError("the frame is damaged (the decoder concealed errors)")
                    last = frame
        except av.error.FFmpegError as exc:
            raise SourceError(f"the frame could not be decoded: {exc}") from None
        if last is None:
            raise SourceError("the frame could not be decoded: no picture")
        image: Image = last.to_ndarray(format="bgr24")
        return image


class PyAVSource:
    """An RTSP or HTTP camera; `read` returns None when the stream stalls past the read timeout
    or ends, and the grabber reconnects. With `decode_on_trigger`, frames are not decoded as
    they arrive: each is the packets since the last keyframe, decoded when a trigger uses it."""

    def __init__(
        self,
        url: str,
        *,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 5.0,
        rtsp_transport: str = "tcp",
        decode_on_trigger: bool = False,
    ) -> None:
        self._url = url
        self._decode_on_trigger = decode_on_trigger
        self._stream: Any = None
        self._packets: Iterator[Any] | None = None
        self._gop: list[Any] = []
        self._timeouts = (open_timeout_s, read_timeout_s)
        self._options = {}
        if url.startswith("rtsp"):
            # the session description (SDP) names the streams: no probing of ~1 s of video at
            # open, which came out as a burst of frames up to 0.95 s old (stamped too young
            # until the mapping settled); opening took 0.99 s, now 0.08 s (RTSP simulator)
            self._options = {
                "rtsp_transport": rtsp_transport,
                "probesize": "32",
                "analyzeduration": "0",
            }
        self._container: Any = None
        self._damaged = False
        self._joined = False
        self.damaged_frames = 0
        """Frames the decoder flagged damaged, and the rest of their GOP: never handed out."""
        self.codec: str | None = None
        self.presentation_s: float | None = None
        """The camera's timestamp of the frame `read` returned last (RTP, in seconds)."""
        self.sender_time_s: float | None = None
        """That frame's time on the camera's wall clock, once an RTCP sender report came."""

    @property
    def description(self) -> str:
        return f"camera {redact(self._url)}"

    @property
    def paced_fps(self) -> float | None:
        return None  # a live camera paces itself

    def open(self) -> None:
        try:
            container = av.open(self._url, options=self._options, timeout=self._timeouts)
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot open {self.description}: {redact(str(exc))}") from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.description} has no video stream")
        stream = container.streams.video[0]
        _single_threaded(stream.codec_context)  # frame threading also holds one frame back
        self.codec = stream.codec_context.name
        self._container = container
        self._stream = stream
        self._gop = []
        self._damaged = False
        self._joined = False  # until the first keyframe: earlier frames lack their references
        self._packets = container.demux(stream)

    def read(self) -> Image | GopImage | None:
        if self._decode_on_trigger:
            return self._read_packet()
        if self._packets is None:
            return None
        try:
            for packet in self._packets:
                for frame in self._decode(packet):
                    if self._is_damaged(frame):
                        continue
                    image: Image = frame.to_ndarray(format="bgr24")
                    self._stamp(frame.time)
                    return image
        except (av.error.FFmpegError, OSError):
            return None  # stalled past the read timeout, or the connection dropped
        return None  # the stream ended

    def _stamp(self, presentation_s: float | None) -> None:
        """The frame's camera times: RTP, and on the camera's wall clock where RTCP sender
        reports map one to the other (FFmpeg's start_time_realtime: the wall time of pts 0)."""
        self.presentation_s = presentation_s
        realtime = getattr(self._container, "start_time_realtime", None)
        self.sender_time_s = None
        if presentation_s is not None and realtime is not None and realtime > 0:
            self.sender_time_s = realtime / 1e6 + presentation_s

    def _decode(self, packet: Any) -> list[Any]:
        """The packet's frames; a packet the decoder refuses damages its GOP."""
        try:
            return list(self._stream.decode(packet))
        except av.error.InvalidDataError:
            self._mark_damaged("the decoder refused a packet")
            return []

    def _is_damaged(self, frame: Any) -> bool:
        self._joined = self._joined or frame.key_frame
        if frame.is_corrupt:
            self._mark_damaged("the decoder concealed errors")
        elif frame.key_frame:
            self._damaged = False  # a clean keyframe ends the damage
        if not self._joined:
            return True  # joined mid-GOP: earlier frames lack their references; not damage
        if self._damaged:
            self.damaged_frames += 1
        return self._damaged

    def _mark_damaged(self, reason: str) -> None:
        if self._joined and not self._damaged:
            log.warning(
                "camera sent a damaged frame; skipping to the next clean keyframe",
                camera=self.description,
                reason=reason,
            )
        self._damaged = True

    def _read_packet(self) -> GopImage | None:
        """The next frame's packet, kept with the rest of its GOP, undecoded."""
        if self._packets is None:
            return None
        try:
            for packet in self._packets:
                if packet.size == 0:
                    continue
                if packet.is_keyframe:
                    self._gop = []  # a new list: earlier frames keep theirs
                elif not self._gop:
                    continue  # joined mid-GOP: wait for a keyframe
                self._gop.append(packet)
                self._stamp(None if packet.pts is None else float(packet.pts * packet.time_base))
                context = self._stream.codec_context
                return GopImage(tuple(self._gop), context.name, context.extradata)
        except (av.error.FFmpegError, OSError):
            return None
        return None

    def close(self) -> None:
        if self._container is not None:
            with contextlib.suppress(av.error.FFmpegError):
                self._container.close()
        self._container = None
        self._packets = None
        self._gop = []
