"""Roboflow's own client, `inference-sdk` (pinned in the dev dependencies), unmodified, against
the real gateway on uvicorn: workflows inline and named (one image and a batch), versions, the
API key in each of the SDK's transports, the stream manager on a generated video, server info."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from inference_sdk import InferenceConfiguration, InferenceHTTPClient
from inference_sdk.http.errors import HTTPCallErrorError

from gateway.sources.scene import ConveyorScene
from simulators.camera import write_video
from tests.conftest import gateway_in_thread, make_config, running_gateway
from tests.test_http_workflows import qr_png, qr_workflows, spec

KEY = "plant-key-7"


DARK_AREA = {
    "inputs": [{"type": "WorkflowImage", "name": "image"}],
    "steps": [
        {"type": "color_area", "name": "dark", "image": "$inputs.image",
         "lower": [0, 0, 0], "upper": [179, 255, 60]},
    ],
    "outputs": [
        {"type": "JsonField", "name": "fraction", "selector": "$steps.dark.fraction"},
        {"type": "JsonField", "name": "area", "selector": "$steps.dark.area_px"},
    ],
}  # fmt: skip


def qr_image(text: str) -> np.ndarray[Any, Any]:
    image = cv2.imdecode(np.frombuffer(qr_png(text), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def config(**top: Any) -> Any:
    return make_config(
        workflows=qr_workflows("tests/part_present.yaml"),
        http={"api_key": KEY, "workspace": "plant"},
        **top,
    )


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    with gateway_in_thread(config()) as (_, url, _):
        yield url


def client(url: str, transport: str = "legacy", key: str = KEY) -> InferenceHTTPClient:
    """The SDK as its docs show it; `legacy` (the default) sends the key in bodies and query
    strings, `header` as `Authorization: Bearer`, `both` both."""
    sdk = InferenceHTTPClient(api_url=url, api_key=key)
    sdk.configure(
        InferenceConfiguration(api_key_transport=transport, output_visualisation_format="numpy")
    )
    return sdk


def test_run_workflow_inline_one_image_and_a_batch(gateway_url: str) -> None:
    sdk = client(gateway_url)
    (one,) = sdk.run_workflow(specification=spec(), images={"image": qr_image("SN-1")})
    assert one["serial"] == "SN-1" and one["pass"] is True
    assert one["drawn"].shape == qr_image("SN-1").shape  # the SDK decoded our image output
    batch = sdk.run_workflow(
        specification=spec(),
        images={"image": [qr_image("SN-2"), qr_image("SN-3"), qr_image("SN-4")]},
        excluded_fields=["drawn"],
    )
    assert [entry["serial"] for entry in batch] == ["SN-2", "SN-3", "SN-4"]
    assert all("drawn" not in entry for entry in batch)


def test_run_named_workflow_and_its_versions(gateway_url: str) -> None:
    sdk = client(gateway_url)
    image = {"image": qr_image("SN-5")}
    (current,) = sdk.run_workflow(workspace_name="plant", workflow_id="qr", images=image)
    assert current["pass"] is True  # v2: threshold 0.1
    (first,) = sdk.run_workflow(
        workspace_name="plant", workflow_id="qr", workflow_version_id="1", images=image
    )
    assert first["pass"] is False  # v1: threshold 0.99
    (overridden,) = sdk.run_workflow(
        workspace_name="plant",
        workflow_id="qr",
        images=image,
        parameters={"threshold": 0.99},
        disable_sinks=True,
        enable_profiling=False,
        use_cache=False,
    )
    assert overridden["pass"] is False
    with pytest.raises(HTTPCallErrorError) as wrong_workspace:
        sdk.run_workflow(workspace_name="other", workflow_id="qr", images=image)
    assert wrong_workspace.value.status_code == 404


def test_legacy_routes_take_the_same_calls(gateway_url: str) -> None:
    """`infer_from_workflow` posts to Roboflow's older `/infer/workflows/...` routes."""
    sdk = client(gateway_url)
    image = {"image": qr_image("SN-6")}
    (named,) = sdk.infer_from_workflow(workspace_name="plant", workflow_name="qr", images=image)
    (inline,) = sdk.infer_from_workflow(specification=spec(), images=image)
    assert named["serial"] == inline["serial"] == "SN-6"


@pytest.mark.parametrize("transport", ["legacy", "header", "both"])
def test_api_key_in_every_transport_of_the_sdk(gateway_url: str, transport: str) -> None:
    (result,) = client(gateway_url, transport).run_workflow(
        specification=spec(), images={"image": qr_image("SN-7")}
    )
    assert result["serial"] == "SN-7"
    assert client(gateway_url, transport).list_inference_pipelines()["pipelines"] == ["cam"]
    with pytest.raises(HTTPCallErrorError) as refused:
        client(gateway_url, transport, key="wrong").run_workflow(
            specification=spec(), images={"image": qr_image("SN-7")}
        )
    assert refused.value.status_code == 401


def test_api_key_as_query_parameter(gateway_url: str) -> None:
    assert httpx.get(f"{gateway_url}/streams?api_key={KEY}").status_code == 200
    assert httpx.get(f"{gateway_url}/streams?api_key=wrong").status_code == 401


def test_server_info(gateway_url: str) -> None:
    info = client(gateway_url).get_server_info()
    assert info.name == "Inspection gateway"
    assert info.uuid == "gateway"
    assert info.version


def test_stream_manager_on_a_video_started_by_the_sdk(gateway_url: str, tmp_path: Path) -> None:
    video = write_video(tmp_path / "line.avi", ConveyorScene(320, 240), frames=40, fps=20.0)
    sdk = client(gateway_url)
    started = sdk.start_inference_pipeline_with_workflow(
        video_reference=str(video),
        workflow_specification=DARK_AREA,
        max_fps=10,
    )
    assert started["status"] == "success"
    pipeline_id = started["context"]["pipeline_id"]
    assert pipeline_id in sdk.list_inference_pipelines()["pipelines"]
    outputs: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        consumed = sdk.consume_inference_pipeline_result(pipeline_id, excluded_fields=["area"])
        outputs.extend(consumed["outputs"])
        status = sdk.get_inference_pipeline_status(pipeline_id)
        if status["report"]["camera"]["ended"] and not consumed["outputs"]:
            break
        time.sleep(0.2)
    assert status["report"]["camera"]["ended"] is True  # a 2 s video, played once
    assert 5 <= len(outputs) <= 21  # at most max_fps (10/s) over 2 s of video
    assert all(set(entry) == {"fraction"} for entry in outputs)
    assert sdk.terminate_inference_pipeline(pipeline_id)["status"] == "success"
    assert pipeline_id not in sdk.list_inference_pipelines()["pipelines"]
    with pytest.raises(HTTPCallErrorError) as gone:
        sdk.get_inference_pipeline_status(pipeline_id)
    assert gone.value.status_code == 404


def test_stream_manager_refuses_what_it_cannot_run(gateway_url: str) -> None:
    sdk = client(gateway_url)
    with pytest.raises(HTTPCallErrorError) as missing:
        sdk.start_inference_pipeline_with_workflow(
            video_reference="/no/such/video.mp4", workspace_name="plant", workflow_id="demo"
        )
    assert missing.value.status_code == 422
    assert "no video file '/no/such/video.mp4'" in str(missing.value.api_message)
    with pytest.raises(HTTPCallErrorError) as outside:
        sdk.start_inference_pipeline_with_workflow(
            video_reference="rtsp://10.0.0.9/cam", workspace_name="plant", workflow_id="demo"
        )
    assert "not in http.image_urls.allow" in str(outside.value.api_message)


async def test_runtime_streams_are_bounded(tmp_path: Path) -> None:
    """Past `http.max_runtime_streams`, `initialise` is refused (429 BUSY) until one ends."""
    video = write_video(tmp_path / "line.avi", ConveyorScene(160, 120), frames=400, fps=20.0)
    body = {
        "video_configuration": {"type": "VideoConfiguration", "video_reference": str(video)},
        "processing_configuration": {
            "type": "WorkflowConfiguration", "workflow_specification": DARK_AREA,
        },
    }  # fmt: skip
    async with running_gateway(make_config(http={"max_runtime_streams": 1})) as (_, client, _):
        first = (await client.post("/inference_pipelines/initialise", json=body)).json()
        refused = await client.post("/inference_pipelines/initialise", json=body)
        assert refused.status_code == 429
        assert "http.max_runtime_streams: 1" in refused.json()["message"]
        await client.post(f"/inference_pipelines/{first['context']['pipeline_id']}/terminate")
        again = await client.post("/inference_pipelines/initialise", json=body)
        assert again.status_code == 200 and again.json()["status"] == "success"
