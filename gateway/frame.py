"""A captured frame: the image (or what decodes it) and when it was exposed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gateway.exposure import ExposureClock, TimeSource
from gateway.frame_source import DeferredImage, Image, decoded


@dataclass(frozen=True, slots=True)
class Frame:
    content: Image | DeferredImage
    """The image, or what decodes it when a trigger needs it."""
    frame_id: int
    captured_at: float
    """Wall-clock capture time, reported to users."""
    captured_mono: float
    """Monotonic exposure time (best estimate, see `gateway.exposure`), compared with trigger
    times by the frame policies."""
    arrived_mono: float = 0.0
    """When the decoded frame reached the gateway."""
    presentation_s: float | None = None
    """The camera's own timestamp for it, when it has one."""
    time_source: TimeSource = TimeSource.ARRIVAL

    @property
    def image(self) -> Image:
        """Decodes a deferred frame (once; it keeps the result)."""
        return decoded(self.content)

    def restamped(self, clock: ExposureClock) -> Frame:
        """The same frame under a newer presentation-to-local mapping (only a frame stamped
        by that mapping changes)."""
        if self.time_source is not TimeSource.PRESENTATION:
            return self
        exposed = clock.exposed_at(self.arrived_mono, self.presentation_s)
        shift = exposed - self.captured_mono
        return dataclasses.replace(
            self, captured_mono=exposed, captured_at=self.captured_at + shift
        )
