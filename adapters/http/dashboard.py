"""The dashboard: one HTML page with plain JS, served by the gateway (no build step), fed by
server-sent events from the result bus and by the JSON routes the API already has."""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator, Callable
from importlib.resources import files
from types import MappingProxyType
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from adapters.http.errors import ApiError
from gateway.core import Core
from gateway.dispatcher import Dispatcher
from gateway.latency import KEPT_S
from gateway.model import ErrorCode, InspectionResult
from gateway.wire import ImageTransport, encode_result

ASSETS: Final = MappingProxyType(
    {
        "api.js": "text/javascript",
        "app.js": "text/javascript",
        "fleet.js": "text/javascript",
        "style.css": "text/css",
    }
)
STATUS_INTERVAL_S = 1.0
QUEUED_EVENTS = 200
"""Results waiting for a slow dashboard; past this a tab misses results (it resyncs from
`/streams` each second), the gateway never waits for it."""


def _asset(name: str) -> str:
    return files("gateway").joinpath("dashboard", name).read_text(encoding="utf-8")


def dashboard_router(core: Core, closing: asyncio.Event) -> APIRouter:
    router = APIRouter()
    bus, latency = core.bus, core.latency
    page = _asset("index.html").replace("{{gateway_id}}", html.escape(core.gateway_id))
    assets = {name: _asset(name) for name in ASSETS}  # read once, served from memory

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @router.get("/dashboard/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in assets:
            raise ApiError(ErrorCode.BAD_REQUEST, f"no dashboard file {name!r}", 404)
        return Response(assets[name], media_type=ASSETS[name])

    @router.get("/events", response_class=EventSourceResponse, tags=["dashboard"])
    async def events() -> AsyncIterator[ServerSentEvent]:
        """`result` for every result (image outputs left out) and `streams` (the stream list
        with camera health and counters) each second."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUED_EVENTS)

        def enqueue(result: InspectionResult) -> None:
            if not queue.full():  # the small body, images named only: never frames
                queue.put_nowait(encode_result(result, ImageTransport.OMIT))

        unsubscribe: Callable[[], None] = bus.subscribe(enqueue)
        try:
            yield ServerSentEvent(event="streams", data=_statuses(core.dispatcher))
            next_status = asyncio.get_running_loop().time() + STATUS_INTERVAL_S
            while not closing.is_set():
                timeout = max(next_status - asyncio.get_running_loop().time(), 0.0)
                try:
                    async with asyncio.timeout(timeout):
                        body = await queue.get()
                except TimeoutError:
                    yield ServerSentEvent(event="streams", data=_statuses(core.dispatcher))
                    next_status = asyncio.get_running_loop().time() + STATUS_INTERVAL_S
                else:
                    yield ServerSentEvent(event="result", raw_data=body.decode())
        finally:
            unsubscribe()

    @router.get("/stats/latency", tags=["dashboard"])
    async def latency_stats(
        window_s: Annotated[float, Query(gt=0, le=KEPT_S)] = 300.0,
        buckets: Annotated[int, Query(ge=1, le=60)] = 10,
    ) -> dict[str, Any]:
        """Trigger-to-result latency per source (p50/p99) over the last `window_s` seconds."""
        return latency.summary(window_s, buckets)

    return router


def _statuses(dispatcher: Dispatcher) -> dict[str, Any]:
    return {"streams": [snapshot.to_dict() for snapshot in dispatcher.snapshots()]}
