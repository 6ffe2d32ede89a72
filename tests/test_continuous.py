"""Continuous streams: the workflow on every new frame up to max_fps, frames skipped (never
queued) when inference is slower, results on /consume, switched at run time."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from pathlib import Path
from typing import Any

from tests.conftest import make_config, running_gateway, wait_until

FRAME_WORKFLOW = {
    "specification": {
        "inputs": [{"type": "WorkflowImage", "name": "image"}],
        "steps": [{"type": "color_area", "name": "bright", "image": "$inputs.image",
                   "lower": [0, 0, 200], "upper": [179, 255, 255]}],
        "outputs": [{"type": "JsonField", "name": "bright", "selector": "$steps.bright.fraction"}],
    }
}  # fmt: skip


def camera(fps: float, **stream: Any) -> dict[str, Any]:
    return {
        "cam": {
            "source": {"type": "synthetic", "width": 320, "height": 240, "fps": fps},
            "workflow": "frame",
            **stream,
        }
    }


async def test_runs_at_most_max_fps_on_distinct_frames() -> None:
    config = make_config(camera(30, mode="continuous", max_fps=5), {"frame": FRAME_WORKFLOW})
    async with running_gateway(config) as (_gateway, client, published):
        started = time.monotonic()
        await wait_until(lambda: len(published) >= 4, timeout_s=10)
        body = (await client.get("/inference_pipelines/cam/consume")).json()
        elapsed = time.monotonic() - started
        assert body["status"] == "success"
        assert len(body["outputs"]) == len(body["frames_metadata"]) >= 4
        assert len(body["outputs"]) <= math.ceil(elapsed * 5) + 1  # paced, never faster
        assert all(0.0 <= output["bright"] <= 1.0 for output in body["outputs"])
        frame_ids = [meta["frame_id"] for meta in body["frames_metadata"]]
        assert frame_ids == sorted(set(frame_ids))  # each frame at most once, in order
        assert all(later - earlier > 1 for earlier, later in itertools.pairwise(frame_ids))
        assert {result.origin for result in published} == {"continuous"}
        again = (await client.get("/streams/cam/consume")).json()["frames_metadata"]
        assert all(meta["frame_id"] > frame_ids[-1] for meta in again)  # consumed once only


async def test_slow_inference_skips_frames_and_never_queues(shared_models: Path) -> None:
    slow = {
        "specification": {
            "inputs": [{"type": "WorkflowImage", "name": "image"}],
            "steps": [{"type": "onnx_object_detection", "name": "det", "image": "$inputs.image",
                       "model": str(shared_models / "yolov8n-coco-int8" / "yolov8n_int8.onnx")}],
            "outputs": [{"type": "JsonField", "name": "n", "selector": "$steps.det.count"}],
        }
    }  # fmt: skip
    config = make_config(camera(60, mode="continuous", max_fps=1000), {"frame": slow})
    async with running_gateway(config) as (gateway, _, published):
        stream = gateway.streams["cam"]
        most_pending = 0
        deadline = time.monotonic() + 20
        while len(published) < 8 and time.monotonic() < deadline:
            most_pending = max(most_pending, stream.pending)
            await asyncio.sleep(0.005)
        assert len(published) >= 8
        assert most_pending <= 1  # never a queue of frames
        frame_ids = [result.frame_id or 0 for result in published]
        gaps = [later - earlier for earlier, later in itertools.pairwise(frame_ids)]
        assert all(gap >= 1 for gap in gaps)
        assert stream.capture.health().frames > len(published)  # frames came faster: skipped
        assert all(result.ok for result in published)


async def test_switch_modes_at_run_time_and_triggers_still_work() -> None:
    config = make_config(camera(30, max_fps=20), {"frame": FRAME_WORKFLOW})
    async with running_gateway(config) as (gateway, client, published):
        await wait_until(lambda: gateway.streams["cam"].capture.latest() is not None)
        await asyncio.sleep(0.3)
        assert (await client.get("/streams/cam/consume")).json()["outputs"] == []
        switched = await client.post("/streams/cam/mode", json={"mode": "continuous"})
        assert switched.status_code == 200 and switched.json()["stream"]["mode"] == "continuous"
        await wait_until(lambda: len(published) >= 3)
        triggered = await client.post("/streams/cam/trigger", json={"trigger_id": "manual"})
        assert triggered.status_code == 200 and triggered.json()["source"] == "http"
        back = await client.post("/streams/cam/mode", json={"mode": "triggered"})
        assert back.json()["stream"]["mode"] == "triggered"
        await asyncio.sleep(0.2)  # a run in flight may still finish
        consumed = (await client.get("/streams/cam/consume")).json()["frames_metadata"]
        assert len(consumed) >= 3 and all(meta["error"] is None for meta in consumed)
        count = len(published)
        await asyncio.sleep(0.5)
        assert len(published) == count
        assert (await client.get("/streams/cam/consume")).json()["outputs"] == []
        bad = await client.post("/streams/cam/mode", json={"mode": "sometimes"})
        assert bad.status_code == 422 and "mode" in bad.json()["error"]["message"]
        unknown = await client.get("/inference_pipelines/nope/consume")
        assert unknown.status_code == 404
