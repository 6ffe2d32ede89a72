"""Roboflow's stream manager, `/inference_pipelines/...`, over the gateway's streams: a pipeline
is a stream. `initialise` builds a stream at run time from a video reference and a workflow
(inline or named) and runs it continuously; `consume` hands over its results; `terminate`
removes it. The config's streams answer the same calls (terminate only stops them).

Every answer carries Roboflow's `status` and `context` (`request_id`, `pipeline_id`).
Roboflow's SDK sends `api_key` and `excluded_fields` as a JSON body on GET requests too.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError

from adapters.http.errors import ApiError, ErrorBody, answers
from adapters.http.image_inputs import BadInput, HostAllowlist
from adapters.http.streams import ConsumeBuffer, consume_body
from adapters.http.workflow_runs import WorkflowRuns, read_json, refusal, validation_problem
from gateway.config import (
    HttpConfig,
    SourceConfig,
    StreamConfig,
    UrlSourceConfig,
    UsbSourceConfig,
    VideoFileSourceConfig,
)
from gateway.core import Core
from gateway.model import ErrorCode
from gateway.workflow import CompiledWorkflow, WorkflowDefinitionError

UNPACED_FPS = 1000.0
"""`max_fps` not given: run on every new frame (the camera or the file paces it)."""


class VideoConfiguration(BaseModel):
    """Roboflow's fields; the buffer strategies are accepted (capture here always keeps the
    newest frames) and the rest are ignored as Roboflow's server ignores unknown ones."""

    type: str = "VideoConfiguration"
    video_reference: str | int | list[str | int]
    max_fps: float | None = Field(None, gt=0)
    source_buffer_filling_strategy: str | None = None
    source_buffer_consumption_strategy: str | None = None
    video_source_properties: dict[str, Any] | None = None
    batch_collection_timeout: float | None = None


class WorkflowConfiguration(BaseModel):
    type: str = "WorkflowConfiguration"
    workflow_specification: dict[str, Any] | None = None
    workspace_name: str | None = None
    workflow_id: str | None = None
    workflow_version_id: str | None = None
    image_input_name: str = "image"
    workflows_parameters: dict[str, Any] | None = None


class InitialiseRequest(BaseModel):
    video_configuration: VideoConfiguration
    processing_configuration: WorkflowConfiguration
    api_key: str | None = None


def context(pipeline_id: str | None = None) -> dict[str, Any]:
    return {"request_id": str(uuid.uuid4()), "pipeline_id": pipeline_id}


def source_for(reference: Any, allowlist: HostAllowlist) -> SourceConfig:
    """A video file path, a camera URL (host in `http.image_urls.allow`) or a USB index."""
    where = "video_configuration.video_reference"
    if isinstance(reference, list):
        if len(reference) != 1:
            raise BadInput(where, "one video reference per pipeline here (start one per camera)")
        reference = reference[0]
    if isinstance(reference, int):
        return UsbSourceConfig(type="usb", index=reference)
    parts = urlsplit(reference)
    if parts.scheme and parts.netloc:
        allowlist.check(where, reference)
        return UrlSourceConfig(type="url", url=reference)
    path = Path(reference)
    if not path.is_file():
        raise BadInput(where, f"no video file {reference!r} on the gateway")
    return VideoFileSourceConfig(type="video_file", path=path.resolve(), loop=False)


async def read_excluded(request: Request) -> list[str]:
    """`excluded_fields` from the JSON body Roboflow's SDK sends with `consume`."""
    try:
        body = await read_json(request)
    except BadInput as exc:
        raise refusal(exc) from None
    excluded = body.get("excluded_fields") if isinstance(body, dict) else None
    if excluded is None:
        return []
    if not isinstance(excluded, list) or not all(isinstance(name, str) for name in excluded):
        raise ApiError(ErrorCode.BAD_REQUEST, "excluded_fields: expected a list of names", 422)
    return excluded


class StreamManager:
    def __init__(
        self, core: Core, config: HttpConfig, runs: WorkflowRuns, results: ConsumeBuffer
    ) -> None:
        self._core = core
        self._config = config
        self._runs = runs
        self._results = results
        self._allowlist = HostAllowlist(config.image_urls.allow)

    async def _workflow(self, processing: WorkflowConfiguration) -> CompiledWorkflow:
        if processing.workflow_specification is not None:
            return await self._runs.workflow_for_spec(processing.workflow_specification)
        if processing.workflow_id is None:
            raise BadInput("processing_configuration", "send workflow_specification or workflow_id")
        workspace = self._config.workspace
        if workspace is not None and processing.workspace_name != workspace:
            shown = processing.workspace_name
            raise BadInput(
                "processing_configuration.workspace_name", f"{shown!r} is not {workspace!r}"
            )
        return self._runs.named(processing.workflow_id, processing.workflow_version_id)

    async def initialise(self, request: Request) -> dict[str, Any]:
        """Build a stream from the request and run it continuously; its id is `pipeline_id`."""
        try:
            try:
                ask = InitialiseRequest.model_validate(await read_json(request))
            except ValidationError as exc:
                raise validation_problem(exc) from None
            video, processing = ask.video_configuration, ask.processing_configuration
            workflow = await self._workflow(processing)
            if workflow.image_inputs != (processing.image_input_name,):
                raise BadInput(
                    "processing_configuration.image_input_name",
                    f"{processing.image_input_name!r}, but the workflow's image inputs are "
                    f"{list(workflow.image_inputs)} (a stream feeds exactly one)",
                )
            config = StreamConfig(
                source=source_for(video.video_reference, self._allowlist),
                workflow=processing.workflow_id or "inline",
                mode="continuous",
                max_fps=video.max_fps or UNPACED_FPS,
                parameters=processing.workflows_parameters or {},
            )
            pipeline_id = await self._core.runtime_streams.add(config, workflow)
        except (BadInput, WorkflowDefinitionError) as exc:
            raise refusal(exc) from None
        return {"status": "success", "context": context(pipeline_id)}

    async def consume(self, pipeline_id: str, request: Request) -> dict[str, Any]:
        """The pipeline's results since the last call, oldest first."""
        self._core.dispatcher.snapshot(pipeline_id)  # UNKNOWN_STREAM first
        excluded = await read_excluded(request)
        body = consume_body(pipeline_id, self._results.take(pipeline_id), excluded)
        return {**body, "context": context(pipeline_id)}

    async def status(self, pipeline_id: str) -> dict[str, Any]:
        report = self._core.dispatcher.snapshot(pipeline_id).to_dict()
        return {"status": "success", "context": context(pipeline_id), "report": report}

    async def list(self) -> dict[str, Any]:
        pipelines = list(self._core.dispatcher.stream_ids)
        return {"status": "success", "context": context(), "pipelines": pipelines}

    async def terminate(self, pipeline_id: str) -> dict[str, Any]:
        """A stream added at run time is removed; one of the config is stopped."""
        self._core.dispatcher.snapshot(pipeline_id)
        if await self._core.runtime_streams.remove(pipeline_id):
            self._results.forget(pipeline_id)
        else:
            await self._core.dispatcher.terminate(pipeline_id)
        return {"status": "success", "context": context(pipeline_id)}

    def control(
        self, action: Callable[[str], Awaitable[None] | None]
    ) -> Callable[[str], Awaitable[dict[str, Any]]]:
        async def handler(pipeline_id: str) -> dict[str, Any]:
            self._core.dispatcher.snapshot(pipeline_id)
            outcome = action(pipeline_id)
            if outcome is not None:
                await outcome
            stream = self._core.dispatcher.snapshot(pipeline_id).to_dict()
            return {"status": "success", "context": context(pipeline_id), "stream": stream}

        return handler


def stream_manager_router(
    core: Core, config: HttpConfig, runs: WorkflowRuns, results: ConsumeBuffer
) -> APIRouter:
    manager = StreamManager(core, config, runs, results)
    router = APIRouter(prefix="/inference_pipelines", tags=["roboflow"])
    errors = answers(ErrorBody, 404, 422, 429)
    router.add_api_route("/list", manager.list, methods=["GET"])
    router.add_api_route("/initialise", manager.initialise, methods=["POST"], responses=errors)
    router.add_api_route("/{pipeline_id}/status", manager.status, methods=["GET"], responses=errors)
    router.add_api_route(
        "/{pipeline_id}/consume", manager.consume, methods=["GET"], responses=errors
    )
    router.add_api_route(
        "/{pipeline_id}/terminate", manager.terminate, methods=["POST"], responses=errors
    )
    dispatcher = core.dispatcher
    for verb, action in (("pause", dispatcher.pause), ("resume", dispatcher.resume)):
        router.add_api_route(
            f"/{{pipeline_id}}/{verb}", manager.control(action), methods=["POST"], responses=errors
        )
    return router
