"""Routes triggers to streams and results to whoever waits for them, plus every result sink.

The dispatcher only routes. Queues, frames and workflows belong to streams; protocol details
belong to adapters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import structlog

from gateway.model import ErrorCode, InspectionResult, Trigger, error_result
from gateway.stream import Stream

ResultSink = Callable[[InspectionResult], None]

log = structlog.get_logger(__name__)


class ResultBus:
    """Fans every result out to the sinks (history, MQTT result topic, dashboard, metrics).

    Sinks are called on the event loop and must not block: a slow sink queues work of its own.
    A failing sink is logged and never stops the others.
    """

    def __init__(self) -> None:
        self._sinks: list[ResultSink] = []

    def subscribe(self, sink: ResultSink) -> Callable[[], None]:
        self._sinks.append(sink)
        return lambda: self._sinks.remove(sink)

    @property
    def sink_count(self) -> int:
        """How many sinks listen (a closed dashboard tab must leave none behind)."""
        return len(self._sinks)

    def publish(self, result: InspectionResult) -> None:
        for sink in tuple(self._sinks):
            try:
                sink(result)
            except Exception:
                log.exception("result sink failed", sink=getattr(sink, "__qualname__", repr(sink)))


class Dispatcher:
    def __init__(self, streams: Mapping[str, Stream], bus: ResultBus) -> None:
        self.streams = dict(streams)
        self.bus = bus

    def submit(self, trigger: Trigger) -> asyncio.Future[InspectionResult]:
        """Route a trigger; the future completes with its one result (error results included)."""
        stream = self.streams.get(trigger.stream)
        if stream is not None:
            return stream.submit(trigger)
        future: asyncio.Future[InspectionResult] = asyncio.get_running_loop().create_future()
        known = ", ".join(sorted(self.streams))
        result = error_result(
            trigger, ErrorCode.UNKNOWN_STREAM, f"unknown stream {trigger.stream!r} (known: {known})"
        )
        future.set_result(result)
        self.bus.publish(result)
        return future

    async def inspect(self, trigger: Trigger) -> InspectionResult:
        return await self.submit(trigger)
