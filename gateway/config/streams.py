"""A stream's section: its camera, workflow, frame policy, queue and timeouts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from gateway.config.base import StrictModel
from gateway.config.cameras import GigESourceConfig, SourceConfig


class LatestFramePolicy(StrictModel):
    """The newest frame at the moment the trigger arrived; rejected as stale past `max_age_ms`."""

    type: Literal["latest"]
    max_age_ms: float | None = Field(500.0, gt=0)


class NextFramePolicy(StrictModel):
    """The first frame captured after the trigger arrived: never an image of the previous part."""

    type: Literal["next"]
    timeout_ms: float = Field(1000.0, gt=0)


class CameraTriggerPolicy(StrictModel):
    """The camera exposes for the trigger: TriggerSoftware is sent to a software-triggered
    GigE camera and exactly the frame it exposed is inspected."""

    type: Literal["camera_trigger"]
    timeout_ms: float = Field(1000.0, gt=0)


FramePolicy = Annotated[
    LatestFramePolicy | NextFramePolicy | CameraTriggerPolicy, Field(discriminator="type")
]


class ReconnectConfig(StrictModel):
    """Capped exponential backoff for cameras that go away."""

    initial_s: float = Field(0.2, gt=0)
    max_s: float = Field(10.0, gt=0)
    factor: float = Field(2.0, ge=1)


StreamMode = Literal["triggered", "continuous"]


class StreamConfig(StrictModel):
    source: SourceConfig
    workflow: str = Field(description="name of an entry under `workflows`")
    workflow_version: str | None = Field(None, description="pin a version; default: current")
    mode: StreamMode = "triggered"
    max_fps: float = Field(5.0, gt=0, description="continuous mode: at most this many runs/s")
    frame_policy: FramePolicy = Field(default_factory=lambda: LatestFramePolicy(type="latest"))
    queue_size: int = Field(4, ge=1, le=1000, description="triggers waiting; more -> BUSY")
    trigger_timeout_ms: float = Field(5000.0, gt=0)
    parameters: dict[str, Any] = Field(default_factory=dict)
    frames_kept: int = Field(4, ge=2, le=64, description="recent frames kept for `next`")
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)

    @model_validator(mode="after")
    def _camera_trigger_needs_a_triggered_camera(self) -> StreamConfig:
        if isinstance(self.frame_policy, CameraTriggerPolicy) and not (
            isinstance(self.source, GigESourceConfig) and self.source.trigger == "software"
        ):
            raise ValueError(
                "frame_policy camera_trigger needs a camera that exposes on command: "
                "source type gige with trigger: software"
            )
        return self
