"""MQTT end to end through a real Mosquitto broker on a free loopback port."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import paho.mqtt.client as mqtt

from gateway.app import Gateway
from gateway.config import SourceConfig
from gateway.frame_source import FrameSource
from gateway.model import InspectionResult, Origin, Trigger
from gateway.sources import SourceFactory, build_source
from simulators.broker import Mosquitto
from simulators.mqtt_client import MqttTriggerClient
from tests.conftest import ROOT, first_frame, make_config, wait_until
from tests.test_http_errors import StalledCamera

PREFIX = "gateway/line1"


def mqtt_config(
    broker: Mosquitto, streams: dict[str, Any] | None = None, reconnect_s: int = 1
) -> Any:
    return make_config(
        streams=streams,
        gateway_id="line1",
        mqtt={
            "enabled": True,
            "host": "127.0.0.1",
            "port": broker.port,
            "reconnect_min_s": reconnect_s,
            "reconnect_max_s": reconnect_s,
        },
    )


@asynccontextmanager
async def gateway_on(
    broker: Mosquitto,
    streams: dict[str, Any] | None = None,
    source_factory: SourceFactory = build_source,
    reconnect_s: int = 1,
) -> AsyncIterator[tuple[Gateway, list[InspectionResult]]]:
    config = mqtt_config(broker, streams, reconnect_s)
    gateway = Gateway(config, config_dir=ROOT, source_factory=source_factory)
    published: list[InspectionResult] = []
    gateway.bus.subscribe(published.append)
    async with gateway:
        assert gateway.mqtt is not None and gateway.mqtt.connected
        await first_frame(gateway, next(iter(gateway.streams)))
        yield gateway, published


def client(broker: Mosquitto, **kwargs: Any) -> MqttTriggerClient:
    return MqttTriggerClient("127.0.0.1", broker.port, prefix=PREFIX, **kwargs)


async def test_v5_trigger_answers_on_response_topic_and_result_topic(mosquitto: Mosquitto) -> None:
    async with gateway_on(mosquitto) as (_, published):
        with client(mosquitto) as sim:
            sim.listen(f"{PREFIX}/streams/cam/result")
            answer = await asyncio.to_thread(sim.trigger, "cam", {"trigger_id": "p-42"})
            assert answer["success"] is True
            assert answer["trigger_id"] == "p-42" and answer["source"] == "mqtt"
            assert answer["outputs"]["class"] in {"empty", "part", "wrong_colour"}
            on_topic = await asyncio.to_thread(sim.next_message, f"{PREFIX}/streams/cam/result")
            assert on_topic == answer
            empty = await asyncio.to_thread(sim.trigger, "cam", b"")  # empty payload is fine
            assert empty["success"] is True and len(empty["trigger_id"]) == 32
        assert published[0].trigger_id == "p-42"


async def test_v311_client_correlates_by_trigger_id(mosquitto: Mosquitto) -> None:
    async with gateway_on(mosquitto):
        with client(mosquitto, protocol=mqtt.MQTTv311) as sim:
            sim.listen(f"{PREFIX}/streams/cam/result")
            await asyncio.to_thread(sim.publish, "cam", {"trigger_id": "old-plc-7"})
            result = await asyncio.to_thread(sim.next_message, f"{PREFIX}/streams/cam/result")
            assert isinstance(result, dict) and result["trigger_id"] == "old-plc-7"


async def test_results_of_http_triggers_appear_on_the_result_topic(mosquitto: Mosquitto) -> None:
    import httpx

    async with gateway_on(mosquitto) as (gateway, _):
        assert gateway.http is not None
        with client(mosquitto) as sim:
            sim.listen(f"{PREFIX}/streams/cam/result")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http.port}") as http:
                body = (await http.post("/streams/cam/trigger", json={"trigger_id": "h-1"})).json()
            result = await asyncio.to_thread(sim.next_message, f"{PREFIX}/streams/cam/result")
            assert isinstance(result, dict)
            assert result["trigger_id"] == "h-1" and result["source"] == "http"
            assert result["result_id"] == body["result_id"]


async def test_status_is_retained_online_then_offline_and_state_is_retained(
    mosquitto: Mosquitto,
) -> None:
    async with gateway_on(mosquitto):
        with client(mosquitto) as sim:  # subscribes after the gateway published: retained
            sim.subscribe(f"{PREFIX}/status")
            assert await asyncio.to_thread(sim.next_message, f"{PREFIX}/status") == b"online"
            sim.subscribe(f"{PREFIX}/streams/cam/state")
            state = await asyncio.to_thread(sim.next_message, f"{PREFIX}/streams/cam/state")
            assert isinstance(state, dict) and state["camera_connected"] is True
    with client(mosquitto) as sim:
        sim.subscribe(f"{PREFIX}/status")
        assert await asyncio.to_thread(sim.next_message, f"{PREFIX}/status") == b"offline"


async def test_retained_trigger_is_not_executed(mosquitto: Mosquitto) -> None:
    with client(mosquitto) as sim:  # a stale retained trigger waits on the broker
        await asyncio.to_thread(sim.publish, "cam", {"trigger_id": "stale"}, retain=True)
    async with gateway_on(mosquitto) as (gateway, published):
        assert gateway.mqtt is not None
        await wait_until(
            lambda: gateway.mqtt is not None and gateway.mqtt.counters["retained_ignored"] >= 1
        )
        with client(mosquitto) as sim:
            fresh = await asyncio.to_thread(sim.trigger, "cam", {"trigger_id": "fresh"})
        assert fresh["success"] is True
        assert [r.trigger_id for r in published] == ["fresh"]


async def test_duplicate_trigger_id_is_answered_once(mosquitto: Mosquitto) -> None:
    async with gateway_on(mosquitto) as (gateway, published):
        with client(mosquitto) as sim:
            first = await asyncio.to_thread(sim.trigger, "cam", {"trigger_id": "dup-1"})
            await asyncio.to_thread(sim.publish, "cam", {"trigger_id": "dup-1"})  # redelivery
            second = await asyncio.to_thread(sim.trigger, "cam", {"trigger_id": "dup-2"})
        assert first["success"] and second["success"]
        assert [r.trigger_id for r in published] == ["dup-1", "dup-2"]
        assert gateway.mqtt is not None and gateway.mqtt.counters["duplicates_ignored"] == 1


async def test_garbage_payloads_are_answered_on_the_error_topic(mosquitto: Mosquitto) -> None:
    cases: list[tuple[str, bytes | dict[str, Any], int, str]] = [
        ("cam", os.urandom(64) + b"\xff", 7, "payload is not JSON"),
        ("cam", b"[1, 2]", 7, "payload must be a JSON object or empty"),
        ("cam", {"parameters": "fast"}, 7, "parameters: Input should be a valid dictionary"),
        ("cam", {"trigger_id": 5}, 7, "trigger_id: Input should be a valid string"),
        ("cam", {"trigger_id": "x", "colour": 1}, 7, "colour: Extra inputs are not permitted"),
        ("cam", b"{" + b" " * 70_000 + b"}", 7, "over max_payload_bytes 65536"),
        ("nope", {}, 8, "unknown stream 'nope'"),
    ]
    async with gateway_on(mosquitto) as (_, published):
        with client(mosquitto) as sim:
            sim.listen(f"{PREFIX}/streams/+/error")
            for stream, payload, code, text in cases:
                await asyncio.to_thread(sim.publish, stream, payload)
                error = await asyncio.to_thread(
                    sim.next_message, f"{PREFIX}/streams/{stream}/error"
                )
                assert isinstance(error, dict), error
                assert error["error"]["code"] == code, error
                assert text in error["error"]["message"], error
            # with a response topic, the error also comes back there
            answer = await asyncio.to_thread(sim.trigger, "cam", b"not json")
            assert answer["error"]["code"] == 7
            # wrong parameter type: accepted as a trigger, rejected by the workflow (a result)
            typed = await asyncio.to_thread(
                sim.trigger, "cam", {"parameters": {"min_confidence": "high"}}
            )
            assert typed["error"]["name"] == "BAD_REQUEST"
            assert "parameter 'min_confidence'" in typed["error"]["message"]
            good = await asyncio.to_thread(sim.trigger, "cam", {"trigger_id": "after"})
            assert good["success"] is True
        # every refusal is a result on the bus too (7 cases + the reply case), then the two triggers
        codes = [r.error_code.name for r in published]
        assert codes == ["BAD_REQUEST"] * 6 + ["UNKNOWN_STREAM", "BAD_REQUEST", "BAD_REQUEST", "OK"]


async def test_expired_trigger_is_not_run(mosquitto: Mosquitto) -> None:
    """A trigger whose Message Expiry passes before its frame comes is answered TIMEOUT."""
    camera = StalledCamera()

    def factory(stream_id: str, config: SourceConfig) -> FrameSource:
        return camera

    streams = {
        "cam": {
            "source": {"type": "synthetic"},
            "workflow": "demo",
            "frame_policy": {"type": "next", "timeout_ms": 20000},
            "trigger_timeout_ms": 20000,
        }
    }
    gateway = Gateway(mqtt_config(mosquitto, streams), config_dir=ROOT, source_factory=factory)
    async with gateway:
        with client(mosquitto) as sim:
            # without expiry it would wait 20 s for a frame; its 1 s expiry answers it sooner
            answer = await asyncio.to_thread(sim.trigger, "cam", {"trigger_id": "e"}, 10.0, 1)
        assert answer["error"]["name"] == "TIMEOUT"
        assert "expired" in answer["error"]["message"]
    camera.release()


async def test_results_during_a_broker_outage_are_delivered_after_it(tmp_path: Any) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        # the gateway reconnects 3 s after the broker returns: time for the listener to subscribe
        async with gateway_on(broker, reconnect_s=3) as (gateway, _):
            assert gateway.mqtt is not None
            broker.kill()
            await wait_until(lambda: gateway.mqtt is not None and not gateway.mqtt.connected)
            for index in range(5):  # results produced while the broker is away
                await gateway.dispatcher.inspect(Trigger("cam", Origin.PYTHON, f"out-{index}"))
            broker.start()
            with client(broker) as sim:
                sim.listen(f"{PREFIX}/streams/cam/result")
                await wait_until(lambda: gateway.mqtt is not None and gateway.mqtt.connected, 10)
                seen = [
                    await asyncio.to_thread(sim.next_message, f"{PREFIX}/streams/cam/result")
                    for _ in range(5)
                ]
                assert [m["trigger_id"] for m in seen if isinstance(m, dict)] == [
                    f"out-{i}" for i in range(5)
                ]
                # resubscribed: triggers work again
                answer = await asyncio.to_thread(sim.trigger, "cam", {"trigger_id": "back"})
                assert answer["success"] is True
    finally:
        broker.stop()
