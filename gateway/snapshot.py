"""What an adapter may know of a stream: a read-only snapshot, and the one definition of ready.

Adapters show stream state on their protocol (Modbus STATUS bits, OPC UA Status nodes, MQTT
state, HTTP /streams and /readyz); they read it from here, never from the stream's internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.camera_health import CameraHealth
from gateway.model import InspectionError


class StreamState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class StreamSnapshot:
    id: str
    state: StreamState
    mode: str
    workflow: str
    max_fps: float
    frame_policy: str
    pending: int
    """Triggers queued or being inspected."""
    queue_size: int
    camera: CameraHealth
    counters: Mapping[str, int]
    last_error: InspectionError | None

    @property
    def running(self) -> bool:
        return self.state is StreamState.RUNNING

    @property
    def busy(self) -> bool:
        return self.pending > 0

    @property
    def ready(self) -> bool:
        """A trigger now would be inspected: running, the camera delivering frames, and room in
        the queue. Every protocol's Ready means this (Modbus adds its own enable and buffer)."""
        return self.running and self.camera.connected and self.pending < self.queue_size

    @property
    def activity(self) -> str:
        """ready / busy / error (camera away) / paused / stopped: what fieldbus status shows."""
        if not self.running:
            return str(self.state)
        if not self.camera.connected:
            return "error"
        return "busy" if self.busy else "ready"

    def camera_problem(self) -> str | None:
        """Why a running stream's camera is not healthy (for /readyz), else None."""
        if not self.running:
            return None
        if not self.camera.connected:
            return f"camera not connected ({self.camera.last_error or 'starting'})"
        if self.camera.frames == 0:
            return "no frame yet"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": str(self.state),
            "activity": self.activity,
            "workflow": self.workflow,
            "mode": self.mode,
            "max_fps": self.max_fps,
            "frame_policy": self.frame_policy,
            "pending": self.pending,
            "queue_size": self.queue_size,
            "camera": self.camera.to_dict(),
            "counters": dict(self.counters),
            "last_error": None if self.last_error is None else self.last_error.to_dict(),
        }


def heartbeat(now_s: float, period_s: float) -> bool:
    """The heartbeat a PLC watches: flips every `period_s` (Modbus bit, OPC UA node)."""
    return int(now_s / period_s) % 2 == 1
