"""HTTP status for each shared error code, the JSON response class, and the handlers that turn
every failure (a refused request, a validation error, a wrong route) into the shared error body.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.model import ErrorCode, GatewayError
from gateway.wire import error_body

STATUS_FOR_CODE: Final = MappingProxyType(
    {
        ErrorCode.OK: 200,
        ErrorCode.NO_FRAME: 503,
        ErrorCode.STREAM_NOT_RUNNING: 409,
        ErrorCode.FRAME_STALE: 503,
        ErrorCode.BUSY: 429,
        ErrorCode.TIMEOUT: 504,
        ErrorCode.WORKFLOW_ERROR: 500,
        ErrorCode.BAD_REQUEST: 422,
        ErrorCode.UNKNOWN_STREAM: 404,
        ErrorCode.CAMERA_DISCONNECTED: 503,
    }
)


class JsonResponse(Response):
    """JSON via orjson (fast, and understands dataclasses and datetimes)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    """A request refused with a shared code; the status follows the code unless given."""

    def __init__(self, code: ErrorCode, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status or STATUS_FOR_CODE[code]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JsonResponse(error_body(exc.code, str(exc)), status_code=exc.status, headers=headers)

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> Response:
        error = exc.error
        return JsonResponse(
            error_body(error.code, error.message), status_code=STATUS_FOR_CODE[error.code]
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = [
            {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
            for error in exc.errors()
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"])
        return JsonResponse(
            error_body(ErrorCode.BAD_REQUEST, f"{where}: {first['msg']}", detail=details),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = ErrorCode.UNKNOWN_STREAM if exc.status_code == 404 else ErrorCode.BAD_REQUEST
        return JsonResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)
