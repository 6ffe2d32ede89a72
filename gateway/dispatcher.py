"""The one way into the core for every adapter: triggers to streams, stream control, and
read-only stream snapshots.

The dispatcher only routes. Queues, frames and workflows belong to streams; protocol details
belong to adapters. Whatever it is handed becomes exactly one result on the bus: a trigger for
an unknown stream, or one whose body could not be read, is an error result like any other.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from gateway.bus import ResultBus
from gateway.config import StreamMode
from gateway.frame import Frame
from gateway.model import ErrorCode, GatewayError, InspectionResult, Trigger, error_result
from gateway.snapshot import StreamSnapshot
from gateway.stream import Stream


class Dispatcher:
    def __init__(self, streams: Mapping[str, Stream], bus: ResultBus) -> None:
        self._streams = dict(streams)
        self.bus = bus

    @property
    def stream_ids(self) -> tuple[str, ...]:
        """In config order (Modbus gives stream N the block at 100 x N)."""
        return tuple(self._streams)

    def add(self, stream: Stream) -> None:
        """A stream built at run time (Roboflow's `initialise`); the caller starts it."""
        if stream.id in self._streams:
            raise ValueError(f"stream {stream.id!r} exists")
        self._streams[stream.id] = stream

    async def remove(self, stream_id: str) -> None:
        """Stop a stream and forget it; its queued triggers get STREAM_NOT_RUNNING."""
        stream = self._stream(stream_id)
        await stream.stop()
        self._streams.pop(stream_id, None)

    def unknown_stream(self, stream_id: str) -> GatewayError:
        known = ", ".join(sorted(self._streams))
        return GatewayError(
            ErrorCode.UNKNOWN_STREAM, f"unknown stream {stream_id!r} (known: {known})"
        )

    def _stream(self, stream_id: str) -> Stream:
        stream = self._streams.get(stream_id)
        if stream is None:
            raise self.unknown_stream(stream_id)
        return stream

    # --- triggers ------------------------------------------------------------------------------

    def submit(self, trigger: Trigger) -> asyncio.Future[InspectionResult]:
        """Route a trigger; the future completes with its one result (error results included)."""
        stream = self._streams.get(trigger.stream)
        if stream is not None:
            return stream.submit(trigger)
        error = self.unknown_stream(trigger.stream).error
        return self._published(error_result(trigger, error.code, error.message))

    def reject(
        self, trigger: Trigger, code: ErrorCode, message: str
    ) -> asyncio.Future[InspectionResult]:
        """A trigger that arrived but could not be read (bad body): its one error result."""
        stream = self._streams.get(trigger.stream)
        if stream is None:
            return self.submit(trigger)  # the unknown stream is the first problem
        return stream.reject(trigger, code, message)

    def _published(self, result: InspectionResult) -> asyncio.Future[InspectionResult]:
        future: asyncio.Future[InspectionResult] = asyncio.get_running_loop().create_future()
        future.set_result(result)
        self.bus.publish(result)
        return future

    async def inspect(self, trigger: Trigger) -> InspectionResult:
        return await self.submit(trigger)

    # --- snapshots and control -------------------------------------------------------------------

    def snapshot(self, stream_id: str) -> StreamSnapshot:
        """Raises GatewayError UNKNOWN_STREAM for a stream that does not exist."""
        return self._stream(stream_id).snapshot()

    def snapshots(self) -> list[StreamSnapshot]:
        return [stream.snapshot() for stream in self._streams.values()]

    def latest_frame(self, stream_id: str) -> Frame | None:
        return self._stream(stream_id).capture.latest()

    def current_frame(self, stream_id: str) -> Frame:
        """The newest frame now, as a `latest` trigger would get it without an age limit;
        raises GatewayError CAMERA_DISCONNECTED (with the reason) or NO_FRAME."""
        return self._stream(stream_id).capture.frame_at(time.monotonic(), None)

    def pause(self, stream_id: str) -> None:
        self._stream(stream_id).pause()

    async def resume(self, stream_id: str) -> None:
        await self._stream(stream_id).resume()

    async def terminate(self, stream_id: str) -> None:
        await self._stream(stream_id).stop()

    def set_mode(self, stream_id: str, mode: StreamMode) -> None:
        self._stream(stream_id).set_mode(mode)
