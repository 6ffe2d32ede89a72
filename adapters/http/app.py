"""The HTTP API as one FastAPI app, assembled from one router per concept.

Routes: triggers (`triggers`), streams and Roboflow's stream manager (`streams`), health and
metrics (`health`), the result history (`results`), workflows on uploaded images
(`workflows`) and the dashboard (`dashboard`). Every error carries the shared code:
`{"success": false, "message", "error": {"code", "name", "message"}}`.
"""

from __future__ import annotations

import asyncio

from fastapi import Depends, FastAPI

from adapters.http.dashboard import dashboard_router
from adapters.http.errors import COMMON_ERRORS, JsonResponse, install_error_handlers
from adapters.http.health import health_router
from adapters.http.middleware import BodySizeLimit, api_key_check
from adapters.http.results import results_router
from adapters.http.streams import stream_router
from adapters.http.triggers import TriggerRoutes, trigger_router
from adapters.http.workflows import workflow_router
from gateway.config import HttpConfig
from gateway.core import Core


def create_app(config: HttpConfig, core: Core, closing: asyncio.Event) -> FastAPI:
    """The HTTP API around one core (no global state). `closing` ends endless responses."""
    api_key = config.api_key.get_secret_value().encode() if config.api_key else None
    app = FastAPI(
        title="Inspection gateway",
        version="0.1.0",
        description="Triggered visual inspection over HTTP, MQTT, Modbus and OPC UA.",
        default_response_class=JsonResponse,
        dependencies=[Depends(api_key_check(api_key))],
        responses=COMMON_ERRORS,
    )
    app.add_middleware(BodySizeLimit, limit=config.max_body_bytes)
    install_error_handlers(app)
    app.state.triggers = TriggerRoutes(core, config)  # its caches, for inspection
    app.include_router(trigger_router(app.state.triggers))
    app.include_router(stream_router(core, config))
    app.include_router(health_router(core))
    app.include_router(workflow_router(core.workflows))
    if core.history is not None:
        app.include_router(results_router(core.history))
    app.include_router(dashboard_router(core, closing))
    return app
