"""The trigger path end to end over real HTTP: uvicorn on loopback, real cameras, real models."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from gateway.model import Origin, Trigger
from gateway.sources.scene import decode_frame_index
from tests.conftest import (
    first_frame,
    make_config,
    running_gateway,
    wait_until,
)

RAW_IMAGE_WORKFLOW = {
    "specification": {
        "inputs": [{"type": "WorkflowImage", "name": "image"}],
        "steps": [],
        "outputs": [{"type": "JsonField", "name": "image", "selector": "$inputs.image"}],
    }
}
"""Outputs the frame itself, so a test can read the frame index stripe the workflow saw."""


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def test_trigger_returns_the_workflow_result_for_the_latest_frame() -> None:
    async with running_gateway(make_config()) as (gateway, client, published):
        await first_frame(gateway)
        before = time.time()
        response = await client.post("/streams/cam/trigger", json={"trigger_id": "part-1"})
        body = response.json()
        assert response.status_code == 200, body
        assert body["success"] is True
        assert body["error"] is None
        assert body["trigger_id"] == "part-1"
        assert body["source"] == "http"
        assert body["result_id"] == 1
        assert body["outputs"]["class"] in {"empty", "part", "wrong_colour"}
        assert body["pass"] == (
            body["outputs"]["class"] == "part" and body["outputs"]["confidence"] >= 0.6
        )
        assert set(body["timings"]["steps_ms"]) == {"part", "verdict"}
        # the latest frame: captured before the trigger, no older than max_age_ms (500)
        received, captured = _epoch(body["received_at"]), _epoch(body["frame_timestamp"])
        assert captured <= received
        assert 0.0 <= body["frame_age_ms"] <= 500.0
        assert received >= before - 0.01
        assert [r.trigger_id for r in published] == ["part-1"]


async def test_result_is_computed_on_the_frame_it_names() -> None:
    """The frame id in the result is the frame the workflow saw (checked via the pixels)."""
    config = make_config(
        workflows={"raw": RAW_IMAGE_WORKFLOW},
        streams={
            "cam": {"source": {"type": "synthetic", "width": 320, "height": 240}, "workflow": "raw"}
        },
    )
    async with running_gateway(config) as (gateway, _, _published):
        await first_frame(gateway)
        stream = gateway.streams["cam"]
        for _ in range(3):
            result = await gateway.dispatcher.inspect(Trigger("cam", Origin.PYTHON))
            image = result.outputs["image"]
            assert isinstance(image, np.ndarray)
            # frame ids count from 1, the scene's frame index from 0
            assert decode_frame_index(image) == result.frame_id - 1  # type: ignore[operator]
            await asyncio.sleep(0.05)
        assert stream.counters["accepted"] == 3


async def test_next_policy_never_returns_a_frame_captured_before_the_trigger() -> None:
    config = make_config(
        streams={
            "cam": {
                "source": {"type": "synthetic", "width": 320, "height": 240, "fps": 10},
                "workflow": "demo",
                "frame_policy": {"type": "next", "timeout_ms": 2000},
            }
        }
    )
    async with running_gateway(config) as (gateway, client, _):
        await first_frame(gateway)
        for _ in range(5):
            body = (await client.post("/streams/cam/trigger")).json()
            assert body["success"], body
            assert _epoch(body["frame_timestamp"]) >= _epoch(body["received_at"])
            assert body["frame_age_ms"] <= 0.0


async def test_roboflow_edge_trigger_and_stream_manager() -> None:
    async with running_gateway(make_config()) as (gateway, client, _):
        await first_frame(gateway)
        body = (
            await client.post("/inference_pipelines/cam/trigger", json={"min_confidence": 0.0})
        ).json()
        assert body["success"] is True
        assert "outputs" in body
        listing = (await client.get("/inference_pipelines/list")).json()
        assert listing["status"] == "success"
        assert listing["pipelines"] == ["cam"]
        assert set(listing["context"]) == {"request_id", "pipeline_id"}
        status = (await client.get("/inference_pipelines/cam/status")).json()
        assert status["report"]["camera"]["connected"] is True
        assert status["context"]["pipeline_id"] == "cam"
        paused = await client.post("/inference_pipelines/cam/pause")
        assert paused.json()["stream"]["state"] == "paused"
        body = (await client.post("/inference_pipelines/cam/trigger")).json()
        assert body["success"] is False
        assert "paused" in body["message"]
        await client.post("/inference_pipelines/cam/resume")
        assert (await client.post("/inference_pipelines/cam/trigger")).json()["success"] is True


async def test_roboflow_edge_trigger_answers_200_whatever_the_body() -> None:
    """Roboflow's edge trigger promises `200` with `success`: a body that is not JSON, not
    UTF-8 or a form is a BAD_REQUEST result, not a 422."""
    async with running_gateway(make_config()) as (gateway, client, published):
        await first_frame(gateway)
        bodies = [
            (b"hello", "text/plain"),
            (b"\xff\xfe{", "application/json"),
            (b"a=b", "application/x-www-form-urlencoded"),
            (b"[1, 2]", "application/json"),
        ]
        for content, content_type in bodies:
            response = await client.post(
                "/inference_pipelines/cam/trigger",
                content=content,
                headers={"content-type": content_type},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["success"] is False and body["error"]["name"] == "BAD_REQUEST"
        assert [r.error_code.name for r in published] == ["BAD_REQUEST"] * len(bodies)


async def test_async_trigger_answers_202_then_the_job_holds_the_result() -> None:
    async with running_gateway(make_config()) as (gateway, client, published):
        await first_frame(gateway)
        accepted = await client.post("/streams/cam/trigger/async", json={"trigger_id": "a-1"})
        assert accepted.status_code == 202
        job_id = accepted.json()["job_id"]
        job = (await client.get(f"/jobs/{job_id}", params={"wait_s": 5})).json()
        assert job["status"] == "done"
        assert job["result"]["trigger_id"] == "a-1"
        assert job["result"]["error"] is None
        missing = await client.get("/jobs/nope")
        assert missing.status_code == 404
        assert len(published) == 1


async def test_idempotency_key_answers_a_repeat_with_the_same_result() -> None:
    async with running_gateway(make_config()) as (gateway, client, published):
        await first_frame(gateway)
        headers = {"Idempotency-Key": "k-1"}
        first = (await client.post("/streams/cam/trigger", headers=headers)).json()
        second = (await client.post("/streams/cam/trigger", headers=headers)).json()
        assert first == second
        third = (
            await client.post("/streams/cam/trigger", headers={"Idempotency-Key": "k-2"})
        ).json()
        assert third["result_id"] == first["result_id"] + 1
        assert len(published) == 2


async def test_latest_frame_is_a_jpeg_and_health_routes_answer() -> None:
    async with running_gateway(make_config()) as (gateway, client, _):
        await first_frame(gateway)
        response = await client.get("/streams/cam/latest_frame")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None
        assert image.shape == (240, 320, 3)
        assert int(response.headers["x-frame-id"]) >= 1
        assert (await client.get("/healthz")).json()["status"] == "ok"
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        streams = (await client.get("/streams")).json()["streams"]
        assert streams[0]["id"] == "cam" and streams[0]["activity"] in {"ready", "busy"}


async def test_image_sequence_camera_with_the_pcb_classifier_gives_golden_results(
    shared_models: Path, tmp_path: Path
) -> None:
    """Each sample board as a camera (OpenCV reading an image sequence), classified by the real
    PCB model through the whole HTTP path."""
    golden = {
        "Defective_02": ("Defective", 0.997),
        "Defective_25": ("Defective", 1.000),
        "Normal_33": ("Normal", 0.934),
        "Normal_35": ("Normal", 0.870),
    }
    workflow = {
        "specification": {
            "inputs": [{"type": "WorkflowImage", "name": "image"}],
            "steps": [
                {
                    "type": "onnx_classification",
                    "name": "pcb",
                    "image": "$inputs.image",
                    "model": str(shared_models / "pcb-aoi" / "pcb-aoi.onnx"),
                    "resize": "crop",
                    "resize_to": [256, 256],
                    "color_order": "BGR",
                    "scale": 1.0,
                    "output": "loss.1",
                    "class_names": ["Defective", "Normal"],
                },
                {
                    "type": "expression",
                    "name": "rule",
                    "expression": "top == 'Normal'",
                    "variables": {"top": "$steps.pcb.top"},
                },
            ],
            "outputs": [
                {"type": "JsonField", "name": "label", "selector": "$steps.pcb.top"},
                {"type": "JsonField", "name": "confidence", "selector": "$steps.pcb.confidence"},
                {"type": "JsonField", "name": "pass", "selector": "$steps.rule.result"},
            ],
        }
    }
    streams = {}
    for board in golden:
        image = cv2.imread(str(shared_models / "pcb-aoi" / f"{board}.png"), cv2.IMREAD_COLOR)
        assert image is not None
        # A PNG image sequence: OpenCV reads it as a video, losslessly and at odd sizes
        # (video codecs would cut the odd row, which moves this sensitive model's scores).
        folder = tmp_path / board
        folder.mkdir()
        for index in range(3):
            cv2.imwrite(str(folder / f"{index:03d}.png"), image)
        video = folder / "%03d.png"
        streams[board] = {
            "source": {"type": "video_file", "path": str(video), "loop": True},
            "workflow": "pcb",
        }
    config = make_config(workflows={"pcb": workflow}, streams=streams)
    async with running_gateway(config) as (gateway, client, _):
        for board, (label, confidence) in golden.items():
            await first_frame(gateway, board)
            body = (await client.post(f"/streams/{board}/trigger")).json()
            assert body["success"], body
            assert body["outputs"]["label"] == label
            assert body["outputs"]["confidence"] == pytest.approx(confidence, abs=0.03)
            assert body["pass"] is (label == "Normal")
        assert len(gateway.models) == 1  # one model file, loaded once, shared by four streams


async def test_demo_workflow_agrees_with_the_scene_ground_truth() -> None:
    """The default config's workflow on the live synthetic conveyor, through HTTP: the scene's
    ground truth for the frame each result names (`frame_id`) decides defect and serial."""
    from gateway.sources.scene import ConveyorScene

    config = make_config(
        streams={
            "cam": {
                "source": {"type": "synthetic", "width": 640, "height": 480, "fps": 30},
                "workflow": "inspection",
            }
        }
    )
    scene = ConveyorScene(640, 480)
    agree = 0
    async with running_gateway(config) as (gateway, client, _):
        await first_frame(gateway)
        for _ in range(30):
            body = (await client.post("/streams/cam/trigger")).json()
            part = scene.part_in_position(body["frame_id"] - 1)
            truth = "no_part" if part is None else part.defect or "none"
            serial_ok = part is None or body["outputs"]["serial"] == part.serial
            agree += body["outputs"]["defect"] == truth and serial_ok
            await asyncio.sleep(0.05)
    assert agree >= 29, f"only {agree}/30 results agree with the ground truth"


async def test_video_file_camera_delivers_its_frames_in_order(tmp_path: Path) -> None:
    """A real MJPG video read by OpenCV: paced at its own rate, looping, frame stripes intact."""
    from gateway.sources.scene import ConveyorScene
    from simulators.camera import write_video

    video = write_video(tmp_path / "conveyor.avi", ConveyorScene(320, 240), frames=20, fps=50.0)
    config = make_config(
        workflows={"raw": RAW_IMAGE_WORKFLOW},
        streams={"cam": {"source": {"type": "video_file", "path": str(video)}, "workflow": "raw"}},
    )
    async with running_gateway(config) as (gateway, _, _published):
        stream = gateway.streams["cam"]
        await wait_until(lambda: stream.capture.health().frames >= 30)  # looped at least once
        health = stream.capture.health()
        # paced at the file's 50 fps, not decoded as fast as possible (load can only slow it)
        assert health.connected and 0 < health.fps <= 70
        for _ in range(3):
            result = await gateway.dispatcher.inspect(Trigger("cam", Origin.PYTHON))
            assert result.frame_id is not None
            # file frame i carries index i; frame ids count on across loops
            assert decode_frame_index(result.outputs["image"]) == (result.frame_id - 1) % 20
