"""When a frame was exposed, not when it arrived.

A network camera's frame reaches the gateway some tens of milliseconds after it was exposed
(encode, transport, jitter buffer, decode), and more after a stall or at connect, when frames
queued in the camera or the server arrive in a burst. Stamping frames on arrival makes the
`next` policy pick an image exposed before the trigger and `frame_age_ms` read too young.

Best, where the camera sends RTCP sender reports: they map its RTP timestamps to its NTP wall
clock, so a frame's exposure time is read off the camera's own clock (a camera stamps a frame
when it exposes it; FFmpeg's `start_time_realtime` gives the mapping). That needs
the camera's clock and ours in step (NTP on both); a sender time later than the frame's
arrival, or more than `MAX_SENDER_SKEW_S` before it, is not believed, and the next estimate is
used. Otherwise, where the camera stamps its frames (RTP timestamps, as presentation times),
the mapping from presentation time to the local clock is the smallest delay seen: `offset =
min(arrival - presentation)` over a sliding window (a window, so camera clock drift is
followed), less the camera's fixed latency (`latency_ms`: encode + transport + decode of the
least delayed frame, configured or measured with `gateway camera probe`). Frames that arrive
late keep their camera time, so a burst is stamped as old as it is. Without presentation times
the estimate is arrival minus `latency_ms`.
"""

from __future__ import annotations

from collections import deque
from enum import StrEnum

WINDOW_FRAMES = 900
"""About 30 s at 30 fps: long enough to see a least-delayed frame, short enough to follow drift."""


MAX_SENDER_SKEW_S = 5.0
"""A sender-report time this much before arrival means the clocks are not in step."""


class TimeSource(StrEnum):
    """Which estimate a frame's time is (shown in the camera health)."""

    SENDER_REPORT = "sender_report"
    """The camera's NTP wall clock, from its RTCP sender reports."""

    PRESENTATION = "presentation"
    """The camera's own timestamp, mapped to the local clock."""
    ARRIVAL = "arrival"
    """Arrival, less `latency_ms` when configured."""


class ExposureClock:
    def __init__(self, latency_s: float = 0.0, window: int = WINDOW_FRAMES) -> None:
        self.latency_s = latency_s
        self._offsets: deque[float] = deque(maxlen=window)
        self._offset: float | None = None

    def reset(self) -> None:
        """A new connection: the camera's timestamps start again."""
        self._offsets.clear()
        self._offset = None

    def observe(self, arrival_mono: float, presentation_s: float | None) -> bool:
        """Take one frame's arrival into the mapping; True if the mapping moved (frames already
        stamped should be stamped again)."""
        if presentation_s is None:
            return False
        offset = arrival_mono - presentation_s
        evicted = self._offsets[0] if len(self._offsets) == self._offsets.maxlen else None
        self._offsets.append(offset)
        previous = self._offset
        if previous is None or offset < previous:
            self._offset = offset
        elif evicted is not None and evicted <= previous:
            self._offset = min(self._offsets)  # the minimum left the window
        return self._offset != previous

    def estimate(
        self,
        arrival_mono: float,
        arrival_wall: float,
        presentation_s: float | None,
        sender_wall_s: float | None,
    ) -> tuple[float, TimeSource]:
        """The monotonic exposure time, best estimate, and which it is: the camera's wall clock
        when believable (`latency_ms` is for the others: it is the delay to arrival), else the
        mapped presentation time, else arrival."""
        if sender_wall_s is not None and (
            arrival_wall - MAX_SENDER_SKEW_S < sender_wall_s <= arrival_wall  # clocks in step
        ):
            return arrival_mono - (arrival_wall - sender_wall_s), TimeSource.SENDER_REPORT
        exposed = self.exposed_at(arrival_mono, presentation_s)
        return exposed, TimeSource.ARRIVAL if presentation_s is None else TimeSource.PRESENTATION

    def exposed_at(self, arrival_mono: float, presentation_s: float | None) -> float:
        """The monotonic time the frame was exposed, best estimate."""
        if presentation_s is None or self._offset is None:
            return arrival_mono - self.latency_s
        return presentation_s + self._offset - self.latency_s
