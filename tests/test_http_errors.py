"""Bad input and bad conditions: each gets its precise code and message, and the gateway keeps
serving the next trigger."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from gateway.config import SourceConfig
from gateway.frame_source import FrameSource, Image
from gateway.sources.scene import ConveyorScene
from gateway.sources.synthetic import SyntheticCamera
from tests.conftest import RecordingSources, first_frame, make_config, running_gateway, wait_until


async def assert_serving(client: httpx.AsyncClient, stream: str = "cam") -> None:
    """The gateway still answers a good trigger after the bad one."""
    response = await client.post(f"/streams/{stream}/trigger")
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True


def assert_error(response: httpx.Response, status: int, code: int, name: str, text: str) -> None:
    body = response.json()
    assert response.status_code == status, body.get("error")
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["name"] == name
    assert text in body["error"]["message"], body["error"]["message"]


async def test_unknown_stream_is_404_with_code_8() -> None:
    async with running_gateway(make_config()) as (gateway, client, _):
        await first_frame(gateway)
        response = await client.post("/streams/nope/trigger")
        assert_error(response, 404, 8, "UNKNOWN_STREAM", "unknown stream 'nope' (known: cam)")
        assert_error(await client.get("/streams/nope"), 404, 8, "UNKNOWN_STREAM", "'nope'")
        roboflow = await client.post("/inference_pipelines/nope/trigger")
        assert_error(roboflow, 404, 8, "UNKNOWN_STREAM", "'nope'")
        await assert_serving(client)


async def test_malformed_json_is_422_naming_the_problem() -> None:
    async with running_gateway(make_config()) as (gateway, client, published):
        await first_frame(gateway)
        response = await client.post(
            "/streams/cam/trigger",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert_error(response, 422, 7, "BAD_REQUEST", "JSON decode error")
        unknown_field = await client.post("/streams/cam/trigger", json={"trigger": 1})
        assert_error(unknown_field, 422, 7, "BAD_REQUEST", "body.trigger: Extra inputs")
        assert unknown_field.json()["detail"][0]["loc"] == ["body", "trigger"]
        # nothing was inspected: each refusal is one BAD_REQUEST result on the bus (history, MQTT)
        assert [(r.error_code.name, r.frame_id) for r in published] == [("BAD_REQUEST", None)] * 2
        await assert_serving(client)


async def test_wrong_parameter_type_and_unknown_parameter_are_422_naming_the_parameter() -> None:
    async with running_gateway(make_config()) as (gateway, client, published):
        await first_frame(gateway)
        wrong = await client.post(
            "/streams/cam/trigger", json={"parameters": {"min_confidence": "high"}}
        )
        assert_error(wrong, 422, 7, "BAD_REQUEST", "parameter 'min_confidence': expects a number")
        unknown = await client.post("/streams/cam/trigger", json={"parameters": {"speed": 1}})
        assert_error(unknown, 422, 7, "BAD_REQUEST", "parameter 'speed': unknown parameter")
        not_a_dict = await client.post("/streams/cam/trigger", json={"parameters": [1, 2]})
        assert_error(not_a_dict, 422, 7, "BAD_REQUEST", "body.parameters")
        # rejected triggers still get exactly one (error) result each, the unreadable body too
        assert [r.error_code.name for r in published] == ["BAD_REQUEST"] * 3
        await assert_serving(client)


async def test_oversized_body_is_413() -> None:
    config = make_config(http={"max_body_bytes": 2048})
    async with running_gateway(config) as (gateway, client, published):
        await first_frame(gateway)
        big = {"parameters": {"min_confidence": 0.5}, "trigger_id": "x" * 100, "pad": "y" * 4000}
        response = await client.post("/streams/cam/trigger", json=big)
        assert_error(response, 413, 7, "BAD_REQUEST", "request body over 2048 bytes")

        async def chunks() -> Any:  # no Content-Length: the streamed size is counted
            for _ in range(10):
                yield b" " * 1000

        streamed = await client.post(
            "/streams/cam/trigger", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert published == []
        await assert_serving(client)


async def test_api_key_missing_or_wrong_is_401_and_right_key_works() -> None:
    config = make_config(http={"api_key": "s3cret"})
    async with running_gateway(config, api_key="s3cret") as (gateway, client, _):
        await first_frame(gateway)
        base = str(client.base_url)
        async with httpx.AsyncClient(base_url=base) as anonymous:
            missing = await anonymous.post("/streams/cam/trigger")
            assert_error(missing, 401, 7, "BAD_REQUEST", "missing or wrong API key")
            assert missing.headers["www-authenticate"] == "Bearer"
            wrong = await anonymous.post(
                "/streams/cam/trigger", headers={"Authorization": "Bearer s3creT"}
            )
            assert wrong.status_code == 401
            assert (await anonymous.get("/healthz")).status_code == 200  # probes stay open
        await assert_serving(client)


class StalledCamera:
    """Hardware stand-in: connects, then delivers nothing until `release()`."""

    def __init__(self) -> None:
        self._release = threading.Event()
        self._camera = SyntheticCamera(ConveyorScene(320, 240), fps=30)

    description = "stalled camera"
    paced_fps = 30.0

    def release(self) -> None:
        self._release.set()

    def open(self) -> None:
        pass

    def read(self) -> Image | None:
        while not self._release.wait(0.05):
            pass
        return self._camera.read()

    def close(self) -> None:
        self._release.set()


async def test_trigger_before_the_first_frame_is_no_frame_then_works() -> None:
    camera = StalledCamera()

    def factory(stream_id: str, config: SourceConfig) -> FrameSource:
        return camera

    async with running_gateway(make_config(), factory) as (gateway, client, _):
        await wait_until(lambda: gateway.streams["cam"].capture.health().connected)
        response = await client.post("/streams/cam/trigger")
        assert_error(response, 503, 1, "NO_FRAME", "no frame captured yet")
        roboflow = (await client.post("/inference_pipelines/cam/trigger")).json()
        assert roboflow["success"] is False and "no frame captured yet" in roboflow["message"]
        assert (await client.get("/readyz")).status_code == 503
        camera.release()
        await first_frame(gateway)
        await assert_serving(client)


async def test_paused_stream_is_not_running_and_resume_serves_again() -> None:
    async with running_gateway(make_config()) as (gateway, client, _):
        await first_frame(gateway)
        await client.post("/streams/cam/pause")
        response = await client.post("/streams/cam/trigger")
        assert_error(response, 409, 2, "STREAM_NOT_RUNNING", "stream 'cam' is paused")
        await client.post("/streams/cam/resume")
        await assert_serving(client)
        await client.post("/streams/cam/terminate")
        assert (await client.get("/streams/cam")).json()["camera"]["connected"] is False
        stopped = await client.post("/streams/cam/trigger")
        assert_error(stopped, 409, 2, "STREAM_NOT_RUNNING", "stream 'cam' is stopped")
        await client.post("/streams/cam/resume")  # restarts the camera
        await first_frame(gateway)
        await wait_until(lambda: gateway.streams["cam"].capture.health().connected)
        await assert_serving(client)


async def test_full_queue_rejects_with_busy_and_every_trigger_gets_one_answer() -> None:
    """`next` frames at 4 fps keep the worker waiting, so a queue of 1 overflows."""
    config = make_config(
        streams={
            "cam": {
                "source": {"type": "synthetic", "width": 320, "height": 240, "fps": 4},
                "workflow": "demo",
                "queue_size": 1,
                "frame_policy": {"type": "next", "timeout_ms": 3000},
            }
        }
    )
    async with running_gateway(config) as (gateway, client, published):
        await first_frame(gateway)
        responses = await asyncio.gather(
            *(client.post("/streams/cam/trigger", json={"trigger_id": f"t{i}"}) for i in range(6))
        )
        codes = Counter(r.json()["error"]["name"] if r.json()["error"] else "OK" for r in responses)
        assert codes["BUSY"] >= 1 and codes["OK"] >= 1, codes
        assert set(codes) <= {"OK", "BUSY"}
        for response in responses:
            if response.json()["error"]:
                assert_error(response, 429, 4, "BUSY", "triggers already waiting")
        # exactly one result per trigger, on the bus as in the responses
        assert sorted(r.trigger_id for r in published) == [f"t{i}" for i in range(6)]
        assert gateway.streams["cam"].counters["rejected"] == codes["BUSY"]


async def test_workflow_step_raising_is_workflow_error_naming_the_step() -> None:
    workflow = {
        "specification": {
            "inputs": [
                {"type": "WorkflowImage", "name": "image"},
                {"type": "WorkflowParameter", "name": "divisor", "default_value": 1},
            ],
            "steps": [
                {
                    "type": "expression",
                    "name": "ratio",
                    "expression": "10 / divisor",
                    "variables": {"divisor": "$inputs.divisor"},
                }
            ],
            "outputs": [{"type": "JsonField", "name": "ratio", "selector": "$steps.ratio.result"}],
        }
    }
    config = make_config(
        workflows={"w": workflow},
        streams={
            "cam": {
                "source": {"type": "synthetic", "width": 320, "height": 240},
                "workflow": "w",
                # the point is the step's error: a CPU-starved CI runner must not make it stale
                "frame_policy": {"type": "latest", "max_age_ms": None},
            }
        },
    )
    async with running_gateway(config) as (gateway, client, _):
        await first_frame(gateway)
        response = await client.post("/streams/cam/trigger", json={"parameters": {"divisor": 0}})
        assert_error(response, 500, 6, "WORKFLOW_ERROR", "step 'ratio' failed: ZeroDivisionError")
        good = await client.post("/streams/cam/trigger", json={"parameters": {"divisor": 4}})
        assert good.json()["outputs"] == {"ratio": 2.5}


async def test_camera_file_that_does_not_exist_is_camera_disconnected(tmp_path: Path) -> None:
    config = make_config(
        streams={
            "missing": {
                "source": {"type": "video_file", "path": str(tmp_path / "nowhere.avi")},
                "workflow": "demo",
            },
            "cam": {
                "source": {"type": "synthetic", "width": 320, "height": 240},
                "workflow": "demo",
            },
        }
    )
    async with running_gateway(config) as (gateway, client, _):
        await first_frame(gateway)
        await wait_until(lambda: gateway.streams["missing"].capture.health().last_error is not None)
        response = await client.post("/streams/missing/trigger")
        assert_error(response, 503, 9, "CAMERA_DISCONNECTED", "cannot open file")
        assert "nowhere.avi" in response.json()["error"]["message"]
        ready = (await client.get("/readyz")).json()
        assert ready["ready"] is False and ready["problems"][0].startswith("missing:")
        await assert_serving(client, "cam")  # the other stream is unaffected


async def test_camera_that_vanishes_is_camera_disconnected_until_it_returns() -> None:
    sources = RecordingSources()
    config = make_config(
        streams={
            "cam": {
                "source": {"type": "synthetic", "width": 320, "height": 240, "fps": 30},
                "workflow": "demo",
                "reconnect": {"initial_s": 0.05, "max_s": 0.2},
            }
        }
    )
    async with running_gateway(config, sources) as (gateway, client, _):
        await first_frame(gateway)
        camera = sources.sources["cam"]
        assert isinstance(camera, SyntheticCamera)
        health = gateway.streams["cam"].capture.health
        camera.unplug()
        await wait_until(lambda: not health().connected)
        response = await client.post("/streams/cam/trigger")
        assert_error(response, 503, 9, "CAMERA_DISCONNECTED", "camera not connected")
        await wait_until(lambda: health().reconnects >= 2)  # retrying with backoff
        status = (await client.get("/streams/cam")).json()
        assert status["activity"] == "error" and status["camera"]["connected"] is False
        camera.plug()
        await wait_until(lambda: health().connected)
        await wait_until(lambda: (health().last_frame_age_ms or 1e9) < 100)
        await assert_serving(client)


async def test_stale_frame_is_frame_stale() -> None:
    camera = StalledCamera()
    camera.release()

    def factory(stream_id: str, config: SourceConfig) -> FrameSource:
        return camera

    config = make_config(
        streams={
            "cam": {
                "source": {"type": "synthetic"},
                "workflow": "demo",
                "frame_policy": {"type": "latest", "max_age_ms": 50},
            }
        }
    )
    async with running_gateway(config, factory) as (gateway, client, _):
        await first_frame(gateway)
        camera._release.clear()  # the camera stays connected but stops delivering
        await asyncio.sleep(0.2)
        response = await client.post("/streams/cam/trigger")
        assert_error(response, 503, 3, "FRAME_STALE", "(max_age_ms 50)")
        camera.release()
        await wait_until(
            lambda: (gateway.streams["cam"].capture.health().last_frame_age_ms or 1e9) < 20
        )
        await assert_serving(client)
