"""The HTTP API as one FastAPI app, assembled from one router per concept.

Routes: triggers (`triggers`), streams and Roboflow's stream manager (`streams`), health and
metrics (`health`), the result history (`results`), workflows on uploaded images
(`workflows`) and the dashboard (`dashboard`). Every error carries the shared code:
`{"success": false, "message", "error": {"code", "name", "message"}}`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse
from fastapi_offline import FastAPIOffline

from adapters.fleet import Fleet
from adapters.http.dashboard import dashboard_router
from adapters.http.errors import COMMON_ERRORS, JsonResponse, install_error_handlers
from adapters.http.fleet import fleet_router
from adapters.http.health import health_router
from adapters.http.image_inputs import ImageFetcher
from adapters.http.instill import instill_router
from adapters.http.middleware import BodySizeLimit, EmptyQueryIsAbsent, api_key_check
from adapters.http.results import results_router
from adapters.http.stream_manager import stream_manager_router
from adapters.http.streams import ConsumeBuffer, stream_router
from adapters.http.triggers import TriggerRoutes, trigger_router
from adapters.http.workflow_runs import WorkflowRuns
from adapters.http.workflows import workflow_router
from gateway.config import HttpConfig
from gateway.core import Core
from gateway.version import VERSION

REDOC_POLICY: Final = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline' blob:; worker-src 'self' blob:; font-src 'self' data:"
)
"""ReDoc's bundle links its logo from a CDN: the page may load nothing but from this server."""


def _redoc(title: str) -> Callable[[], Awaitable[HTMLResponse]]:
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{title} - ReDoc",
            redoc_js_url="/static-offline-docs/redoc.standalone.js",
            redoc_favicon_url="/static-offline-docs/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = REDOC_POLICY
        return page

    return redoc


def create_app(
    config: HttpConfig, core: Core, closing: asyncio.Event, fleet: Fleet | None = None
) -> FastAPI:
    """The HTTP API around one core (no global state). `closing` ends endless responses."""
    api_key = config.api_key.get_secret_value().encode() if config.api_key else None
    app = FastAPIOffline(  # /docs with Swagger UI's files served here: no CDN on a plant network
        redoc_url=None,  # served below, fenced to this server
        title="Inspection gateway",
        version=VERSION,
        description="Triggered visual inspection over HTTP, MQTT, Modbus and OPC UA.",
        default_response_class=JsonResponse,
        dependencies=[Depends(api_key_check(api_key))],
        responses=COMMON_ERRORS,
    )
    app.add_middleware(BodySizeLimit, limit=config.max_body_bytes)
    app.add_middleware(EmptyQueryIsAbsent)
    install_error_handlers(app)
    app.add_api_route("/redoc", _redoc(app.title), include_in_schema=False)
    app.state.triggers = TriggerRoutes(core, config)  # its caches, for inspection
    app.include_router(trigger_router(app.state.triggers))
    continuous = ConsumeBuffer(config.consume_kept)
    core.bus.subscribe(continuous.add)
    runs = WorkflowRuns(
        core.workflows, ImageFetcher(config.image_urls), max_images=config.max_batch_images
    )
    app.include_router(stream_manager_router(core, config, runs, continuous))
    app.include_router(stream_router(core, config, continuous))
    app.include_router(health_router(core))
    app.include_router(
        workflow_router(
            runs, gateway_id=core.gateway_id, version=VERSION, workspace=config.workspace
        )
    )
    app.include_router(instill_router(runs))
    if core.history is not None:
        app.include_router(results_router(core.history))
    app.include_router(dashboard_router(core, closing))
    app.include_router(fleet_router(fleet))
    return app
