"""What a camera's health reports: the dashboard, the API, the metrics and the fieldbus status
bits all read this one snapshot, taken by `CaptureBuffer.health`."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.exposure import TimeSource


@dataclass(frozen=True, slots=True)
class CameraHealth:
    connected: bool
    fps: float
    frames: int
    last_frame_age_ms: float | None
    reconnects: int
    last_error: str | None
    ended: bool = False
    """A finite source played to its end (no reconnecting)."""
    time_source: str = TimeSource.ARRIVAL.value
    """How the newest frame's exposure time was estimated."""
    retry_in_s: float | None = None
    """Disconnected: seconds until the next attempt to reconnect."""
    damaged_frames: int = 0
    """Frames the decoder found damaged (and the rest of their GOP): skipped, never inspected."""

    def to_dict(self) -> dict[str, object]:
        return {
            "connected": self.connected,
            "fps": round(self.fps, 2),
            "frames": self.frames,
            "last_frame_age_ms": (
                None if self.last_frame_age_ms is None else round(self.last_frame_age_ms, 1)
            ),
            "reconnects": self.reconnects,
            "last_error": self.last_error,
            "ended": self.ended,
            "time_source": self.time_source,
            "retry_in_s": None if self.retry_in_s is None else round(self.retry_in_s, 1),
            "damaged_frames": self.damaged_frames,
        }
