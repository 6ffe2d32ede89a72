"""Running a workflow for an HTTP request: reading what the request asks (a JSON body or a
multipart form), decoding its images (a list of images is a batch: one run each, in order),
binding its parameters, and running it off the event loop within a time limit.

Shared by the native and Roboflow routes (`workflows`) and Instill's (`instill`), which differ
only in how they name things on the wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from adapters.http.errors import ApiError
from adapters.http.image_inputs import BadInput, ImageFetcher, read_images
from gateway.frame_source import Image
from gateway.model import ErrorCode
from gateway.workflow import (
    CompiledWorkflow,
    ParameterError,
    StepFailed,
    WorkflowDefinitionError,
    WorkflowRun,
)
from gateway.workflow_library import UnknownWorkflow, WorkflowLibrary


class WorkflowRunRequest(BaseModel):
    """The body of a workflow run: every field Roboflow's server accepts is accepted (most
    only matter to Roboflow's cloud); anything else is a clear 422."""

    model_config = ConfigDict(extra="forbid")

    specification: dict[str, Any] | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    excluded_fields: list[str] | None = Field(None, description="outputs left out of the answer")
    workflow_version_id: str | None = Field(None, description="a version of a named workflow")
    api_key: str | None = Field(None, description="checked against http.api_key when set")
    workflow_id: str | None = Field(None, description="accepted; the route names the workflow")
    use_cache: bool = Field(True, description="accepted; compiled workflows are always cached")
    enable_profiling: bool = Field(False, description="accepted; per-step times are in steps_ms")
    disable_sinks: bool = Field(False, description="accepted; workflows here have no sinks")
    is_preview: bool = False
    debug: bool = False


@dataclass
class RunAsk:
    """What a request asks for, whatever its wire shape."""

    specification: dict[str, Any] | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    excluded_fields: Sequence[str] = ()
    version: str | None = None


def validation_problem(exc: ValidationError, prefix: str = "") -> BadInput:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in (prefix, *first["loc"]) if part != "")
    return BadInput(where or "body", first["msg"])


async def read_json(request: Request) -> Any:
    try:
        return orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError as exc:
        raise BadInput("body", f"not valid JSON: {exc}") from None


async def read_form(request: Request) -> tuple[dict[str, bytes], dict[str, str]]:
    """A multipart form as (files by field name, text fields by name)."""
    form = await request.form()
    files: dict[str, bytes] = {}
    fields: dict[str, str] = {}
    for key, item in form.multi_items():
        if isinstance(item, UploadFile):
            files[key] = await item.read()
        else:
            fields[key] = item
    return files, fields


def form_json(fields: Mapping[str, str], key: str) -> Any:
    text = fields.get(key)
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadInput(key, f"not valid JSON: {exc}") from None


def parse_scalar(text: str) -> Any:
    """A multipart text field: JSON when it parses (0.5, true, [1, 2]), else the string."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


async def read_ask(request: Request) -> RunAsk:
    """A Roboflow-style request: a JSON `WorkflowRunRequest`, or a form with image files named
    after the workflow's inputs and the other inputs as text fields (or `inputs` as JSON)."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        files, fields = await read_form(request)
        inputs = {**(form_json(fields, "inputs") or {}), **files}
        for key, text in fields.items():
            if key not in ("specification", "inputs", "api_key"):
                inputs[key] = parse_scalar(text)
        return RunAsk(form_json(fields, "specification"), inputs)
    try:
        body = WorkflowRunRequest.model_validate(await read_json(request))
    except ValidationError as exc:
        raise validation_problem(exc) from None
    return RunAsk(
        body.specification, dict(body.inputs), body.excluded_fields or (), body.workflow_version_id
    )


@dataclass(frozen=True)
class Prepared:
    workflow: CompiledWorkflow
    runs: list[tuple[dict[str, Image], dict[str, Any]]]
    """(images, bound parameters) per run, in order."""


def batched(where: str, images: Mapping[str, Image | list[Image]]) -> list[dict[str, Image]]:
    """Image inputs, some of them lists, as one set of images per run: lists must agree in
    length; a single image goes with every run."""
    lengths = {name: len(value) for name, value in images.items() if isinstance(value, list)}
    size = max(lengths.values(), default=1)
    for name, length in lengths.items():
        if length != size:
            raise BadInput(f"{where}.{name}", f"{length} images, but another input has {size}")
    return [
        {name: value[i] if isinstance(value, list) else value for name, value in images.items()}
        for i in range(size)
    ]


class WorkflowRuns:
    """Finds, prepares and runs workflows for the HTTP routes."""

    def __init__(
        self,
        library: WorkflowLibrary,
        fetcher: ImageFetcher,
        *,
        max_images: int = 64,
        run_timeout_s: float = 60.0,
    ) -> None:
        self.library = library
        self.fetcher = fetcher
        self.max_images = max_images
        """Images one request may carry: each is decoded before the first run."""
        self.run_timeout_s = run_timeout_s

    def named(self, name: str, version: str | None = None) -> CompiledWorkflow:
        try:
            return self.library.get(name, version)
        except UnknownWorkflow as exc:
            raise ApiError(ErrorCode.BAD_REQUEST, str(exc), 404) from None

    async def workflow_for(
        self, ask: RunAsk, name: str | None, version: str | None = None
    ) -> CompiledWorkflow:
        """The named workflow (the route's name; the version from the route or the body), or
        the inline `specification` compiled."""
        if name is not None:
            if ask.specification is not None:
                raise BadInput("specification", "a named workflow takes no specification")
            return self.named(name, version or ask.version)
        if not isinstance(ask.specification, dict):
            raise BadInput("specification", "missing: send the workflow definition")
        return await self.workflow_for_spec(ask.specification)

    async def workflow_for_spec(self, specification: dict[str, Any]) -> CompiledWorkflow:
        """An inline definition, compiled off the event loop (kept by content)."""
        return await asyncio.to_thread(self.library.inline, specification)

    async def prepare(
        self, workflow: CompiledWorkflow, inputs_per_run: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> Prepared:
        """Each (where, inputs): its images decoded (a list: a batch) and parameters bound."""
        runs: list[tuple[dict[str, Image], dict[str, Any]]] = []
        count = 0
        for where, inputs in inputs_per_run:
            images: dict[str, Image | list[Image]] = {}
            overrides = {}
            for name, value in inputs.items():
                if name in workflow.image_inputs:
                    count += len(value) if isinstance(value, list) else 1
                    if count > self.max_images:
                        message = f"over {self.max_images} images (http.max_batch_images)"
                        raise BadInput(f"{where}.{name}", message)
                    images[name] = await read_images(f"{where}.{name}", value, self.fetcher)
                else:
                    overrides[name] = value
            missing = [name for name in workflow.image_inputs if name not in images]
            if missing:
                raise BadInput(f"{where}.{missing[0]}", "missing image input")
            try:
                parameters = workflow.bind(overrides)
            except ParameterError as exc:
                raise BadInput(f"{where}.{exc.name}", str(exc)) from None
            runs.extend((each, parameters) for each in batched(where, images))
        return Prepared(workflow, runs)

    async def execute(self, prepared: Prepared) -> list[WorkflowRun]:
        """Every run in order, off the event loop, all within `run_timeout_s`."""

        def run_all() -> list[WorkflowRun]:
            return [prepared.workflow.run(images, params) for images, params in prepared.runs]

        try:
            async with asyncio.timeout(self.run_timeout_s):
                return await asyncio.to_thread(run_all)
        except StepFailed as exc:
            raise ApiError(ErrorCode.WORKFLOW_ERROR, str(exc), 500) from None
        except TimeoutError:
            message = f"workflow ran over {self.run_timeout_s:g} s"
            raise ApiError(ErrorCode.TIMEOUT, message, 504) from None


def refusal(exc: BadInput | WorkflowDefinitionError) -> ApiError:
    """A request the workflow cannot take: 422 naming the input, or each definition problem."""
    if isinstance(exc, WorkflowDefinitionError):
        problems = str(exc).splitlines()  # each "specification: step 'x' field 'y': ..."
        return ApiError(ErrorCode.BAD_REQUEST, "; ".join(problems), 422, problems=problems)
    return ApiError(ErrorCode.BAD_REQUEST, str(exc), 422)
