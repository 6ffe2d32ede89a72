"""A stream: one camera, its capture buffer, its workflow, a bounded trigger queue and a worker.

Invariant: every trigger handed to `submit` gets exactly one result through its future and the
result callback, whether it was inspected, rejected (BUSY, bad parameters, not running), timed
out or failed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gateway.capture import CaptureBuffer
from gateway.config import (
    CameraTriggerPolicy,
    LatestFramePolicy,
    NextFramePolicy,
    StreamConfig,
    StreamMode,
)
from gateway.frame import Frame
from gateway.frame_claims import FrameClaim
from gateway.frame_source import SourceError
from gateway.model import (
    ErrorCode,
    GatewayError,
    InspectionError,
    InspectionResult,
    Origin,
    Timings,
    Trigger,
    error_result,
)
from gateway.serialise import encode_output_images
from gateway.snapshot import StreamSnapshot, StreamState
from gateway.supervise import cancel_and_wait
from gateway.workflow import CompiledWorkflow, ParameterError, StepFailed

ResultCallback = Callable[[InspectionResult], "list[asyncio.Future[None]]"]
"""The result bus: publishes, and returns what the answer should wait for (the history)."""
STORE_WAIT_S = 2.0
"""Longest an answer waits for the history to commit its result (a stuck disk must not stop
the line: past this the answer goes out and the wait is counted)."""


@dataclass(slots=True)
class _Job:
    trigger: Trigger
    parameters: dict[str, Any]
    future: asyncio.Future[InspectionResult]
    frame: Frame | None = None
    """Pinned at acceptance for policy `latest`: the frame of the moment the trigger came."""
    claim: FrameClaim | None = None
    """Policies `next` and `camera_trigger`: the trigger's frame, filled as it arrives."""
    timeout: asyncio.TimerHandle | None = field(default=None)
    finished: bool = False
    """Its result has left the stream (the answer may still wait for the history)."""


class Stream:
    def __init__(
        self,
        stream_id: str,
        config: StreamConfig,
        capture: CaptureBuffer,
        workflow: CompiledWorkflow,
        on_result: ResultCallback,
        *,
        first_result_id: int = 1,
    ) -> None:
        if len(workflow.image_inputs) != 1:
            raise ValueError(
                f"stream {stream_id!r}: its workflow must have exactly one image input "
                f"(has {len(workflow.image_inputs)})"
            )
        self.id = stream_id
        self.config = config
        self.capture = capture
        self.workflow = workflow
        self._image_input = workflow.image_inputs[0]
        self._parameters = dict(config.parameters)
        workflow.bind(self._parameters)  # a bad stream default fails at start, not per trigger
        self._on_result = on_result
        self._next_result_id: Callable[[], int] = itertools.count(first_result_id).__next__
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=config.queue_size)
        self._executor: ThreadPoolExecutor | None = None
        self._worker: asyncio.Task[None] | None = None
        self._current: _Job | None = None
        self.state = StreamState.STOPPED
        self.mode: StreamMode = config.mode
        self._continuous: asyncio.Task[None] | None = None
        self.last_error: InspectionError | None = None
        self.encode_images = True
        """Encode image outputs to JPEG on the inference thread (someone carries them)."""
        self.counters = {
            "accepted": 0,
            "rejected": 0,
            "passed": 0,
            "failed": 0,
            "errors": 0,
            "continuous_runs": 0,
            "answers_not_stored": 0,
        }

    # --- lifecycle -----------------------------------------------------------------------------

    def number_results_with(self, next_id: Callable[[], int]) -> None:
        """Take result ids from `next_id` (the history's, durable across restarts and crashes)."""
        self._next_result_id = next_id

    async def start(self) -> None:
        if self.state is StreamState.RUNNING:
            return
        if self.state is StreamState.STOPPED:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"infer-{self.id}")
            self.capture.start()
            self._worker = asyncio.create_task(self._work(), name=f"stream-{self.id}")
        self.state = StreamState.RUNNING
        self.set_mode(self.mode)

    def set_mode(self, mode: StreamMode) -> None:
        """Triggered, or continuous: the workflow on every new frame up to `max_fps`, each
        result published like a trigger's (source `continuous`). Triggers work in both."""
        self.mode = mode
        wanted = mode == "continuous" and self.state is not StreamState.STOPPED
        if wanted and self._continuous is None:
            self._continuous = asyncio.create_task(
                self._run_continuously(), name=f"continuous-{self.id}"
            )
        elif not wanted and self._continuous is not None:
            self._continuous.cancel()
            self._continuous = None

    async def _run_continuously(self) -> None:
        """One run at a time on the newest unseen frame: frames arriving while the workflow
        runs are skipped, never queued; at most `max_fps` runs a second."""
        interval = 1.0 / self.config.max_fps
        last_seen = 0.0
        while True:
            started = time.monotonic()
            if self.state is StreamState.RUNNING and self.capture.connected:
                try:
                    frame = await asyncio.to_thread(self.capture.frame_after, last_seen, 1.0)
                except GatewayError:
                    frame = None  # no new frame within a second: look again
                newest = self.capture.latest()
                if frame is not None and newest is not None and not self._queue.full():
                    last_seen = newest.captured_mono  # what `latest` will pick: skip the rest
                    self.counters["continuous_runs"] += 1
                    # shielded: switching modes cancels this task, never the run's result
                    await asyncio.shield(self.submit(Trigger(self.id, Origin.CONTINUOUS)))
            await asyncio.sleep(max(interval - (time.monotonic() - started), 0.001))

    def pause(self) -> None:
        """Reject new triggers (STREAM_NOT_RUNNING); queued ones finish; the camera keeps going."""
        if self.state is StreamState.RUNNING:
            self.state = StreamState.PAUSED

    async def resume(self) -> None:
        await self.start()

    async def stop(self) -> None:
        """Stop the camera and the worker; queued triggers get STREAM_NOT_RUNNING."""
        if self.state is StreamState.STOPPED:
            return
        self.state = StreamState.STOPPED
        await cancel_and_wait(self._continuous, self._worker)
        self._continuous = self._worker = None
        interrupted = [] if self._current is None else [self._current]
        self._current = None
        while not self._queue.empty():
            interrupted.append(self._queue.get_nowait())
        for job in interrupted:
            self._finish(job, self._error(job, ErrorCode.STREAM_NOT_RUNNING, "stream stopped"))
        await asyncio.to_thread(self.capture.stop)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # --- triggers ------------------------------------------------------------------------------

    def submit(self, trigger: Trigger) -> asyncio.Future[InspectionResult]:
        """Accept or reject at once; the future completes with the one result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[InspectionResult] = loop.create_future()
        job = _Job(trigger, {}, future)
        if self.state is not StreamState.RUNNING:
            return self._reject(
                job, ErrorCode.STREAM_NOT_RUNNING, f"stream {self.id!r} is {self.state}"
            )
        try:
            job.parameters = self.workflow.bind({**self._parameters, **trigger.parameters})
        except ParameterError as exc:
            return self._reject(job, ErrorCode.BAD_REQUEST, str(exc))
        policy = self.config.frame_policy
        if isinstance(policy, LatestFramePolicy):
            try:
                job.frame = self.capture.frame_at(trigger.received_mono, policy.max_age_ms)
            except GatewayError as exc:
                return self._reject(job, exc.error.code, exc.error.message)
        if self._queue.full():
            return self._reject(
                job,
                ErrorCode.BUSY,
                f"stream {self.id!r}: {self._queue.maxsize} triggers already waiting",
            )
        try:
            job.claim = self._claim_frame(trigger)
        except GatewayError as exc:
            return self._reject(job, exc.error.code, exc.error.message)
        self._queue.put_nowait(job)
        self.counters["accepted"] += 1
        deadline = trigger.received_mono + self.config.trigger_timeout_ms / 1000.0
        reason = f"no result within trigger_timeout_ms {self.config.trigger_timeout_ms:g}"
        if trigger.expires_mono is not None and trigger.expires_mono < deadline:
            deadline, reason = trigger.expires_mono, "the trigger expired before its result"
        job.timeout = loop.call_later(
            max(deadline - time.monotonic(), 0.0), self._expire, job, reason
        )
        return future

    def _claim_frame(self, trigger: Trigger) -> FrameClaim | None:
        """Policies `next` and `camera_trigger` claim the trigger's frame on acceptance
        (`gateway.frame_claims`): the camera is commanded now, and the frame is the one after
        the trigger however long the trigger then waits for its turn."""
        policy = self.config.frame_policy
        if isinstance(policy, NextFramePolicy):
            return self.capture.claim_after(trigger.received_mono, policy.timeout_ms / 1000.0)
        if isinstance(policy, CameraTriggerPolicy):
            return self.capture.claim_exposure(policy.timeout_ms / 1000.0)
        return None

    def reject(
        self, trigger: Trigger, code: ErrorCode, message: str
    ) -> asyncio.Future[InspectionResult]:
        """A trigger refused before it could be read (a bad body): one error result, published
        and numbered like any other."""
        future: asyncio.Future[InspectionResult] = asyncio.get_running_loop().create_future()
        return self._reject(_Job(trigger, {}, future), code, message)

    def _reject(self, job: _Job, code: ErrorCode, message: str) -> asyncio.Future[InspectionResult]:
        self.counters["rejected"] += 1
        self._finish(job, self._error(job, code, message))
        return job.future

    def _expire(self, job: _Job, reason: str) -> None:
        self._finish(job, self._error(job, ErrorCode.TIMEOUT, reason))

    @staticmethod
    def _error(job: _Job, code: ErrorCode, message: str) -> InspectionResult:
        return error_result(job.trigger, code, message)

    def _finish(self, job: _Job, result: InspectionResult) -> None:
        """The only place a result leaves the stream: once per job, with the next result_id."""
        if job.finished:
            return
        job.finished = True
        if job.timeout is not None:
            job.timeout.cancel()
        result = dataclasses.replace(result, result_id=self._next_result_id(), encoded={})
        if result.error is not None:
            self.counters["errors"] += 1
            self.last_error = result.error
        elif result.passed is not None:
            self.counters["passed" if result.passed else "failed"] += 1
        waits = self._on_result(result)
        self._answer(job, result.without_frame(), waits)

    def _answer(
        self, job: _Job, result: InspectionResult, waits: list[asyncio.Future[None]]
    ) -> None:
        """Complete the trigger's future once every sink that asked for it (the history) has
        the result, or after STORE_WAIT_S at most."""
        pending = [wait for wait in waits if not wait.done()]
        if not pending:
            if not job.future.done():  # a waiter that went away may have cancelled it
                job.future.set_result(result)
            return
        loop = asyncio.get_running_loop()

        def answer(_: object = None) -> None:
            if not job.future.done() and all(wait.done() for wait in pending):
                timer.cancel()
                job.future.set_result(result)

        def give_up() -> None:
            if not job.future.done():
                self.counters["answers_not_stored"] += 1
                job.future.set_result(result)

        timer = loop.call_later(STORE_WAIT_S, give_up)
        for wait in pending:
            wait.add_done_callback(answer)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = await self._queue.get()
            if job.finished:  # timed out while waiting
                if job.claim is not None:
                    self.capture.release(job.claim)
                continue
            self._current = job
            try:
                result = await loop.run_in_executor(self._executor, self._inspect, job)
            except Exception as exc:  # a bug, not a workflow error: still exactly one result
                result = self._error(job, ErrorCode.WORKFLOW_ERROR, f"{type(exc).__name__}: {exc}")
            self._current = None
            self._finish(job, result)

    def _inspect(self, job: _Job) -> InspectionResult:
        """Runs on the stream's inference thread."""
        trigger = job.trigger
        started = time.monotonic()
        try:
            if job.claim is not None:
                frame = self.capture.claimed(job.claim)
            else:
                assert job.frame is not None  # pinned in `submit`
                frame = job.frame
            image = frame.image  # decoded here when the camera decodes on trigger
            captured = time.monotonic()
            run = self.workflow.run({self._image_input: image}, job.parameters)
        except SourceError as exc:
            return self._error(job, ErrorCode.NO_FRAME, f"stream {self.id!r}: {exc}")
        except GatewayError as exc:
            return self._error(job, exc.error.code, exc.error.message)
        except StepFailed as exc:
            return self._error(job, ErrorCode.WORKFLOW_ERROR, str(exc))
        finished = time.monotonic()
        jpegs = encode_output_images(run.outputs) if self.encode_images else {}
        return InspectionResult(
            stream=self.id,
            trigger_id=trigger.trigger_id,
            result_id=0,
            origin=trigger.origin,
            received_at=trigger.received_at,
            frame_timestamp=frame.captured_at,
            frame_id=frame.frame_id,
            frame_age_ms=(trigger.received_mono - frame.captured_mono) * 1000.0,
            outputs=run.outputs,
            passed=run.passed,
            part_id=trigger.part_id,
            image=image,
            output_jpegs=jpegs,
            timings=Timings(
                queue_ms=(started - trigger.received_mono) * 1000.0,
                capture_ms=(captured - started) * 1000.0,
                steps_ms=run.steps_ms,
                total_ms=(finished - trigger.received_mono) * 1000.0,
            ),
        )

    # --- status --------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return self._queue.qsize() + (0 if self._current is None else 1)

    def snapshot(self) -> StreamSnapshot:
        """Everything an adapter may show of this stream, read at once."""
        return StreamSnapshot(
            id=self.id,
            state=self.state,
            mode=self.mode,
            workflow=self.config.workflow,
            max_fps=self.config.max_fps,
            frame_policy=self.config.frame_policy.type,
            pending=self.pending,
            queue_size=self.config.queue_size,
            camera=self.capture.health(),
            counters=MappingProxyType(dict(self.counters)),
            last_error=self.last_error,
        )

    def status(self) -> dict[str, Any]:
        return self.snapshot().to_dict()
