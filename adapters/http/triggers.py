"""Trigger routes: the native trigger (sync, and async with jobs), and Roboflow's edge trigger.

The body is read here, not by FastAPI, so that a body that cannot be read is a trigger result
like any other (BAD_REQUEST on the bus and in the history), as is a trigger for a stream that
does not exist (UNKNOWN_STREAM).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any, Final

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from adapters.http.errors import (
    STATUS_FOR_CODE,
    TRIGGER_ANSWERS,
    ApiError,
    ErrorBody,
    JobAccepted,
    JobState,
    JsonResponse,
    ResultBody,
    answers,
)
from gateway.config import HttpConfig
from gateway.core import Core
from gateway.expiring import ExpiringMap
from gateway.model import ErrorCode, InspectionResult, Origin, Trigger
from gateway.wire import (
    BadTrigger,
    ImageTransport,
    TriggerRequest,
    encode_result,
    parse_trigger,
    read_json_object,
    remembered,
    result_body,
)

JOB_TTL_S: Final = 3600.0
REFUSED_AT_THE_DOOR: Final = frozenset({ErrorCode.UNKNOWN_STREAM, ErrorCode.BAD_REQUEST})
TRIGGER_BODY = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": TriggerRequest.model_json_schema()}},
    }
}
PARAMETERS_BODY = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": {"type": "object", "title": "Parameters"}}},
    }
}


def result_response(
    result: InspectionResult,
    images: ImageTransport,
    *,
    roboflow: bool = False,
    detail: list[dict[str, Any]] | None = None,
) -> Response:
    """The result as the answer; Roboflow's route answers 200 unless the stream is unknown."""
    status = (
        200
        if roboflow and result.error_code != ErrorCode.UNKNOWN_STREAM
        else STATUS_FOR_CODE[result.error_code]
    )
    if detail:
        return JsonResponse({**result_body(result, images), "detail": detail}, status_code=status)
    return Response(
        encode_result(result, images), status_code=status, media_type="application/json"
    )


def parse_parameters(payload: bytes) -> TriggerRequest:
    """Roboflow's trigger body: the parameter overrides themselves (or nothing)."""
    return TriggerRequest(parameters=read_json_object(payload, "body"))


class _Submitted:
    """A trigger's future, and the reason it was refused at the door (if it was)."""

    def __init__(
        self, future: asyncio.Future[InspectionResult], refused: BadTrigger | None = None
    ) -> None:
        self.future = future
        self.refused = refused


class TriggerRoutes:
    """The trigger routes' state: idempotency keys and async jobs, both bounded."""

    def __init__(self, core: Core, config: HttpConfig) -> None:
        self._dispatcher = core.dispatcher
        self._images = ImageTransport(config.image_outputs)
        self._idempotent: ExpiringMap[asyncio.Future[InspectionResult]] = ExpiringMap(
            config.jobs_kept, config.idempotency_ttl_s
        )
        self._jobs: ExpiringMap[asyncio.Future[InspectionResult]] = ExpiringMap(
            config.jobs_kept, JOB_TTL_S
        )

    async def _submit(
        self, stream_id: str, request: Request, parse: Callable[[bytes], TriggerRequest]
    ) -> _Submitted:
        key = request.headers.get("idempotency-key")
        cache_key = f"{stream_id}\0{key}"
        previous = None if key is None else self._idempotent.get(cache_key)
        if previous is not None:
            return _Submitted(previous)
        try:
            body = parse(await request.body())
        except BadTrigger as exc:
            trigger = Trigger(stream_id, Origin.HTTP, exc.trigger_id or uuid.uuid4().hex)
            return _Submitted(self._dispatcher.reject(trigger, exc.code, str(exc)), exc)
        trigger = Trigger(
            stream=stream_id,
            origin=Origin.HTTP,
            trigger_id=body.trigger_id or uuid.uuid4().hex,
            parameters=body.parameters,
            part_id=body.part_id,
        )
        future = self._dispatcher.submit(trigger)
        if key is not None:
            self._remember(self._idempotent, cache_key, future)
        return _Submitted(future)

    def _remember(
        self,
        cache: ExpiringMap[asyncio.Future[InspectionResult]],
        key: str,
        future: asyncio.Future[InspectionResult],
    ) -> None:
        """Keep the future while it runs, then only the serialised answer (never images)."""
        cache.put(key, future)

        def slim(done: asyncio.Future[InspectionResult]) -> None:
            if cache.get(key) is done and not done.cancelled():
                kept: asyncio.Future[InspectionResult] = asyncio.get_running_loop().create_future()
                kept.set_result(remembered(done.result(), self._images))
                cache.put(key, kept)

        future.add_done_callback(slim)

    def _answer(self, submitted: _Submitted, result: InspectionResult) -> Response:
        detail = None if submitted.refused is None else submitted.refused.detail
        return result_response(result, self._images, detail=detail)

    async def trigger(self, stream_id: str, request: Request) -> Response:
        """Inspect now and answer with the result (sync)."""
        submitted = await self._submit(stream_id, request, _parse_body)
        return self._answer(submitted, await asyncio.shield(submitted.future))

    async def trigger_async(self, stream_id: str, request: Request) -> Response:
        """Accept at once: `202 {job_id}`; fetch the result at `GET /jobs/{job_id}`. A body
        that cannot be read, or an unknown stream, is answered at once with its error."""
        submitted = await self._submit(stream_id, request, _parse_body)
        future = submitted.future
        if submitted.refused is not None or future.done():  # refused at once: answered at once
            result = await asyncio.shield(future)
            if result.error_code in REFUSED_AT_THE_DOOR:
                return self._answer(submitted, result)
        job_id = uuid.uuid4().hex
        self._remember(self._jobs, job_id, future)
        return JsonResponse({"job_id": job_id, "status_url": f"/jobs/{job_id}"}, status_code=202)

    async def job(self, job_id: str, wait_s: float = 0.0) -> Response:
        """A job's state; `wait_s` (at most 30) waits for the result before answering."""
        future = self._jobs.get(job_id)
        if future is None:
            raise ApiError(ErrorCode.BAD_REQUEST, f"unknown or expired job {job_id!r}", 404)
        if not future.done() and wait_s > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(wait_s, 30.0)):
                    await asyncio.shield(future)
        if not future.done():
            return JsonResponse({"job_id": job_id, "status": "pending"})
        head = orjson.dumps({"job_id": job_id, "status": "done"})[:-1]
        body = head + b', "result": ' + encode_result(future.result(), self._images) + b"}"
        return Response(body, media_type="application/json")

    async def roboflow_trigger(self, pipeline_id: str, request: Request) -> Response:
        """Roboflow-compatible edge trigger; the optional body is parameter overrides."""
        submitted = await self._submit(pipeline_id, request, parse_parameters)
        result = await asyncio.shield(submitted.future)
        return result_response(result, self._images, roboflow=True)


def _parse_body(payload: bytes) -> TriggerRequest:
    return parse_trigger(payload, where=("body",))


def trigger_router(routes: TriggerRoutes) -> APIRouter:
    router = APIRouter()
    router.add_api_route(
        "/streams/{stream_id}/trigger",
        routes.trigger,
        methods=["POST"],
        tags=["trigger"],
        openapi_extra=TRIGGER_BODY,
        responses=TRIGGER_ANSWERS,
    )
    router.add_api_route(
        "/streams/{stream_id}/trigger/async",
        routes.trigger_async,
        methods=["POST"],
        status_code=202,
        tags=["trigger"],
        openapi_extra=TRIGGER_BODY,
        responses={**answers(JobAccepted, 202), **answers(ResultBody, 404, 409, 422, 429, 503)},
    )
    router.add_api_route(
        "/jobs/{job_id}",
        routes.job,
        methods=["GET"],
        tags=["trigger"],
        responses={**answers(JobState, 200), **answers(ErrorBody, 404)},
    )
    router.add_api_route(
        "/inference_pipelines/{pipeline_id}/trigger",
        routes.roboflow_trigger,
        methods=["POST"],
        tags=["roboflow"],
        openapi_extra=PARAMETERS_BODY,
        responses=answers(ResultBody, 200, 404),
    )
    return router
