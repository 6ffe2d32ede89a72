"""GigE Vision through Aravis on Aravis' own camera simulator (`arv-fake-gv-camera-0.8` on
127.0.0.1): discovery and free-running capture; camera-triggered inspection (TriggerSoftware
per trigger, exactly the frame exposed for it: 200 triggers, 200 frames, in order, and a burst
of 10 at once); a camera
unplugged is CAMERA_DISCONNECTED, and back after it returns."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.model import Origin, Trigger
from simulators.gige_camera import FakeGigECamera, gige_available
from tests.conftest import DEMO_WORKFLOW, make_config, require, running_gateway, wait_until
from tests.test_http_trigger import RAW_IMAGE_WORKFLOW


@pytest.fixture
def camera() -> Iterator[FakeGigECamera]:
    require(gige_available())
    with FakeGigECamera() as fake:
        yield fake


def gige_stream(camera: FakeGigECamera, **extra: Any) -> dict[str, Any]:
    source = {"type": "gige", "device": camera.device_id, "read_timeout_s": 1.0}
    source.update(extra.pop("source", {}))
    reconnect = {"initial_s": 0.2, "max_s": 1.0}
    return {"source": source, "workflow": "raw", "reconnect": reconnect, **extra}


def config(stream: dict[str, Any]) -> Any:
    return make_config(streams={"cam": stream}, workflows={"raw": RAW_IMAGE_WORKFLOW})


def delivering(gateway: Gateway) -> bool:
    snapshot = gateway.dispatcher.snapshot("cam")
    return snapshot.camera.connected and gateway.dispatcher.latest_frame("cam") is not None


async def test_free_running_camera_is_found_and_inspected(camera: FakeGigECamera) -> None:
    async with running_gateway(config(gige_stream(camera))) as (gateway, client, _):
        await wait_until(lambda: delivering(gateway), 20)
        body = (await client.post("/streams/cam/trigger")).json()
        assert body["success"] is True, body
        result = await gateway.dispatcher.inspect(Trigger("cam", Origin.PYTHON))
        assert result.outputs["image"].shape == (512, 512, 3)  # Mono8 as BGR
        assert gateway.dispatcher.snapshot("cam").camera.time_source == "presentation"


async def test_camera_triggered_inspects_exactly_the_frame_exposed_for_each_trigger(
    camera: FakeGigECamera,
) -> None:
    stream = gige_stream(
        camera,
        source={"trigger": "software"},
        frame_policy={"type": "camera_trigger", "timeout_ms": 2000},
    )
    async with running_gateway(config(stream)) as (gateway, _, _):
        await wait_until(lambda: gateway.dispatcher.snapshot("cam").camera.connected, 20)
        frames_before = gateway.dispatcher.snapshot("cam").camera.frames
        frame_ids: list[int] = []
        for _ in range(200):
            result = await gateway.dispatcher.inspect(Trigger("cam", Origin.PYTHON))
            assert result.error is None and result.frame_id is not None, result.error
            frame_ids.append(result.frame_id)
        frames = gateway.dispatcher.snapshot("cam").camera.frames - frames_before
    assert frames == 200  # the camera exposed once per trigger, and only then
    assert frame_ids == list(range(frame_ids[0], frame_ids[0] + 200))  # one each, in order


async def test_a_burst_of_triggers_gets_one_exposure_each_in_order(camera: FakeGigECamera) -> None:
    """Ten triggers at once: exposures are commanded as triggers are accepted (each once the
    camera has sent the last: it ignores a trigger while busy), while the stream inspects one
    at a time; every trigger gets exactly its own frame."""
    stream = gige_stream(
        camera,
        source={"trigger": "software"},
        frame_policy={"type": "camera_trigger", "timeout_ms": 5000},
        workflow="inspection",
        queue_size=10,
        trigger_timeout_ms=30000,
    )
    workflows = {"raw": RAW_IMAGE_WORKFLOW, "inspection": {"path": str(DEMO_WORKFLOW)}}
    async with running_gateway(make_config(streams={"cam": stream}, workflows=workflows)) as (
        gateway,
        _,
        _,
    ):
        await wait_until(lambda: gateway.dispatcher.snapshot("cam").camera.connected, 20)
        frames_before = gateway.dispatcher.snapshot("cam").camera.frames
        futures = [gateway.dispatcher.submit(Trigger("cam", Origin.PYTHON)) for _ in range(10)]
        results = await asyncio.wait_for(asyncio.gather(*futures), 60)
        frames = gateway.dispatcher.snapshot("cam").camera.frames - frames_before
    assert all(r.error is None for r in results), [r.error for r in results]
    assert frames == 10
    frame_ids = [r.frame_id or 0 for r in results]
    assert frame_ids == list(range(frame_ids[0], frame_ids[0] + 10))  # one each, in order


async def test_an_unplugged_camera_is_disconnected_then_back(camera: FakeGigECamera) -> None:
    async with running_gateway(config(gige_stream(camera))) as (gateway, client, _):
        await wait_until(lambda: delivering(gateway), 20)
        camera.unplug()
        await wait_until(lambda: not gateway.dispatcher.snapshot("cam").camera.connected, 15)
        body = (await client.post("/streams/cam/trigger")).json()
        assert body["error"]["name"] == "CAMERA_DISCONNECTED", body
        camera.start()
        await wait_until(lambda: delivering(gateway), 30)
        assert (await client.post("/streams/cam/trigger")).json()["success"] is True


def test_camera_trigger_needs_a_software_triggered_gige_camera() -> None:
    with pytest.raises(ValueError, match="camera_trigger needs a camera that exposes on command"):
        make_config(
            streams={
                "cam": {
                    "source": {"type": "synthetic"},
                    "workflow": "demo",
                    "frame_policy": {"type": "camera_trigger"},
                }
            }
        )
