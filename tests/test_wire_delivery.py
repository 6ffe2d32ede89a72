"""The wire vocabulary end to end: rejected triggers are results like any other (bus, history),
and a result's image outputs are encoded once, whichever sinks and replies carry them."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import cv2
import numpy as np
import pytest

import gateway.serialise
import gateway.wire
from gateway.app import Gateway
from gateway.result_rows import ResultQuery
from simulators.broker import Mosquitto
from simulators.mqtt_client import MqttTriggerClient
from tests.conftest import ROOT, first_frame, make_config, running_gateway, wait_until

PREFIX = "gateway/line1"
CROP_WORKFLOW = {
    "version": "1.0",
    "inputs": [{"type": "WorkflowImage", "name": "image"}],
    "steps": [
        {
            "type": "static_crop",
            "name": "crop",
            "image": "$inputs.image",
            "x_center": 80,
            "y_center": 60,
            "width": 64,
            "height": 48,
        }
    ],
    "outputs": [{"type": "JsonField", "name": "crop", "selector": "$steps.crop.crops"}],
}
CROP_STREAM = {
    "cam": {
        "source": {"type": "synthetic", "width": 320, "height": 240, "fps": 30},
        "workflow": "crop",
    }
}


def _mqtt(broker: Mosquitto, **extra: Any) -> dict[str, Any]:
    return {"enabled": True, "host": "127.0.0.1", "port": broker.port, **extra}


async def test_unknown_stream_over_http_and_mqtt_is_stored_with_code_8(
    mosquitto: Mosquitto,
) -> None:
    config = make_config(gateway_id="line1", mqtt=_mqtt(mosquitto))
    async with running_gateway(config) as (gateway, client, published):
        await first_frame(gateway)
        answer = await client.post("/streams/nope/trigger", json={"trigger_id": "http-nope"})
        assert answer.status_code == 404 and answer.json()["error"]["code"] == 8
        with MqttTriggerClient("127.0.0.1", mosquitto.port, prefix=PREFIX) as sim:
            reply = await asyncio.to_thread(sim.trigger, "ghost", {"trigger_id": "mqtt-nope"})
        assert reply["error"]["code"] == 8 and reply["trigger_id"] == "mqtt-nope"
        assert [(r.trigger_id, int(r.error_code)) for r in published] == [
            ("http-nope", 8),
            ("mqtt-nope", 8),
        ]
        assert gateway.history is not None
        history = gateway.history
        await wait_until(lambda: history.query(ResultQuery())[1] >= 2)
        stored = (await client.get("/results", params={"outcome": "error"})).json()["results"]
        by_id = {row["trigger_id"]: row for row in stored}
        assert by_id["http-nope"]["stream"] == "nope" and by_id["http-nope"]["source"] == "http"
        assert by_id["mqtt-nope"]["stream"] == "ghost" and by_id["mqtt-nope"]["source"] == "mqtt"
        assert {row["error_code"] for row in by_id.values()} == {8}
        # a body that cannot be read is stored too, as BAD_REQUEST
        bad = await client.post("/streams/cam/trigger", json={"trigger_id": "b", "x": 1})
        assert bad.status_code == 422
        await wait_until(lambda: history.query(ResultQuery())[1] >= 3)
        rows = (await client.get("/results", params={"stream": "cam"})).json()["results"]
        assert [(row["trigger_id"], row["error_code"]) for row in rows] == [("b", 7)]


async def test_mqtt_v5_image_output_is_encoded_once(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    encodes: list[tuple[int, ...]] = []
    real = gateway.serialise.encode_jpeg

    def counting(image: np.ndarray[Any, Any], quality: int = 90) -> bytes:
        encodes.append(image.shape)
        return real(image, quality)

    monkeypatch.setattr(gateway.serialise, "encode_jpeg", counting)
    monkeypatch.setattr(gateway.wire, "encode_jpeg", counting)
    config = make_config(
        streams=CROP_STREAM,
        workflows={"crop": {"specification": CROP_WORKFLOW}},
        gateway_id="line1",
        mqtt=_mqtt(mosquitto),
        history={"enabled": False},
    )
    async with Gateway(config, config_dir=ROOT) as gw:
        await first_frame(gw)
        with MqttTriggerClient("127.0.0.1", mosquitto.port, prefix=PREFIX) as sim:
            sim.listen(f"{PREFIX}/streams/cam/result")
            reply = await asyncio.to_thread(sim.trigger, "cam", {"trigger_id": "img-1"})
            on_topic = await asyncio.to_thread(sim.next_message, f"{PREFIX}/streams/cam/result")
    assert isinstance(on_topic, dict)
    assert reply["success"] is True and on_topic["trigger_id"] == "img-1"
    carried = reply["outputs"]["crop"]
    assert carried["type"] == "base64" and on_topic["outputs"]["crop"] == carried
    crop = cv2.imdecode(np.frombuffer(base64.b64decode(carried["value"]), np.uint8), 1)
    assert crop is not None and crop.shape == (48, 64, 3)
    assert encodes == [(48, 64, 3)]  # the reply and the result topic share one encoding


async def test_image_outputs_as_links_or_left_out() -> None:
    config = make_config(
        streams=CROP_STREAM,
        workflows={"crop": {"specification": CROP_WORKFLOW}},
        http={"image_outputs": "url"},
    )
    async with running_gateway(config) as (gateway, client, _):
        await first_frame(gateway)
        body = (await client.post("/streams/cam/trigger")).json()
        link = body["outputs"]["crop"]
        assert link["type"] == "url" and (link["width"], link["height"]) == (64, 48)
        assert link["url"] == f"/streams/cam/results/{body['result_id']}/outputs/crop"
        fetched = await client.get(link["url"])
        assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(fetched.content, np.uint8), 1)
        assert image is not None and image.shape == (48, 64, 3)
        missing = await client.get("/streams/cam/results/999999/outputs/crop")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == 7
    config = make_config(
        streams=CROP_STREAM,
        workflows={"crop": {"specification": CROP_WORKFLOW}},
        http={"image_outputs": "omit"},
    )
    async with running_gateway(config) as (gateway, client, published):
        await first_frame(gateway)
        body = (await client.post("/streams/cam/trigger")).json()
        assert body["outputs"]["crop"] == {"type": "image", "width": 64, "height": 48}
        assert published[-1].output_jpegs == {}  # nobody carries images: none encoded
