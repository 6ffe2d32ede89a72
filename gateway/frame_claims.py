"""Triggers waiting for their frame: the first exposed after them (frame policy `next`), or
the one the camera exposes on their command (`camera_trigger`).

The capture buffer keeps only a few frames, and a stream inspects one trigger at a time. If a
trigger's frame were looked up when its turn came, a trigger queued behind others (a slow
workflow, a burst of triggers from several protocols) would get the frame current then, not
the one exposed right after it: on an indexing line, a later picture, possibly of the next
part. So a trigger claims its frame when it is accepted, and the grabber fills the claim the
moment that frame arrives; the claim holds the frame until the stream inspects it. A camera
that exposes on command gets the command when the trigger is accepted, too: each frame it
then sends fills the oldest claim for an exposure, one frame each.

A frame is judged by its exposure stamp when it arrives. The stamps of kept frames can move
earlier afterwards (a less delayed frame refines the mapping, `gateway.exposure`); a claim
already filled keeps its frame, as a lookup at that moment would have.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.frame import Frame


@dataclass(eq=False, slots=True)
class FrameClaim:
    """One trigger's claim, by `deadline_mono`: the first frame exposed after `after_mono`, or
    for an `exposure` commanded for it, the first frame numbered `first_id` or later (the next
    number when the command went)."""

    after_mono: float
    deadline_mono: float
    exposure: bool = False
    first_id: int = 0
    frame: Frame | None = None
    error: str | None = None
    """Why no frame will come (the camera refused the command)."""
    withdrawn: bool = False
    """Its trigger no longer waits (an exposure not yet commanded is then not commanded)."""

    def wants(self, frame: Frame) -> bool:
        if self.exposure:
            return frame.frame_id >= self.first_id
        return frame.captured_mono > self.after_mono


class FrameClaims:
    """The claims one camera has not filled yet. Not thread-safe: used under the capture
    buffer's lock, by the grabber (`offer`) and by the streams (`add`, `withdraw`)."""

    def __init__(self) -> None:
        self._open: list[FrameClaim] = []

    def __len__(self) -> int:
        return len(self._open)

    def add(self, claim: FrameClaim, kept: Iterable[Frame]) -> None:
        """Fill `claim` from the kept frames (oldest first) if one qualifies, else keep it open."""
        for frame in kept:
            if claim.wants(frame):
                claim.frame = frame
                return
        self._open.append(claim)

    def offer(self, frame: Frame, now_mono: float) -> None:
        """A new frame: it fills every open `next` claim it satisfies and the oldest exposure
        claim it satisfies; claims past their deadline (their trigger already answered with a
        timeout) are dropped, so none is left behind."""
        still_open = []
        exposure_filled = False
        for claim in self._open:
            if claim.wants(frame) and not (claim.exposure and exposure_filled):
                claim.frame = frame
                exposure_filled |= claim.exposure
            elif claim.deadline_mono > now_mono:
                still_open.append(claim)
        self._open = still_open

    def withdraw(self, claim: FrameClaim) -> None:
        """The trigger no longer waits (answered, timed out or refused)."""
        claim.withdrawn = True
        if claim in self._open:
            self._open.remove(claim)
