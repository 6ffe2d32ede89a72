"""Instill's pipeline trigger routes over the config's named workflows (a release is a version).

`POST /v1beta/namespaces/{ns}/pipelines/{id}/trigger` (and `/trigger-async`, and both under
`/releases/{version}`); the namespace is accepted and ignored. Bodies are Instill's
`{"data": [{"variable": {...}}]}`, the older `{"inputs": [{...}]}`, or a multipart form with
fields `variables[N].<input>` (files for images; text typed by the parameter's default). Each
entry is one run. Sync answers `{"outputs": [...], "metadata": {"traces": ...}}`; async answers
`{"operation": {"name": "operations/<id>", "done": false}}`, polled at
`GET /v1beta/operations/<id>`. Image outputs are data URIs, as Instill sends them.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, Final

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.http.errors import ApiError, ErrorBody, answers
from adapters.http.image_inputs import BadInput
from adapters.http.workflow_runs import (
    Prepared,
    WorkflowRuns,
    read_form,
    read_json,
    refusal,
    validation_problem,
)
from gateway.expiring import ExpiringMap
from gateway.model import ErrorCode
from gateway.serialise import encode_jpeg, to_json
from gateway.wire import error_body
from gateway.workflow import CompiledWorkflow, WorkflowRun

FORM_FIELD: Final = re.compile(r"^variables\[(\d{1,4})\]\.(.+)$")
OPERATIONS_KEPT: Final = 1000
OPERATION_TTL_S: Final = 3600.0
RESPONSE_TYPE: Final = "type.googleapis.com/pipeline.v1beta.TriggerNamespacePipelineResponse"


class TriggerData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variable: dict[str, Any] = Field(default_factory=dict)
    secret: dict[str, str] = Field(default_factory=dict, description="accepted; not used")
    connection_references: dict[str, str] = Field(default_factory=dict)


class TriggerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: list[TriggerData] | None = None
    inputs: list[dict[str, Any]] | None = Field(None, description="Instill's older shape")


def typed(workflow: CompiledWorkflow, name: str, text: str) -> Any:
    """A form text field as the type of the parameter's default (text stays text)."""
    default = workflow.parameters.get(name)
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        expected = type(default).__name__
        raise BadInput(f"variables.{name}", f"expects {expected}, got {text!r}") from None
    return text


async def read_variables(request: Request, workflow: CompiledWorkflow) -> list[dict[str, Any]]:
    """The variables of each run, from a JSON body or a `variables[N].name` form."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        files, fields = await read_form(request)
        runs: dict[int, dict[str, Any]] = {}
        for key, value in [*files.items(), *fields.items()]:
            match = FORM_FIELD.match(key)
            if match is None:
                raise BadInput(key, "form fields are named variables[N].<input>")
            index, name = int(match[1]), match[2]
            text_value = typed(workflow, name, value) if isinstance(value, str) else value
            runs.setdefault(index, {})[name] = text_value
        return [runs[index] for index in sorted(runs)]
    try:
        body = TriggerBody.model_validate(await read_json(request))
    except ValidationError as exc:
        raise validation_problem(exc, "body") from None
    if body.data is not None:
        return [entry.variable for entry in body.data]
    if body.inputs is not None:
        return body.inputs
    raise BadInput("body.data", 'missing: send {"data": [{"variable": {...}}]}')


def data_uri(_: str, image: Any) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(encode_jpeg(image)).decode("ascii")


def trigger_response(runs: list[WorkflowRun]) -> dict[str, Any]:
    traces = {}
    for step in runs[0].steps_ms if runs else ():
        traces[step] = {
            "statuses": ["STATUS_COMPLETED"] * len(runs),
            "compute_time_in_seconds": sum(run.steps_ms.get(step, 0.0) for run in runs) / 1000,
        }
    outputs = [to_json(run.outputs, data_uri) for run in runs]
    return {"outputs": outputs, "metadata": {"traces": traces}}


class InstillRoutes:
    def __init__(self, runs: WorkflowRuns) -> None:
        self._runs = runs
        self._operations: ExpiringMap[asyncio.Task[dict[str, Any]]] = ExpiringMap(
            OPERATIONS_KEPT, OPERATION_TTL_S
        )

    async def _prepare(self, request: Request, pipeline_id: str, release: str | None) -> Prepared:
        """The named workflow with every entry's variables read and bound (422 if not)."""
        workflow = self._runs.named(pipeline_id, release)
        try:
            variables = await read_variables(request, workflow)
            where = [(f"data.{i}.variable", each) for i, each in enumerate(variables)]
            return await self._runs.prepare(workflow, where)
        except BadInput as exc:
            raise refusal(exc) from None

    async def _run(self, prepared: Prepared) -> dict[str, Any]:
        return trigger_response(await self._runs.execute(prepared))

    async def trigger(
        self, pipeline_id: str, request: Request, release: str | None
    ) -> dict[str, Any]:
        return await self._run(await self._prepare(request, pipeline_id, release))

    async def trigger_async(
        self, pipeline_id: str, request: Request, release: str | None
    ) -> dict[str, Any]:
        prepared = await self._prepare(request, pipeline_id, release)  # a bad body: 422 now
        task = asyncio.create_task(self._run(prepared))
        name = uuid.uuid4().hex
        self._operations.put(name, task)
        return {"operation": {"name": f"operations/{name}", "done": False}}

    async def operation(self, operation_id: str) -> dict[str, Any]:
        task = self._operations.get(operation_id)
        if task is None:
            message = f"unknown or expired operation {operation_id!r}"
            raise ApiError(ErrorCode.BAD_REQUEST, message, 404)
        state: dict[str, Any] = {"name": f"operations/{operation_id}", "done": task.done()}
        if task.done():
            error = task.exception()
            if isinstance(error, ApiError):
                state["error"] = error_body(error.code, str(error))["error"]
            elif error is not None:
                state["error"] = {"code": int(ErrorCode.WORKFLOW_ERROR), "message": repr(error)}
            else:
                state["response"] = {"@type": RESPONSE_TYPE, **task.result()}
        return {"operation": state}


def instill_router(runs: WorkflowRuns) -> APIRouter:
    routes = InstillRoutes(runs)
    router = APIRouter(tags=["instill"], responses=answers(ErrorBody, 404, 500, 504))
    for spelling, shown in (("namespaces", True), ("namespace", False)):
        base = f"/v1beta/{spelling}/{{namespace}}/pipelines/{{pipeline_id}}"
        for suffix, handler in (
            ("trigger", routes.trigger),
            ("trigger-async", routes.trigger_async),
        ):
            for path, endpoint in (
                (f"{base}/{suffix}", _latest(handler)),
                (f"{base}/releases/{{release}}/{suffix}", _released(handler)),
            ):
                router.add_api_route(path, endpoint, methods=["POST"], include_in_schema=shown)
    router.add_api_route("/v1beta/operations/{operation_id}", routes.operation, methods=["GET"])
    return router


Handler = Callable[[str, Request, str | None], Coroutine[Any, Any, dict[str, Any]]]


def _latest(handler: Handler) -> Callable[..., Coroutine[Any, Any, dict[str, Any]]]:
    async def latest(namespace: str, pipeline_id: str, request: Request) -> dict[str, Any]:
        """Run the pipeline's current version (the namespace is not checked)."""
        return await handler(pipeline_id, request, None)

    return latest


def _released(handler: Handler) -> Callable[..., Coroutine[Any, Any, dict[str, Any]]]:
    async def released(
        namespace: str, pipeline_id: str, release: str, request: Request
    ) -> dict[str, Any]:
        """Run one release (a version of the named workflow)."""
        return await handler(pipeline_id, request, release)

    return released
