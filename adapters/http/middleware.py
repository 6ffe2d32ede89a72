"""What every request passes first: the body size limit and the API key."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Final

import orjson
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.errors import ApiError, JsonResponse
from gateway.model import ErrorCode
from gateway.wire import error_body

OPEN_PATHS: Final = frozenset(
    {"/healthz", "/readyz", "/", "/fleet", "/info", "/docs", "/openapi.json"}
)
"""No API key needed: health probes, the server's name and version (Roboflow's SDK asks
`/info` without a key), the API's description (a browser opening /docs cannot send a key, and
the schema holds no data; calls made from the page need the key like any other) and
the dashboard's and the fleet's pages (they hold no data; each asks for the key and sends it
with every request)."""
OPEN_PREFIXES: Final = ("/dashboard/",)
"""The page's own scripts and styles: a `<script>` or `<link>` cannot send a header, and they
hold no data."""
TOKEN_IN_QUERY_PATHS: Final = frozenset({"/events"})
"""Browsers cannot set headers on an EventSource: the key may come as `?access_token=`."""
KEY_MISSING: Final = (
    "missing or wrong API key: send `Authorization: Bearer <key>`, `?api_key=<key>` "
    "or `api_key` in the JSON body"
)


async def presented_keys(request: Request) -> list[str]:
    """Every place a client may have put the key, as the clients we replace send it: the
    `Authorization` header with or without `Bearer` (Instill sends either), `?api_key=` and
    `api_key` in a JSON body (Roboflow's SDK, on GET requests too)."""
    keys = []
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        keys.append(token.strip() if scheme.lower() == "bearer" else header.strip())
    keys.extend(request.query_params.getlist("api_key"))
    if request.url.path in TOKEN_IN_QUERY_PATHS:
        keys.extend(request.query_params.getlist("access_token"))
    if not keys and "json" in request.headers.get("content-type", "json"):
        with contextlib.suppress(orjson.JSONDecodeError):  # a bad body is the route's to refuse
            body = orjson.loads(await request.body() or b"null")
            if isinstance(body, dict) and isinstance(body.get("api_key"), str):
                keys.append(body["api_key"])
    return keys


def api_key_check(api_key: bytes | None) -> Callable[[Request], Awaitable[None]]:
    """A dependency refusing (401) a request that does not present `api_key`; each key
    presented is compared in constant time."""

    async def authorise(request: Request) -> None:
        path = request.url.path
        if api_key is None or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return
        matches = [
            secrets.compare_digest(key.encode("utf-8", "surrogatepass"), api_key)
            for key in await presented_keys(request)
        ]
        if not any(matches):
            raise ApiError(ErrorCode.BAD_REQUEST, KEY_MISSING, 401)

    return authorise


class EmptyQueryIsAbsent:
    """Drops query parameters with an empty value (`?outcome=&stream=`): a form or a script
    sends every field, and an empty one means "not given", not "invalid"."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query: bytes = scope.get("query_string", b"")
        if scope["type"] == "http" and query:
            kept = [pair for pair in query.split(b"&") if pair and not pair.endswith(b"=")]
            scope = {**scope, "query_string": b"&".join(kept)}
        await self.app(scope, receive, send)


class BodySizeLimit:
    """Answers 413 before reading more than `limit` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._reject(send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        response = JsonResponse(
            error_body(ErrorCode.BAD_REQUEST, f"request body over {self.limit} bytes"),
            status_code=413,
        )
        await response({"type": "http"}, _no_receive, send)


class _TooLarge(BaseException):
    """Not an Exception: FastAPI turns any Exception raised while reading a body into a 400."""


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
