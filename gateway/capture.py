"""Continuous capture: one grabber thread per camera, the last few frames, and camera health.

A trigger needs the right frame at once, so cameras are read all the time and only the last
`frames_kept` frames are kept (bounded memory). Frames are decoded as they arrive: OpenCV's
FFmpeg backend already decodes inside `grab()`, and `retrieve()` cannot run on another thread
while the grabber blocks in `grab()`, so deferring the colour conversion would delay a `latest`
trigger by up to one frame interval (README, "Capture").
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import structlog

from gateway.camera_health import CameraHealth
from gateway.config import ReconnectConfig
from gateway.exposure import ExposureClock, TimeSource
from gateway.frame import Frame
from gateway.frame_claims import FrameClaim, FrameClaims
from gateway.frame_source import (
    DeferredImage,
    FrameSource,
    Image,
    SourceEnded,
    SourceError,
    SourceIdle,
)
from gateway.model import ErrorCode, GatewayError
from gateway.redact import redact
from gateway.supervise import Backoff

log = structlog.get_logger(__name__)

MIN_ARRIVALS_FOR_FPS = 8
"""Fewer frames than this since (re)connecting give no fps: the first two can come together."""


class CaptureBuffer:
    """Reads one camera on its own thread and hands out frames for triggers."""

    def __init__(
        self,
        name: str,
        source: FrameSource,
        *,
        frames_kept: int = 4,
        reconnect: ReconnectConfig | None = None,
        latency_s: float = 0.0,
    ) -> None:
        self.name = name
        self._clock = ExposureClock(latency_s)
        self._source = source
        self._reconnect = reconnect or ReconnectConfig()
        self._frames: deque[Frame] = deque(maxlen=frames_kept)
        self._claims = FrameClaims()
        self._commands: ThreadPoolExecutor | None = None
        self._arrivals: deque[float] = deque(maxlen=32)
        self._new_frame = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_id = 1
        self._connected = False
        self._reconnects = 0
        self._last_error: str | None = None
        self._ended = threading.Event()
        self._was_delivering = False
        self._retry_at: float | None = None

    @property
    def source(self) -> FrameSource:
        """The camera itself (the demo's PLC reads the synthetic camera's photo-eye)."""
        return self._source

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start reading. A grabber a stop left blocked in the camera (a stalled read) is
        waited for by the new one before it opens the camera: never two readers at once."""
        if self._thread is not None and self._thread.is_alive() and not self._stop.is_set():
            return
        with self._new_frame:  # frames from before a stop are never used after it
            self._frames.clear()
            self._arrivals.clear()
        previous = self._thread
        self._stop = stop = threading.Event()  # each grabber has its own
        self._ended.clear()
        self._thread = threading.Thread(
            target=self._run, args=(stop, previous), name=f"grab-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop reading; returns within `timeout_s` even if the grabber is blocked in the
        camera (it exits when its read returns, and uses no frame after that)."""
        self._stop.set()
        with self._new_frame:
            self._new_frame.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._connected = False
        if self._commands is not None:
            self._commands.shutdown(wait=False, cancel_futures=True)
            self._commands = None

    def _run(self, stop: threading.Event, previous: threading.Thread | None) -> None:
        if previous is not None:
            previous.join()  # the old reader is still in the camera: let it leave first
        backoff = Backoff(self._reconnect)
        while not stop.is_set():
            try:
                self._source.open()
            except SourceError as exc:
                self._last_error = redact(str(exc))
            except Exception as exc:  # a backend failure must not kill the grabber
                self._last_error = redact(f"{type(exc).__name__}: {exc}")
            else:
                with self._new_frame:  # frames from before an outage are never served after
                    self._frames.clear()
                    self._arrivals.clear()
                self._clock.reset()
                self._connected = not stop.is_set()
                self._last_error = None
                try:
                    if self._grab_until_lost(stop):
                        backoff.reset()
                finally:
                    self._connected = False
                    self._source.close()
                with self._new_frame:  # a lost camera's last frames are not served as current
                    self._frames.clear()
                    self._new_frame.notify_all()  # waiters learn the camera is gone
            if self._ended.is_set() or stop.is_set():
                self._log_end()
                break
            delay = backoff.next_delay()
            log.warning(
                "camera lost" if self._was_delivering else "camera not reachable",
                stream=self.name,
                camera=self._source.description,
                reason=self._last_error,
                retry_in_s=round(delay, 2),
            )
            self._was_delivering = False
            self._retry_at = time.monotonic() + delay
            if stop.wait(delay):
                break
            self._retry_at = None
            self._reconnects += 1

    def _log_end(self) -> None:
        if self._ended.is_set():
            log.info("camera ended", stream=self.name, camera=self._source.description)

    def _log_delivering(self, image: Image | DeferredImage) -> None:
        """The first frame after (re)connecting: what the camera delivers."""
        self._was_delivering = True
        details: dict[str, object] = {"decode": "on_trigger"}
        shape = getattr(image, "shape", None)  # an array, or a raw frame that knows its size
        if shape is not None:
            details = {"width": int(shape[1]), "height": int(shape[0])}
        log.info(
            "camera reconnected" if self._reconnects else "camera connected",
            stream=self.name,
            camera=self._source.description,
            reconnects=self._reconnects,
            **details,
        )

    def _grab_until_lost(self, stop: threading.Event) -> bool:
        """Read frames until the camera is lost or we are stopped; True if any frame came."""
        got_any = False
        fps = self._source.paced_fps
        interval = 1.0 / fps if fps else 0.0
        due = time.monotonic()
        while not stop.is_set():
            if interval:
                delay = due - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    return got_any
                due = max(due + interval, time.monotonic() - interval)
            try:
                image = self._source.read()
            except SourceIdle:
                continue
            except SourceEnded:
                self._last_error = f"end of {self._source.description}"
                self._ended.set()
                return got_any
            except Exception as exc:
                self._last_error = redact(f"{type(exc).__name__}: {exc}")
                return got_any
            if stop.is_set():
                return got_any  # stopped while the read blocked: this frame is from before
            if image is None:
                self._last_error = f"lost {self._source.description}"
                return got_any
            if not got_any:
                self._log_delivering(image)
            got_any = True
            self._publish(image)
        return got_any

    def _publish(self, image: Image | DeferredImage) -> None:
        arrived_at, arrived = time.time(), time.monotonic()
        presentation: float | None = getattr(self._source, "presentation_s", None)
        sender: float | None = getattr(self._source, "sender_time_s", None)
        moved = self._clock.observe(arrived, presentation)
        exposed, source = self._clock.estimate(arrived, arrived_at, presentation, sender)
        frame = Frame(
            image,
            self._next_id,
            arrived_at - (arrived - exposed),
            exposed,
            arrived,
            presentation,
            source,
        )
        self._next_id += 1
        with self._new_frame:
            if moved:  # a less delayed frame came: the kept ones were stamped too late
                kept = [old.restamped(self._clock) for old in self._frames]
                self._frames.clear()
                self._frames.extend(kept)
            self._frames.append(frame)
            self._claims.offer(frame, arrived)
            self._arrivals.append(arrived)
            self._new_frame.notify_all()

    # --- frames for triggers -------------------------------------------------------------------

    def latest(self) -> Frame | None:
        with self._new_frame:
            return self._frames[-1] if self._frames else None

    def frame_at(self, trigger_mono: float, max_age_ms: float | None) -> Frame:
        """The newest frame when the trigger arrived (policy `latest`). Never blocks."""
        self._check_connected()
        frame = self.latest()
        if frame is None:
            raise GatewayError(ErrorCode.NO_FRAME, f"stream {self.name!r}: no frame captured yet")
        age_ms = (trigger_mono - frame.captured_mono) * 1000.0
        if max_age_ms is not None and age_ms > max_age_ms:
            raise GatewayError(
                ErrorCode.FRAME_STALE,
                f"stream {self.name!r}: newest frame is {age_ms:.0f} ms old "
                f"(max_age_ms {max_age_ms:g})",
            )
        return frame

    def claim_after(self, trigger_mono: float, timeout_s: float) -> FrameClaim:
        """Claim the first frame exposed after the trigger (policy `next`), filled as it arrives
        even while the trigger waits its turn (`gateway.frame_claims`); wait with `claimed`."""
        claim = FrameClaim(trigger_mono, trigger_mono + timeout_s)
        with self._new_frame:
            self._claims.add(claim, self._frames)
        return claim

    def claimed(self, claim: FrameClaim) -> Frame:
        """The claimed frame, waiting until the claim's deadline (then TIMEOUT)."""
        timeout_ms = f"{(claim.deadline_mono - claim.after_mono) * 1000:.0f} ms"
        late = f"no frame captured within {timeout_ms} after the trigger"
        if claim.exposure:
            late = f"the camera sent no frame within {timeout_ms} of its trigger"

        def found() -> Frame | None:
            if claim.error is not None:
                message = f"stream {self.name!r}: {claim.error}"
                raise GatewayError(ErrorCode.CAMERA_DISCONNECTED, message)
            return claim.frame

        try:
            return self._wait_for(found, claim.deadline_mono, late)
        finally:
            self.release(claim)

    def release(self, claim: FrameClaim) -> None:
        """The trigger no longer waits for its frame (answered or timed out)."""
        with self._new_frame:
            self._claims.withdraw(claim)

    def frame_after(self, trigger_mono: float, timeout_s: float) -> Frame:
        """The first frame captured after `trigger_mono`; waits up to `timeout_s` from now."""
        waited_s = time.monotonic() - trigger_mono + timeout_s
        return self.claimed(self.claim_after(trigger_mono, waited_s))

    def claim_exposure(self, timeout_s: float) -> FrameClaim:
        """Have the camera expose a frame for this trigger (TriggerSoftware, policy
        `camera_trigger`) and claim the frame it sends. The command goes out now, on the
        camera's command thread in trigger order, not when the stream gets to the trigger."""
        self._check_connected()
        trigger = getattr(self._source, "trigger", None)
        if trigger is None:
            message = f"stream {self.name!r}: {self._source.description} cannot be triggered"
            raise GatewayError(ErrorCode.BAD_REQUEST, message)
        if self._commands is None:
            self._commands = ThreadPoolExecutor(1, thread_name_prefix=f"expose-{self.name}")
        now = time.monotonic()
        claim = FrameClaim(now, now + timeout_s, exposure=True)
        self._commands.submit(self._expose, claim, trigger)
        return claim

    def _expose(self, claim: FrameClaim, trigger: Callable[[], None]) -> None:
        """On the command thread: frames numbered from here on are this exposure's. The next
        command waits for this frame: a camera ignores a trigger while it is still exposing
        or reading out the last one (Aravis' simulator keeps 1 of 10 sent back to back)."""
        with self._new_frame:
            if claim.withdrawn or claim.deadline_mono <= time.monotonic():
                return  # its trigger was answered (a timeout) before the command could go
            claim.first_id = self._next_id
            self._claims.add(claim, ())
        try:
            trigger()
        except SourceError as exc:
            with self._new_frame:
                self._claims.withdraw(claim)
                claim.error = redact(str(exc))
                self._new_frame.notify_all()
            return
        with self._new_frame:
            while claim.frame is None and not self._stop.is_set():
                remaining = claim.deadline_mono - time.monotonic()
                if remaining <= 0:
                    break
                self._new_frame.wait(remaining)

    def _wait_for(self, found: Callable[[], Frame | None], deadline: float, late: str) -> Frame:
        """What `found` returns once it is a frame, waiting until `deadline` (then TIMEOUT)."""
        with self._new_frame:
            while True:
                frame = found()
                if frame is not None:
                    return frame
                self._check_connected()
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    raise GatewayError(ErrorCode.TIMEOUT, f"stream {self.name!r}: {late}")
                self._new_frame.wait(remaining)

    def _check_connected(self) -> None:
        if not self._connected:
            reason = self._last_error or "not started"
            raise GatewayError(
                ErrorCode.CAMERA_DISCONNECTED,
                f"stream {self.name!r}: camera not connected ({reason})",
            )

    # --- health --------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the camera delivers frames now (cheap: polled by fieldbus status bits)."""
        return self._connected

    def health(self) -> CameraHealth:
        retry_at = self._retry_at
        with self._new_frame:
            arrivals = list(self._arrivals)
            newest = self._frames[-1] if self._frames else None
        fps = 0.0
        if len(arrivals) >= MIN_ARRIVALS_FOR_FPS and arrivals[-1] > arrivals[0]:
            fps = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
        return CameraHealth(
            connected=self._connected,
            fps=fps if self._connected else 0.0,
            frames=self._next_id - 1,
            last_frame_age_ms=(
                None if newest is None else (time.monotonic() - newest.captured_mono) * 1000.0
            ),
            reconnects=self._reconnects,
            last_error=self._last_error,
            ended=self._ended.is_set(),
            time_source=(newest.time_source if newest is not None else TimeSource.ARRIVAL).value,
            retry_in_s=None if retry_at is None else max(retry_at - time.monotonic(), 0.0),
            damaged_frames=getattr(self._source, "damaged_frames", 0),
        )

    def wait_ended(self, timeout_s: float) -> bool:
        """Wait until a finite source has played to its end; True if it has."""
        return self._ended.wait(timeout_s)
