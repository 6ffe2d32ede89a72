"""Camera sources: one `FrameSource` per `source.type`, built from its config section."""

from __future__ import annotations

from collections.abc import Callable

from gateway.config import (
    GigESourceConfig,
    SourceConfig,
    SyntheticSourceConfig,
    UrlSourceConfig,
    UsbSourceConfig,
    VideoFileSourceConfig,
)
from gateway.frame_source import FrameSource
from gateway.sources.opencv import OpenCVSource
from gateway.sources.pyav import PyAVSource
from gateway.sources.scene import ConveyorScene
from gateway.sources.synthetic import SyntheticCamera

SourceFactory = Callable[[str, SourceConfig], FrameSource]
"""(stream id, its `source` section) -> the camera; tests pass their own to unplug cameras."""

__all__ = ["OpenCVSource", "PyAVSource", "SourceFactory", "SyntheticCamera", "build_source"]


def build_source(stream_id: str, config: SourceConfig) -> FrameSource:
    if isinstance(config, SyntheticSourceConfig):
        scene = ConveyorScene(
            config.width, config.height, config.part_period_frames, config.defect_every
        )
        return SyntheticCamera(scene, config.fps)
    if isinstance(config, VideoFileSourceConfig):
        return OpenCVSource(str(config.path), is_file=True, loop=config.loop, fps=config.fps)
    if isinstance(config, UrlSourceConfig):
        if config.backend == "opencv":
            return OpenCVSource(config.url)
        return PyAVSource(
            config.url,
            open_timeout_s=config.open_timeout_s,
            read_timeout_s=config.read_timeout_s,
            rtsp_transport=config.rtsp_transport,
            decode_on_trigger=config.decode == "on_trigger",
        )
    if isinstance(config, GigESourceConfig):
        from gateway.sources.gige import GigESource  # Aravis only when a GigE camera is used

        return GigESource(config)
    if isinstance(config, UsbSourceConfig):
        size = (config.width, config.height) if config.width and config.height else None
        return OpenCVSource(config.index, fps=config.fps, size=size)
    raise AssertionError(f"unhandled source type {config!r}")
