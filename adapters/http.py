"""HTTP front end: FastAPI on uvicorn (uvloop + httptools), in the gateway's own event loop.

Routes (DESIGN section 4): the native trigger (sync, and async with jobs), a Roboflow-compatible
edge trigger and stream manager, stream control, latest frame, health and readiness.
Errors always carry the shared code: `{"success": false, "error": {"code", "name", "message"}}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import cv2
import orjson
import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.config import HttpConfig, StreamMode
from gateway.dispatcher import Dispatcher
from gateway.model import ErrorCode, InspectionResult, Origin, Trigger
from gateway.recent_futures import RecentFutures
from gateway.stream import Stream, StreamState

STATUS_FOR_CODE = {
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
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/"})
"""No API key needed: health probes and the dashboard's page (it holds no data; it asks for
the key and sends it with every request it makes)."""
TOKEN_IN_QUERY_PATHS = frozenset({"/events"})
"""Browsers cannot set headers on an EventSource: the key may come as `?access_token=`."""


class JsonResponse(Response):
    """JSON via orjson (fast, and understands dataclasses and datetimes)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ConsumeBuffer:
    """Continuous-mode results per stream until a client consumes them (Roboflow's
    `consume`); bounded, so an absent client costs nothing but the oldest results."""

    def __init__(self, kept: int) -> None:
        self._kept = kept
        self._results: dict[str, deque[InspectionResult]] = {}

    def add(self, result: InspectionResult) -> None:
        if result.origin is Origin.CONTINUOUS:
            queue = self._results.setdefault(result.stream, deque(maxlen=self._kept))
            queue.append(result.without_frame())

    def take(self, stream_id: str) -> list[InspectionResult]:
        queue = self._results.get(stream_id)
        taken = list(queue or ())
        if queue is not None:
            queue.clear()
        return taken


class ModeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: StreamMode


class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trigger_id: str | None = Field(None, min_length=1, max_length=128)
    parameters: dict[str, Any] = Field(default_factory=dict)
    part_id: int | None = Field(None, ge=0, le=0xFFFFFFFF)


class ApiError(Exception):
    def __init__(self, code: ErrorCode, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status or STATUS_FOR_CODE[code]


def error_body(code: ErrorCode, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "success": False,
        "message": message,
        "error": {"code": int(code), "name": code.name, "message": message},
        **extra,
    }


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


def result_response(result: InspectionResult, *, roboflow: bool = False) -> JsonResponse:
    body = result.to_dict()
    body["success"] = result.ok
    if result.error is not None:
        body["message"] = result.error.message
    status = (
        200
        if roboflow and result.error_code != ErrorCode.UNKNOWN_STREAM
        else (STATUS_FOR_CODE[result.error_code])
    )
    return JsonResponse(body, status_code=status)


def create_app(dispatcher: Dispatcher, config: HttpConfig, gateway_id: str) -> FastAPI:
    """The HTTP API, built around one dispatcher (no global state)."""
    idempotent: RecentFutures[InspectionResult] = RecentFutures(
        config.jobs_kept, config.idempotency_ttl_s
    )
    jobs: RecentFutures[InspectionResult] = RecentFutures(config.jobs_kept, 3600.0)
    continuous = ConsumeBuffer(config.consume_kept)
    dispatcher.bus.subscribe(continuous.add)
    api_key = config.api_key.get_secret_value().encode() if config.api_key else None

    async def authorise(request: Request) -> None:
        if api_key is None or request.url.path in OPEN_PATHS:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if request.url.path in TOKEN_IN_QUERY_PATHS and "access_token" in request.query_params:
            scheme, token = "bearer", request.query_params["access_token"]
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.encode(), api_key):
            raise ApiError(
                ErrorCode.BAD_REQUEST, "missing or wrong API key (Authorization: Bearer)", 401
            )

    app = FastAPI(
        title="Inspection gateway",
        version="0.1.0",
        description="Triggered visual inspection over HTTP, MQTT, Modbus and OPC UA.",
        default_response_class=JsonResponse,
        dependencies=[Depends(authorise)],
    )
    app.add_middleware(BodySizeLimit, limit=config.max_body_bytes)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JsonResponse(error_body(exc.code, str(exc)), status_code=exc.status, headers=headers)

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

    def stream_or_404(stream_id: str) -> Stream:
        stream = dispatcher.streams.get(stream_id)
        if stream is None:
            known = ", ".join(sorted(dispatcher.streams))
            raise ApiError(
                ErrorCode.UNKNOWN_STREAM, f"unknown stream {stream_id!r} (known: {known})"
            )
        return stream

    def submit(
        stream_id: str, body: TriggerRequest, key: str | None
    ) -> asyncio.Future[InspectionResult]:
        stream_or_404(stream_id)
        if key is not None:
            previous = idempotent.get(f"{stream_id}\0{key}")
            if previous is not None:
                return previous
        trigger = Trigger(
            stream=stream_id,
            origin=Origin.HTTP,
            trigger_id=body.trigger_id or uuid.uuid4().hex,
            parameters=body.parameters,
            part_id=body.part_id,
        )
        future = dispatcher.submit(trigger)
        if key is not None:
            idempotent.put(f"{stream_id}\0{key}", future)
        return future

    # --- triggers --------------------------------------------------------------------------

    @app.post("/streams/{stream_id}/trigger", tags=["trigger"])
    async def trigger(
        stream_id: str, request: Request, body: TriggerRequest | None = None
    ) -> Response:
        """Inspect now and answer with the result (sync)."""
        future = submit(stream_id, body or TriggerRequest(), request.headers.get("idempotency-key"))
        return result_response(await asyncio.shield(future))

    @app.post("/streams/{stream_id}/trigger/async", status_code=202, tags=["trigger"])
    async def trigger_async(
        stream_id: str, request: Request, body: TriggerRequest | None = None
    ) -> Response:
        """Accept at once: `202 {job_id}`; fetch the result at `GET /jobs/{job_id}`."""
        future = submit(stream_id, body or TriggerRequest(), request.headers.get("idempotency-key"))
        job_id = uuid.uuid4().hex
        jobs.put(job_id, future)
        return JsonResponse({"job_id": job_id, "status_url": f"/jobs/{job_id}"}, status_code=202)

    @app.get("/jobs/{job_id}", tags=["trigger"])
    async def job(job_id: str, wait_s: float = 0.0) -> Response:
        """A job's state; `wait_s` (at most 30) waits for the result before answering."""
        future = jobs.get(job_id)
        if future is None:
            raise ApiError(ErrorCode.BAD_REQUEST, f"unknown or expired job {job_id!r}", 404)
        if not future.done() and wait_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(future), min(wait_s, 30.0))
        if not future.done():
            return JsonResponse({"job_id": job_id, "status": "pending"})
        return JsonResponse(
            {"job_id": job_id, "status": "done", "result": future.result().to_dict()}
        )

    @app.post("/inference_pipelines/{pipeline_id}/trigger", tags=["roboflow"])
    async def roboflow_trigger(
        pipeline_id: str, request: Request, parameters: dict[str, Any] | None = None
    ) -> Response:
        """Roboflow-compatible edge trigger; the optional body is parameter overrides."""
        future = submit(
            pipeline_id,
            TriggerRequest(parameters=parameters or {}),
            request.headers.get("idempotency-key"),
        )
        return result_response(await asyncio.shield(future), roboflow=True)

    # --- stream manager ----------------------------------------------------------------------

    @app.get("/streams", tags=["streams"])
    async def list_streams() -> dict[str, Any]:
        return {"streams": [stream.status() for stream in dispatcher.streams.values()]}

    @app.get("/inference_pipelines/list", tags=["roboflow"])
    async def roboflow_list() -> dict[str, Any]:
        return {"status": "success", "pipelines": list(dispatcher.streams)}

    def control(
        action: Callable[[Stream], Awaitable[None] | None],
    ) -> Callable[[str], Awaitable[dict[str, Any]]]:
        async def handler(stream_id: str) -> dict[str, Any]:
            stream = stream_or_404(stream_id)
            outcome = action(stream)
            if outcome is not None:
                await outcome
            return {"status": "success", "stream": stream.status()}

        return handler

    async def _resume(stream: Stream) -> None:
        await stream.resume()

    async def _terminate(stream: Stream) -> None:
        await stream.stop()

    for prefix, tag in (("/streams", "streams"), ("/inference_pipelines", "roboflow")):
        app.add_api_route(
            f"{prefix}/{{stream_id}}/pause", control(Stream.pause), methods=["POST"], tags=[tag]
        )
        app.add_api_route(
            f"{prefix}/{{stream_id}}/resume", control(_resume), methods=["POST"], tags=[tag]
        )
        app.add_api_route(
            f"{prefix}/{{stream_id}}/terminate", control(_terminate), methods=["POST"], tags=[tag]
        )
        app.add_api_route(
            f"{prefix}/{{stream_id}}/latest_frame",
            latest_frame_route(stream_or_404),
            methods=["GET"],
            tags=[tag],
            response_class=Response,
        )

    async def consume(stream_id: str) -> dict[str, Any]:
        """Results of continuous runs since the last call (oldest first), as Roboflow's
        inference pipelines answer `consume`."""
        stream_or_404(stream_id)
        results = [result.to_dict() for result in continuous.take(stream_id)]
        return {
            "status": "success",
            "outputs": [result["outputs"] for result in results],
            "frames_metadata": [
                {
                    "source_id": stream_id,
                    "frame_id": result["frame_id"],
                    "frame_timestamp": result["frame_timestamp"],
                    "result_id": result["result_id"],
                    "pass": result["pass"],
                    "error": result["error"],
                }
                for result in results
            ],
        }

    app.add_api_route("/streams/{stream_id}/consume", consume, methods=["GET"], tags=["streams"])
    app.add_api_route(
        "/inference_pipelines/{stream_id}/consume", consume, methods=["GET"], tags=["roboflow"]
    )

    @app.post("/streams/{stream_id}/mode", tags=["streams"])
    async def set_mode(stream_id: str, body: ModeRequest) -> dict[str, Any]:
        """Switch between `triggered` and `continuous` while running."""
        stream = stream_or_404(stream_id)
        stream.set_mode(body.mode)
        return {"status": "success", "stream": stream.status()}

    @app.get("/streams/{stream_id}", tags=["streams"])
    async def stream_status(stream_id: str) -> dict[str, Any]:
        return stream_or_404(stream_id).status()

    @app.get("/inference_pipelines/{pipeline_id}/status", tags=["roboflow"])
    async def roboflow_status(pipeline_id: str) -> dict[str, Any]:
        return {"status": "success", "report": stream_or_404(pipeline_id).status()}

    # --- health ------------------------------------------------------------------------------

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "gateway_id": gateway_id}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> Response:
        """Ready when every running stream's camera is connected and has delivered a frame."""
        problems = [
            f"{stream.id}: {reason}"
            for stream in dispatcher.streams.values()
            for reason in _not_ready(stream)
        ]
        body = {"ready": not problems, "problems": problems}
        return JsonResponse(body, status_code=200 if not problems else 503)

    return app


def _not_ready(stream: Stream) -> Iterator[str]:
    if stream.state is not StreamState.RUNNING:
        return
    health = stream.capture.health()
    if not health.connected:
        yield f"camera not connected ({health.last_error or 'starting'})"
    elif health.frames == 0:
        yield "no frame yet"


def latest_frame_route(
    stream_or_404: Callable[[str], Stream],
) -> Callable[[str, int], Awaitable[Response]]:
    async def latest_frame(stream_id: str, quality: int = 80) -> Response:
        """The newest captured frame as JPEG."""
        stream = stream_or_404(stream_id)
        frame = stream.capture.latest()
        if frame is None:
            return JsonResponse(
                error_body(ErrorCode.NO_FRAME, f"stream {stream_id!r}: no frame captured yet"),
                status_code=503,
            )
        params = [cv2.IMWRITE_JPEG_QUALITY, max(10, min(quality, 100))]
        ok, encoded = await asyncio.to_thread(cv2.imencode, ".jpg", frame.image, params)
        if not ok:
            raise ApiError(ErrorCode.WORKFLOW_ERROR, "JPEG encoding failed")
        return Response(
            encoded.tobytes(),
            media_type="image/jpeg",
            headers={"X-Frame-Id": str(frame.frame_id), "Cache-Control": "no-store"},
        )

    return latest_frame


def metrics_route(exposition: Callable[[], bytes]) -> Callable[[], Awaitable[Response]]:
    async def metrics() -> Response:
        """Prometheus metrics (text exposition format)."""
        body = await asyncio.to_thread(exposition)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return metrics


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the gateway's CLI owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpAdapter:
    """Serves the app with uvicorn as a task in the running loop."""

    name = "http"

    def __init__(self, app: FastAPI, config: HttpConfig) -> None:
        self.app = app
        self._config = config
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None
        self.closing = asyncio.Event()
        """Set when the server begins to stop: endless responses (server-sent events) end."""

    async def start(self) -> None:
        self.closing.clear()
        server_config = uvicorn.Config(
            self.app,
            host=self._config.host,
            port=self._config.port,
            http="httptools",
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        listener = _bind(self._config.host, self._config.port)
        self.port = int(listener.getsockname()[1])
        self._server = _Server(server_config)
        self._task = asyncio.create_task(self._server.serve(sockets=[listener]), name="http")
        for _ in range(500):  # bounded: 5 s
            if self._server.started or self._task.done():
                break
            await asyncio.sleep(0.01)
        if not self._server.started:
            listener.close()
            raise RuntimeError(f"HTTP server did not start on {self._config.host}:{self.port}")

    async def stop(self) -> None:
        self.closing.set()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._server = None
        self._task = None


def _bind(host: str, port: int) -> socket.socket:
    """Bind here, so a port in use is a clear error rather than uvicorn's sys.exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise RuntimeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    listener.listen(2048)
    listener.setblocking(False)
    return listener
