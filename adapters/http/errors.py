"""HTTP status for each shared error code, the JSON response class, and the handlers that turn
every failure (a refused request, a validation error, a wrong route) into the shared error body.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
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


class JsonResponse(JSONResponse):
    """JSON via orjson (fast, and understands dataclasses and datetimes); a JSONResponse, so
    OpenAPI describes routes by their return types."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    """A request refused with a shared code; the status follows the code unless given."""

    def __init__(
        self, code: ErrorCode, message: str, status: int | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status or STATUS_FOR_CODE[code]
        self.extra = extra


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        body = error_body(exc.code, str(exc), **exc.extra)
        return JsonResponse(body, status_code=exc.status, headers=headers)

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
        if exc.status_code == 400:  # a body FastAPI could not parse (bad UTF-8, too deep)
            message = f"body: {exc.detail} (send a JSON object in UTF-8)"
            return JsonResponse(error_body(ErrorCode.BAD_REQUEST, message), status_code=422)
        return JsonResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)


class ErrorDetail(BaseModel):
    code: int = Field(description="the shared error code (0 OK, 1..9: see the README)")
    name: str
    message: str


class ErrorBody(BaseModel):
    """A request refused before it became a trigger (wrong route, API key, body too large)."""

    model_config = ConfigDict(extra="allow")

    success: bool = False
    message: str
    error: ErrorDetail


class ResultBody(BaseModel):
    """A trigger's one result; on error `error` and `message` say what happened."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    success: bool
    stream: str
    trigger_id: str
    result_id: int
    source: str
    received_at: str
    frame_timestamp: str | None
    frame_id: int | None
    frame_age_ms: float | None
    outputs: dict[str, Any]
    passed: bool | None = Field(alias="pass")
    part_id: int | None
    timings: dict[str, Any]
    error: ErrorDetail | None
    message: str | None = None


def answers(model: type[BaseModel], *statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these statuses, each with `model`'s schema."""
    return {status: {"model": model} for status in statuses}


def media(status: int, media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a status answered with a non-JSON body (image, CSV, text)."""
    return {status: {"content": {media_type: {}}, "description": description}}


COMMON_ERRORS: Final = answers(ErrorBody, 401, 413, 422)
"""What any route may answer: a missing API key, a body too large, an invalid request."""
TRIGGER_ANSWERS: Final = answers(ResultBody, 200, 404, 409, 422, 429, 500, 503, 504)
"""A trigger's answer is its result, whatever the status."""


class JobAccepted(BaseModel):
    job_id: str
    status_url: str


class JobState(BaseModel):
    job_id: str
    status: str = Field(description="pending or done")
    result: ResultBody | None = None


class Readiness(BaseModel):
    ready: bool
    problems: list[str]


class WorkflowAnswer(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    outputs: list[dict[str, Any]] = Field(description="one entry per image, in order")
    passed: bool | None = Field(alias="pass", description="every image passed")
    pass_each: list[bool | None] = Field(description="pass of each image, in order")
    steps_ms: dict[str, float] = Field(description="per step, summed over the images")
