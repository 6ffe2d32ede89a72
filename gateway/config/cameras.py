"""Camera sections (`streams.<id>.source`), one model per `type`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from gateway.config.base import StrictModel, resolve_path


class SyntheticSourceConfig(StrictModel):
    """A generated conveyor scene: no camera needed (demo, tests)."""

    type: Literal["synthetic"]
    width: int = Field(640, ge=32, le=7680)
    height: int = Field(480, ge=32, le=4320)
    fps: float = Field(30.0, gt=0, le=1000)
    part_period_frames: int = Field(30, ge=4, description="frames between two parts")
    defect_every: int = Field(4, ge=0, description="every Nth part is defective; 0 = none")


class VideoFileSourceConfig(StrictModel):
    """A recorded video played like a camera, paced at its own frame rate unless `fps` says."""

    type: Literal["video_file"]
    path: Path
    loop: bool = True
    fps: float | None = Field(None, gt=0, le=1000)

    _resolve = field_validator("path")(resolve_path)


class UrlSourceConfig(StrictModel):
    """An RTSP or HTTP camera, read by PyAV (default) or OpenCV."""

    type: Literal["url"]
    url: str = Field(min_length=1)
    backend: Literal["pyav", "opencv"] = Field(
        "pyav", description="pyav: per-camera timeouts and options; opencv: as before"
    )
    open_timeout_s: float = Field(5.0, gt=0, le=120, description="give up connecting after")
    read_timeout_s: float = Field(
        5.0, gt=0, le=120, description="no frame for this long: the camera is lost (reconnect)"
    )
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    decode: Literal["every_frame", "on_trigger"] = Field(
        "every_frame",
        description="every_frame: lowest trigger latency; on_trigger (pyav): keep packets "
        "since the last keyframe, decode when a trigger needs the frame (about a GOP of "
        "decoding per trigger, a fraction of the CPU)",
    )
    latency_ms: float = Field(
        0.0,
        ge=0,
        le=5000,
        description="exposure to decoded frame for the least delayed frame (gateway camera "
        "probe measures it on a time-coded source); frame times subtract it",
    )


class UsbSourceConfig(StrictModel):
    type: Literal["usb"]
    index: int = Field(0, ge=0)
    width: int | None = Field(None, ge=32)
    height: int | None = Field(None, ge=32)
    fps: float | None = Field(None, gt=0)


class Region(StrictModel):
    x: int = Field(0, ge=0)
    y: int = Field(0, ge=0)
    width: int = Field(ge=8)
    height: int = Field(ge=8)


class GigESourceConfig(StrictModel):
    """A GigE Vision / GenICam camera through Aravis (the `gige` extra)."""

    type: Literal["gige"]
    device: str | None = Field(None, description="Aravis device id; unset: the first found")
    trigger: Literal["free_run", "software"] = Field(
        "free_run",
        description="software: the camera exposes only on TriggerSoftware (frame_policy "
        "camera_trigger sends one per trigger)",
    )
    pixel_format: str | None = Field(None, description="GenICam PixelFormat, e.g. BayerRG8")
    exposure_us: float | None = Field(None, gt=0)
    gain: float | None = Field(None, ge=0)
    region: Region | None = None
    read_timeout_s: float = Field(
        2.0, gt=0, le=60, description="free-running: no frame for this long, camera lost"
    )
    latency_ms: float = Field(0.0, ge=0, le=5000)


SourceConfig = Annotated[
    SyntheticSourceConfig
    | VideoFileSourceConfig
    | UrlSourceConfig
    | UsbSourceConfig
    | GigESourceConfig,
    Field(discriminator="type"),
]
