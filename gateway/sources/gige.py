"""GigE Vision / GenICam cameras through Aravis (the `gige` extra: PyGObject, with the Aravis
typelib from the system, Debian's `gir1.2-aravis-0.8`).

Free-running (the camera streams at its own rate; `latest` and `next` work as on any camera)
or software-triggered: the camera exposes only when told, and `frame_policy: camera_trigger`
makes each trigger send TriggerSoftware and inspect exactly the frame exposed for it. Frames
carry the camera's own timestamp (GVSP, ns), mapped to the local clock like RTP's. Exposure,
gain, pixel format and region are GenICam features set at open. Mono8, BayerRG8 and RGB8 (and
the other Bayer layouts) become BGR images.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import cv2
import numpy as np

from gateway.config import GigESourceConfig
from gateway.frame_source import Image, SourceError, SourceIdle

CONVERSIONS: dict[str, int | None] = {
    "Mono8": cv2.COLOR_GRAY2BGR,
    "BayerRG8": cv2.COLOR_BayerRG2BGR,
    "BayerGR8": cv2.COLOR_BayerGR2BGR,
    "BayerGB8": cv2.COLOR_BayerGB2BGR,
    "BayerBG8": cv2.COLOR_BayerBG2BGR,
    "RGB8": cv2.COLOR_RGB2BGR,
    "BGR8": None,
}
BUFFERS = 8


def _aravis() -> Any:
    try:
        import gi

        gi.require_version("Aravis", "0.8")
        from gi.repository import Aravis
    except (ImportError, ValueError):
        raise SourceError(
            "GigE Vision needs Aravis: pip install 'inspection-gateway[gige]' and Debian's "
            "gir1.2-aravis-0.8"
        ) from None
    return Aravis


class RawFrame:
    """A camera frame in its own pixel format (Mono8, Bayer, RGB8), made BGR on first use."""

    def __init__(self, raw: np.ndarray[Any, Any], conversion: int) -> None:
        self._raw: np.ndarray[Any, Any] | None = raw
        self._conversion = conversion
        self._image: Image | None = None
        self._lock = threading.Lock()
        self.shape = (raw.shape[0], raw.shape[1], 3)

    def decode(self) -> Image:
        with self._lock:
            if self._image is None:
                assert self._raw is not None
                self._image = cv2.cvtColor(self._raw, self._conversion)  # type: ignore[assignment]
                self._raw = None  # one copy kept, not two
            assert self._image is not None
            return self._image


class GigESource:
    """One GigE Vision camera. Blocking calls, from the grabber thread (and `trigger` from
    the capture buffer's command thread, a single register write)."""

    def __init__(self, config: GigESourceConfig) -> None:
        self._config = config
        self._camera: Any = None
        self._stream: Any = None
        self._aravis: Any = None
        self._lock = threading.Lock()
        self.presentation_s: float | None = None
        self.camera_frame_id: int | None = None
        """The camera's id of the frame `read` returned last."""
        self.incomplete_frames = 0

    @property
    def description(self) -> str:
        return f"GigE camera {self._config.device or '(first found)'}"

    @property
    def paced_fps(self) -> float | None:
        return None

    @property
    def triggered(self) -> bool:
        return self._config.trigger == "software"

    def open(self) -> None:
        self._aravis = aravis = _aravis()  # looked up once, not per frame
        try:
            aravis.update_device_list()
            camera = aravis.Camera.new(self._config.device)
            self._configure(camera)
            stream = camera.create_stream(None, None)
            payload = camera.get_payload()
            for _ in range(BUFFERS):
                stream.push_buffer(aravis.Buffer.new_allocate(payload))
            camera.start_acquisition()
        except Exception as exc:  # GLib.Error and friends: no camera, no access
            raise SourceError(f"cannot open {self.description}: {exc}") from None
        self._camera, self._stream = camera, stream

    def _configure(self, camera: Any) -> None:
        config = self._config
        if config.pixel_format is not None:
            camera.set_pixel_format_from_string(config.pixel_format)
        region = config.region
        if region is not None:
            camera.set_region(region.x, region.y, region.width, region.height)
        if config.exposure_us is not None:
            camera.set_exposure_time(config.exposure_us)
        if config.gain is not None:
            camera.set_gain(config.gain)
        if self.triggered:
            camera.set_trigger("Software")
        else:
            camera.set_acquisition_mode(self._aravis.AcquisitionMode.CONTINUOUS)
        self._format = camera.get_pixel_format_as_string()
        if self._format not in CONVERSIONS:
            raise SourceError(f"pixel format {self._format} is not supported")

    def trigger(self) -> None:
        """Expose one frame now (TriggerSoftware)."""
        with self._lock:
            if self._camera is None:
                raise SourceError(f"{self.description} is not open")
            self._camera.software_trigger()

    def read(self) -> Image | RawFrame | None:
        """The next frame; None when none came within the read timeout (free-running) or the
        camera is gone. A software-triggered camera waiting for a trigger is idle, not lost."""
        if self._stream is None:
            return None
        buffer = self._stream.timeout_pop_buffer(int(self._config.read_timeout_s * 1e6))
        if buffer is None:
            if self.triggered and self._alive():
                raise SourceIdle  # no trigger came: no fault
            return None
        try:
            if buffer.get_status() != self._aravis.BufferStatus.SUCCESS:
                self.incomplete_frames += 1  # lost packets: never inspected
                raise SourceIdle
            return self._image(buffer)
        finally:
            self._stream.push_buffer(buffer)

    def _alive(self) -> bool:
        try:
            self._camera.get_pixel_format_as_string()  # a register read: answers if present
        except Exception:
            return False
        return True

    def _image(self, buffer: Any) -> Image | RawFrame:
        """The frame as the camera sent it (copied out of the buffer, which goes back to
        Aravis); converted to BGR only when used: most frames of a camera are never looked at,
        and converting each 1080p Mono8 frame cost 4.5 times the receiving (bench/gige_capture)."""
        width, height = buffer.get_image_width(), buffer.get_image_height()
        data = np.frombuffer(buffer.get_data(), np.uint8)
        channels = 3 if self._format in ("RGB8", "BGR8") else 1
        raw = data[: width * height * channels].reshape(height, width, channels).copy()
        self.presentation_s = buffer.get_timestamp() / 1e9
        self.camera_frame_id = int(buffer.get_frame_id())
        conversion = CONVERSIONS[self._format]
        return raw if conversion is None else RawFrame(raw, conversion)

    def close(self) -> None:
        with self._lock:
            if self._camera is not None:
                with contextlib.suppress(Exception):  # a camera gone cannot be stopped
                    self._camera.stop_acquisition()
            self._camera = self._stream = None
