"""The capture buffer as a unit, on a scripted camera (hardware is the one thing mocked): frame
policies, staleness, bounded memory, and reconnecting with backoff."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from gateway.capture import CaptureBuffer
from gateway.config import ReconnectConfig
from gateway.frame_source import Image, SourceError, SourceIdle
from gateway.model import ErrorCode, GatewayError


class ScriptedCamera:
    """Fails to open `failed_opens` times, then delivers frames until `lose()`."""

    def __init__(self, failed_opens: int = 0, fps: float = 200.0) -> None:
        self.failed_opens = failed_opens
        self.opens = 0
        self.fps = fps
        self.lost = threading.Event()
        self.frozen = threading.Event()

    @property
    def description(self) -> str:
        return "scripted camera"

    @property
    def paced_fps(self) -> float | None:
        return self.fps

    def open(self) -> None:
        self.opens += 1
        if self.opens <= self.failed_opens:
            raise SourceError(f"no camera (attempt {self.opens})")
        self.lost.clear()

    def read(self) -> Image | None:
        if self.lost.is_set():
            return None
        while self.frozen.is_set() and not self.lost.is_set():
            time.sleep(0.005)
        return np.full((8, 8, 3), self.opens, np.uint8)

    def close(self) -> None:
        pass


def wait(predicate: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.005)


FAST = ReconnectConfig(initial_s=0.01, max_s=0.05, factor=2.0)


def test_latest_policy_no_frame_disconnected_and_stale() -> None:
    camera = ScriptedCamera()
    buffer = CaptureBuffer("cam", camera, frames_kept=3, reconnect=FAST)
    with pytest.raises(GatewayError) as not_started:
        buffer.frame_at(time.monotonic(), None)
    assert not_started.value.error.code is ErrorCode.CAMERA_DISCONNECTED
    buffer.start()
    try:
        wait(lambda: buffer.health().frames >= 5)
        frame = buffer.frame_at(time.monotonic(), 500.0)
        assert frame.image.shape == (8, 8, 3)
        camera.frozen.set()  # the camera stops delivering but stays connected
        time.sleep(0.05)
        with pytest.raises(GatewayError) as stale:
            buffer.frame_at(time.monotonic(), 10.0)
        assert stale.value.error.code is ErrorCode.FRAME_STALE
        assert "max_age_ms 10" in stale.value.error.message
    finally:
        camera.frozen.clear()
        buffer.stop()


def test_next_policy_waits_for_a_frame_captured_after_the_trigger() -> None:
    camera = ScriptedCamera(fps=50.0)
    buffer = CaptureBuffer("cam", camera, frames_kept=4, reconnect=FAST)
    buffer.start()
    try:
        wait(lambda: buffer.latest() is not None)
        trigger = time.monotonic()
        frame = buffer.frame_after(trigger, 1.0)
        assert frame.captured_mono > trigger
        camera.frozen.set()
        with pytest.raises(GatewayError) as late:
            buffer.frame_after(time.monotonic(), 0.05)
        assert late.value.error.code is ErrorCode.TIMEOUT
    finally:
        camera.frozen.clear()
        buffer.stop()


def test_a_claimed_frame_is_the_first_after_the_trigger_however_late_it_is_collected() -> None:
    """A trigger queued behind others claims its frame on acceptance: when the stream gets to
    it, many frames later (more than are kept), it still gets the first one after it."""
    camera = ScriptedCamera(fps=200.0)
    buffer = CaptureBuffer("cam", camera, frames_kept=2, reconnect=FAST)
    buffer.start()
    try:
        wait(lambda: buffer.health().frames >= 5)
        camera.frozen.set()
        time.sleep(0.05)  # the read in progress now blocks until the camera thaws
        newest = buffer.latest()
        assert newest is not None
        claim = buffer.claim_after(time.monotonic(), 5.0)
        camera.frozen.clear()
        wait(lambda: buffer.health().frames >= newest.frame_id + 40)
        frame = buffer.claimed(claim)
        assert frame.frame_id == newest.frame_id + 1  # the stream collected it 40 frames late
        assert frame.captured_mono > claim.after_mono
    finally:
        camera.frozen.clear()
        buffer.stop()


class TriggeredCamera(ScriptedCamera):
    """Exposes a frame per `trigger()` only (TriggerSoftware); refuses commands once lost."""

    def __init__(self) -> None:
        super().__init__(fps=200.0)
        self.commands = 0
        self._exposures: list[int] = []

    def trigger(self) -> None:
        if self.lost.is_set():
            raise SourceError("the camera is gone")
        self.commands += 1
        self._exposures.append(self.commands)

    def read(self) -> Image | None:
        if self.lost.is_set():
            return None
        if not self._exposures:
            raise SourceIdle
        return np.full((8, 8, 3), self._exposures.pop(0), np.uint8)


def test_exposures_are_commanded_on_acceptance_and_each_trigger_gets_its_own_frame() -> None:
    camera = TriggeredCamera()
    buffer = CaptureBuffer("cam", camera, frames_kept=2, reconnect=FAST)
    buffer.start()
    try:
        wait(lambda: buffer.connected)
        claims = [buffer.claim_exposure(5.0) for _ in range(5)]
        wait(lambda: buffer.health().frames == 5)  # exposed before any was collected
        assert camera.commands == 5
        frames = [buffer.claimed(claim) for claim in claims]
        assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 3, 4, 5]  # its own, in order
        camera.lost.set()
        with pytest.raises(GatewayError) as refused:
            buffer.claimed(buffer.claim_exposure(5.0))
        assert refused.value.error.code is ErrorCode.CAMERA_DISCONNECTED
    finally:
        buffer.stop()


def test_only_frames_kept_are_kept() -> None:
    camera = ScriptedCamera()
    buffer = CaptureBuffer("cam", camera, frames_kept=2, reconnect=FAST)
    buffer.start()
    try:
        wait(lambda: buffer.health().frames >= 20)
        assert len(buffer._frames) == 2  # bounded, whatever the number of frames read
    finally:
        buffer.stop()
    assert buffer.latest() is None  # and none is served as current once stopped


def test_reconnects_with_backoff_and_reports_why() -> None:
    camera = ScriptedCamera(failed_opens=2)
    buffer = CaptureBuffer("cam", camera, reconnect=FAST)
    buffer.start()
    try:
        wait(lambda: buffer.connected)
        health = buffer.health()
        assert camera.opens == 3 and health.reconnects == 2 and health.last_error is None
        camera.lost.set()  # the cable is pulled: reads fail, the grabber reopens
        wait(lambda: camera.opens >= 4 and buffer.connected)
        assert buffer.health().reconnects == 3
    finally:
        buffer.stop()
    assert not buffer.connected


def test_a_failed_open_is_the_reported_error() -> None:
    camera = ScriptedCamera(failed_opens=10_000)
    buffer = CaptureBuffer("cam", camera, reconnect=FAST)
    buffer.start()
    try:
        wait(lambda: buffer.health().last_error is not None)
        assert "no camera" in (buffer.health().last_error or "")
        with pytest.raises(GatewayError) as away:
            buffer.frame_at(time.monotonic(), None)
        assert "no camera" in away.value.error.message
    finally:
        buffer.stop()


class BlockingCamera:
    """A stalled network camera: read 1 blocks until released, read 2 returns at once, later
    reads block until the test ends. Each image is filled with its read's number."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.done = threading.Event()
        self.reading = threading.Event()
        self.reads = 0
        self.readers = 0
        self.most_readers = 0
        self.lock = threading.Lock()

    description = "blocking camera"
    paced_fps = None

    def open(self) -> None:
        pass

    def read(self) -> Image | None:
        with self.lock:
            self.reads += 1
            number = self.reads
            self.readers += 1
            self.most_readers = max(self.most_readers, self.readers)
        self.reading.set()
        if number == 1:
            self.release.wait(10)
        elif number > 2:
            self.done.wait(10)
        with self.lock:
            self.readers -= 1
        return np.full((4, 4, 3), number, np.uint8)

    def close(self) -> None:
        pass


def test_stop_during_a_blocked_read_returns_and_a_restart_never_adds_a_second_reader() -> None:
    camera = BlockingCamera()
    capture = CaptureBuffer("cam", camera)
    capture.start()
    assert camera.reading.wait(5)
    capture.stop(timeout_s=0.2)  # returns although the read is still blocked
    capture.start()
    time.sleep(0.2)  # time for a second reader to appear, were one started (none may be)
    assert camera.readers == 1
    camera.release.set()
    deadline = time.monotonic() + 5
    while capture.latest() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    kept = capture.latest()
    camera.done.set()
    capture.stop()
    assert camera.most_readers == 1
    # the read that began before the stop was dropped; the first frame kept is the new one's
    assert kept is not None and int(kept.image[0, 0, 0]) == 2 and kept.frame_id == 1
