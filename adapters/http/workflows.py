"""HTTP routes that run workflows on uploaded images, as Roboflow's inference server takes them.

Inline definitions: `POST /workflows/run` (and Roboflow's legacy `/infer/workflows`) with a
`specification`. Named workflows from the config: `POST /workflows/{name}/run`,
`/workflows/{name}/versions/{version}/run`, and Roboflow's `/{workspace}/workflows/{id}` and
`/infer/workflows/{workspace}/{id}` (`workflow_version_id` in the body picks a version; the
workspace is checked against `http.workspace` when that is set). `GET /info` is Roboflow's
server description. Answers are `{"outputs": [...]}`, one entry per image, image outputs as
`{"type": "base64", "value": ...}` JPEG as Roboflow sends them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from adapters.http.errors import ApiError, ErrorBody, JsonResponse, WorkflowAnswer, answers
from adapters.http.image_inputs import BadInput
from adapters.http.workflow_runs import (
    RunAsk,
    WorkflowRunRequest,
    WorkflowRuns,
    read_ask,
    refusal,
)
from gateway.model import ErrorCode
from gateway.serialise import to_json
from gateway.workflow import WorkflowDefinitionError, WorkflowRun

RUN_ANSWER = answers(WorkflowAnswer, 200)
RUN_BODY = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {"schema": WorkflowRunRequest.model_json_schema()},
            "multipart/form-data": {"schema": {"type": "object"}},
        },
    }
}
SERVER_NAME = "Inspection gateway"


class ServerInfo(BaseModel):
    name: str
    version: str
    uuid: str


def answer_body(runs: list[WorkflowRun], excluded: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Roboflow's answer, plus the verdicts and step times Roboflow does not have."""
    outputs = []
    for run in runs:
        kept = {name: value for name, value in run.outputs.items() if name not in excluded}
        outputs.append(to_json(kept))
    steps: dict[str, float] = {}
    for run in runs:
        for step, ms in run.steps_ms.items():
            steps[step] = steps.get(step, 0.0) + ms
    verdicts = [run.passed for run in runs]
    overall = None if None in verdicts else all(verdict is True for verdict in verdicts)
    return {"outputs": outputs, "pass": overall, "pass_each": verdicts, "steps_ms": steps}


def workflow_router(
    runs: WorkflowRuns, *, gateway_id: str, version: str, workspace: str | None
) -> APIRouter:
    router = APIRouter(tags=["workflows"], responses=answers(ErrorBody, 404, 500, 504))

    async def run(request: Request, name: str | None, version: str | None = None) -> Response:
        try:
            ask: RunAsk = await read_ask(request)
            workflow = await runs.workflow_for(ask, name, version)
            prepared = await runs.prepare(workflow, [("inputs", ask.inputs)])
        except (BadInput, WorkflowDefinitionError) as exc:
            raise refusal(exc) from None
        done = await runs.execute(prepared)
        return JsonResponse(answer_body(done, tuple(ask.excluded_fields)))

    def check_workspace(name: str) -> None:
        if workspace is not None and name != workspace:
            message = f"workspace {name!r} is not this gateway's (http.workspace: {workspace!r})"
            raise ApiError(ErrorCode.BAD_REQUEST, message, 404)

    @router.post("/workflows/run", responses=RUN_ANSWER, openapi_extra=RUN_BODY)
    async def run_inline(request: Request) -> Response:
        """Run the definition sent in `specification` on the images in `inputs`."""
        return await run(request, None)

    @router.post(
        "/infer/workflows", responses=RUN_ANSWER, openapi_extra=RUN_BODY, tags=["roboflow"]
    )
    async def run_inline_legacy(request: Request) -> Response:
        """Roboflow's older name for `/workflows/run`."""
        return await run(request, None)

    @router.get("/workflows")
    async def list_workflows() -> dict[str, Any]:
        return {"workflows": runs.library.describe()}

    @router.post("/workflows/{name}/run", responses=RUN_ANSWER, openapi_extra=RUN_BODY)
    async def run_named(name: str, request: Request) -> Response:
        """Run the current version of a workflow from the config."""
        return await run(request, name)

    @router.post(
        "/workflows/{name}/versions/{version}/run", responses=RUN_ANSWER, openapi_extra=RUN_BODY
    )
    async def run_version(name: str, version: str, request: Request) -> Response:
        """Run one version of a workflow from the config."""
        return await run(request, name, version)

    async def run_roboflow_named(workspace_name: str, workflow_id: str, request: Request) -> Any:
        """Roboflow's named-workflow route: `workflow_id` is a workflow of the config."""
        check_workspace(workspace_name)
        return await run(request, workflow_id)

    for path in (
        "/{workspace_name}/workflows/{workflow_id}",
        "/infer/workflows/{workspace_name}/{workflow_id}",  # Roboflow's older name
    ):
        router.add_api_route(
            path,
            run_roboflow_named,
            methods=["POST"],
            responses=RUN_ANSWER,
            openapi_extra=RUN_BODY,
            tags=["roboflow"],
        )

    @router.get("/info", tags=["roboflow"])
    async def info() -> ServerInfo:
        """The server's name, version and this gateway's id (Roboflow's `get_server_info`)."""
        return ServerInfo(name=SERVER_NAME, version=version, uuid=gateway_id)

    return router
