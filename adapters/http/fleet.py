"""The fleet page and its routes: the gateways this one sees on the MQTT broker, and remote
triggers to them through the broker (adapters/fleet.py). Without MQTT there is no fleet."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Body
from fastapi.responses import HTMLResponse

from adapters.fleet import Fleet
from adapters.http.errors import ApiError, ErrorBody, answers
from gateway.model import ErrorCode


def fleet_router(fleet: Fleet | None) -> APIRouter:
    router = APIRouter(responses=answers(ErrorBody, 404))  # no fleet, gateway or request
    page = files("gateway").joinpath("dashboard", "fleet.html").read_text(encoding="utf-8")

    def the_fleet() -> Fleet:
        if fleet is None:
            message = "no fleet: enable `mqtt` (and `mqtt.fleet`) to see the other gateways"
            raise ApiError(ErrorCode.BAD_REQUEST, message, 404)
        return fleet

    @router.get("/fleet", response_class=HTMLResponse, include_in_schema=False)
    async def fleet_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @router.get("/fleet/gateways", tags=["fleet"])
    async def gateways() -> list[dict[str, Any]]:
        """Every gateway announced on the broker: id, version, online, streams and health."""
        return the_fleet().gateways()

    @router.post("/fleet/gateways/{gateway_id}/streams/{stream_id}/trigger", tags=["fleet"])
    async def remote_trigger(
        gateway_id: str,
        stream_id: str,
        parameters: dict[str, Any] = Body(default_factory=dict, embed=True),  # noqa: B008
        expiry_s: int | None = Body(None, ge=1, le=86400, embed=True),
    ) -> dict[str, Any]:
        """Send a trigger through the broker; follow it at /fleet/requests/{request_id}
        (`waiting` while the gateway has not answered, then `done` or `expired`)."""
        try:
            return the_fleet().trigger(gateway_id, stream_id, parameters, expiry_s)
        except LookupError as exc:
            raise ApiError(ErrorCode.UNKNOWN_STREAM, str(exc).strip("'\""), 404) from None

    @router.get("/fleet/requests/{request_id}", tags=["fleet"])
    async def request(request_id: str) -> dict[str, Any]:
        found = the_fleet().request(request_id)
        if found is None:
            raise ApiError(ErrorCode.BAD_REQUEST, f"no fleet request {request_id!r}", 404)
        return found

    return router
