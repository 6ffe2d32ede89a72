"""Health routes: liveness, readiness (every running camera delivering) and Prometheus."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from adapters.http.errors import JsonResponse, Readiness, answers, media
from gateway.core import Core


def health_router(core: Core) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "gateway_id": core.gateway_id}

    @router.get("/readyz", responses=answers(Readiness, 200, 503))
    async def readyz() -> Response:
        """Ready when every running stream's camera is connected and has delivered a frame."""
        problems = [
            f"{snapshot.id}: {problem}"
            for snapshot in core.dispatcher.snapshots()
            if (problem := snapshot.camera_problem()) is not None
        ]
        body = {"ready": not problems, "problems": problems}
        return JsonResponse(body, status_code=200 if not problems else 503)

    @router.get(
        "/metrics",
        response_class=Response,
        responses=media(200, "text/plain", "Prometheus text exposition"),
    )
    async def metrics() -> Response:
        """Prometheus metrics (text exposition format)."""
        body = await asyncio.to_thread(core.metrics.exposition)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return router
