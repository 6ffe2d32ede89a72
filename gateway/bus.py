"""The result bus: every result, whatever its origin, to every sink (history, MQTT result topic,
dashboard, metrics, latency window), rejected triggers included."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from gateway.model import InspectionResult

ResultSink = Callable[[InspectionResult], "asyncio.Future[None] | None"]
"""A sink may return a future: the trigger's answer waits for it (the history: answered means
stored)."""

log = structlog.get_logger(__name__)


class ResultBus:
    """Sinks are called on the event loop and must not block: a slow sink queues work of its
    own. A failing sink is logged and never stops the others."""

    def __init__(self) -> None:
        self._sinks: list[ResultSink] = []

    def subscribe(self, sink: ResultSink) -> Callable[[], None]:
        """Add a sink; the returned function removes it."""
        self._sinks.append(sink)
        return lambda: self._sinks.remove(sink)

    @property
    def sink_count(self) -> int:
        """How many sinks listen (a closed dashboard tab must leave none behind)."""
        return len(self._sinks)

    def publish(self, result: InspectionResult) -> list[asyncio.Future[None]]:
        """Hand the result to every sink; the futures the answer should wait for."""
        waits: list[asyncio.Future[None]] = []
        for sink in tuple(self._sinks):
            try:
                wait = sink(result)
            except Exception:
                log.exception("result sink failed", sink=getattr(sink, "__qualname__", repr(sink)))
                continue
            if wait is not None:
                waits.append(wait)
        return waits
