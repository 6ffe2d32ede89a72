"""HTTP routes that run workflows on uploaded images, shaped like Roboflow's inference server:
`POST /workflows/run` with an inline `specification`, `POST /workflows/{name}/run` and
`POST /workflows/{name}/versions/{version}/run` for the config's named workflows. Inputs come
as JSON (images as `{"type": "base64", "value": ...}`) or multipart/form-data (image files
named after the workflow's image inputs, `inputs` as a JSON text field)."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from adapters.http.errors import ApiError, ErrorBody, JsonResponse, WorkflowAnswer, answers
from gateway.model import ErrorCode
from gateway.serialise import to_json
from gateway.wire import error_body
from gateway.workflow import CompiledWorkflow, ParameterError, StepFailed, WorkflowDefinitionError
from gateway.workflow_library import UnknownWorkflow, WorkflowLibrary


class WorkflowRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    specification: dict[str, Any] | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    api_key: str | None = Field(None, description="accepted for Roboflow clients; not used")


class BadInput(ValueError):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")


def decode_image(name: str, value: Any) -> np.ndarray:
    """A base64 image input ({"type": "base64", "value": ...} or a bare string) or file bytes."""
    where = f"inputs.{name}"
    if isinstance(value, bytes):
        data = value
    else:
        if isinstance(value, dict):
            kind = value.get("type")
            if kind != "base64":
                raise BadInput(
                    where, f"image type {kind!r} is not supported: send base64 or a file"
                )
            value = value.get("value")
        if not isinstance(value, str):
            raise BadInput(where, 'expected a base64 image: {"type": "base64", "value": ...}')
        try:
            data = base64.b64decode(value.split(",", 1)[-1], validate=True)
        except (binascii.Error, ValueError):
            raise BadInput(where, "not valid base64") from None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise BadInput(where, "not a decodable image (JPEG, PNG, BMP, TIFF...)")
    return image


async def read_request(
    request: Request,
) -> WorkflowRunRequest | tuple[dict[str, Any], dict[str, Any]]:
    """JSON body as a request model; multipart as (files by name, other inputs)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        files: dict[str, Any] = {}
        fields: dict[str, Any] = {}
        for key, item in form.multi_items():
            if isinstance(item, UploadFile):
                files[key] = await item.read()
            else:
                fields[key] = item
        return files, fields
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError as exc:
        raise BadInput("body", f"not valid JSON: {exc}") from None
    try:
        return WorkflowRunRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise BadInput(".".join(str(p) for p in first["loc"]) or "body", first["msg"]) from None


def _form_json(fields: Mapping[str, Any], key: str) -> Any:
    text = fields.get(key)
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadInput(key, f"not valid JSON: {exc}") from None


def _split_inputs(
    workflow: CompiledWorkflow, inputs: Mapping[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    images, parameters = {}, {}
    for name, value in inputs.items():
        if name in workflow.image_inputs:
            images[name] = decode_image(name, value)
        else:
            parameters[name] = value
    missing = [name for name in workflow.image_inputs if name not in images]
    if missing:
        raise BadInput(f"inputs.{missing[0]}", "missing image input")
    return images, parameters


RUN_ANSWER = answers(WorkflowAnswer, 200)


def workflow_router(library: WorkflowLibrary, run_timeout_s: float = 60.0) -> APIRouter:
    router = APIRouter(
        tags=["workflows"],
        responses=answers(ErrorBody, 404, 500, 504),
    )

    async def run(request: Request, named: CompiledWorkflow | None) -> Response:
        try:
            workflow, images, parameters = await _prepare(library, request, named)
        except BadInput as exc:
            raise ApiError(ErrorCode.BAD_REQUEST, str(exc), 422) from None
        except ParameterError as exc:
            raise ApiError(ErrorCode.BAD_REQUEST, f"inputs.{exc.name}: {exc}", 422) from None
        except WorkflowDefinitionError as exc:
            problems = str(exc).splitlines()  # each "specification: step 'x' field 'y': ..."
            body = error_body(ErrorCode.BAD_REQUEST, "; ".join(problems), problems=problems)
            return JsonResponse(body, status_code=422)
        try:
            async with asyncio.timeout(run_timeout_s):
                result = await asyncio.to_thread(workflow.run, images, parameters)
        except StepFailed as exc:
            raise ApiError(ErrorCode.WORKFLOW_ERROR, str(exc), 500) from None
        except TimeoutError:
            raise ApiError(ErrorCode.TIMEOUT, f"workflow ran over {run_timeout_s} s", 504) from None
        outputs = await asyncio.to_thread(to_json, result.outputs)
        return JsonResponse(
            {"outputs": [outputs], "pass": result.passed, "steps_ms": result.steps_ms}
        )

    def named_or_404(name: str, version: str | None = None) -> CompiledWorkflow:
        try:
            return library.get(name, version)
        except UnknownWorkflow as exc:
            raise ApiError(ErrorCode.BAD_REQUEST, str(exc), 404) from None

    @router.post("/workflows/run", responses=RUN_ANSWER)
    async def run_inline(request: Request) -> Response:
        """Run the definition sent in `specification` on the images in `inputs`."""
        return await run(request, None)

    @router.get("/workflows")
    async def list_workflows() -> dict[str, Any]:
        return {"workflows": library.describe()}

    @router.post("/workflows/{name}/run", responses=RUN_ANSWER)
    async def run_named(name: str, request: Request) -> Response:
        """Run the current version of a workflow from the config."""
        return await run(request, named_or_404(name))

    @router.post("/workflows/{name}/versions/{version}/run", responses=RUN_ANSWER)
    async def run_version(name: str, version: str, request: Request) -> Response:
        """Run one version of a workflow from the config."""
        return await run(request, named_or_404(name, version))

    return router


def _parse_scalar(text: str) -> Any:
    """A multipart text field: JSON when it parses (0.5, true, [1, 2]), else the string."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


async def _prepare(
    library: WorkflowLibrary, request: Request, named: CompiledWorkflow | None
) -> tuple[CompiledWorkflow, dict[str, Any], dict[str, Any]]:
    """The workflow to run, its images and its bound parameters, from a JSON or form request."""
    parsed = await read_request(request)
    if isinstance(parsed, WorkflowRunRequest):
        specification, inputs = parsed.specification, dict(parsed.inputs)
    else:
        files, fields = parsed
        specification = _form_json(fields, "specification")
        inputs = {**(_form_json(fields, "inputs") or {}), **files}
        for key, text in fields.items():
            if key not in ("specification", "inputs", "api_key"):
                inputs[key] = _parse_scalar(text)
    if named is not None:
        if specification is not None:
            raise BadInput("specification", "a named workflow takes no specification")
        workflow = named
    elif not isinstance(specification, dict):
        raise BadInput("specification", "missing: send the workflow definition")
    else:
        workflow = await asyncio.to_thread(library.inline, specification)
    images, overrides = _split_inputs(workflow, inputs)
    return workflow, images, workflow.bind(overrides)
