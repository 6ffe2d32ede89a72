"""Property-based fuzzing (Hypothesis) of trigger bodies, parameters and MQTT payloads against
the real gateway: whatever arrives, exactly one answer comes back, with the shared body, and
exactly one result goes on the bus. Bounded: a fixed number of examples, no shrinking database.
"""

from __future__ import annotations

import contextlib
import json
import queue
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from adapters.mqtt import publish_properties
from gateway.model import ErrorCode, InspectionResult
from simulators.broker import Mosquitto
from tests.conftest import gateway_in_thread, make_config

EXAMPLES = 60
PREFIX = "gateway/fuzz"
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,
)

# JSON-ish values as a hostile client sends them: nulls, huge and non-finite numbers, lone
# surrogates, deep nesting, arrays where scalars belong.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([10**400, -(10**400), 2**63, 2**64]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(codec=None), max_size=40),
    st.sampled_from(["\ud800", "a\udfffb", "", "=cmd()", "../x", "nul\x00"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
hostile_text = st.text(alphabet=st.characters(codec=None), min_size=1, max_size=20)
"""Any code point, lone surrogates included."""
bodies = st.one_of(
    st.fixed_dictionaries(  # nearly right: one hostile value where a good one belongs
        {},
        optional={
            "trigger_id": st.one_of(hostile_text, values),
            "parameters": st.dictionaries(st.just("min_confidence"), values, max_size=1),
            "part_id": st.one_of(st.integers(min_value=-1, max_value=2**33), values),
        },
    ),
    st.dictionaries(st.text(max_size=10), values, max_size=3),
    values,
)


def _encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=True, allow_nan=False).encode()


raw_payloads = st.one_of(
    bodies.map(_encode),
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=3000).map(
        lambda n: b'{"parameters": ' + b"[" * n + b"]" * n + b"}"
    ),
)


def assert_one_answer(body: dict[str, Any]) -> None:
    """The shared shape: a result (success true) or an error with its code, name and message."""
    assert isinstance(body.get("success"), bool), body
    if body["success"]:
        assert body["error"] is None
        return
    error = body["error"]
    assert set(error) == {"code", "name", "message"}, body
    assert ErrorCode(error["code"]).name == error["name"] and error["message"]


@pytest.fixture(scope="module")
def fuzzed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, list[InspectionResult]]]:
    data = tmp_path_factory.mktemp("fuzz-data")
    config = make_config(history={"data_dir": str(data)})
    with gateway_in_thread(config) as (_, url, published):
        yield url, published


def test_any_http_trigger_body_gets_exactly_one_answer_and_one_result(
    fuzzed: tuple[str, list[InspectionResult]],
) -> None:
    url, published = fuzzed
    with httpx.Client(base_url=url, timeout=10.0) as http:

        @given(raw_payloads)
        @FUZZ
        def trigger(payload: bytes) -> None:
            before = len(published)
            answer = http.post(
                "/streams/cam/trigger",
                content=payload,
                headers={"content-type": "application/json"},
            )
            assert answer.status_code in (200, 409, 422, 429, 503, 504), answer.text[:300]
            assert_one_answer(answer.json())
            deadline = time.monotonic() + 5
            while len(published) == before and time.monotonic() < deadline:
                time.sleep(0.001)
            assert len(published) == before + 1  # exactly one result on the bus

        trigger()
        assert http.post("/streams/cam/trigger").json()["success"] is True


def test_any_mqtt_payload_gets_exactly_one_reply(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        config = make_config(
            gateway_id="fuzz",
            # a trigger_id Hypothesis repeats is a new trigger here, not a QoS 1 redelivery
            mqtt={
                "enabled": True,
                "host": "127.0.0.1",
                "port": broker.port,
                "duplicate_window_s": 0.001,
            },
        )
        with gateway_in_thread(config) as (_, _url, published), _Requester(broker.port) as client:

            @given(raw_payloads)
            @FUZZ
            def publish(payload: bytes) -> None:
                before = len(published)
                answers = client.request(f"{PREFIX}/streams/cam/trigger", payload)
                assert len(answers) == 1, answers
                assert_one_answer(answers[0])
                assert len(published) == before + 1

            publish()
    finally:
        broker.stop()


class _Requester:
    """An MQTT v5 client that sends a request and collects every answer for a short while."""

    def __init__(self, port: int) -> None:
        self._answers: queue.Queue[bytes] = queue.Queue()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = lambda c, u, message: self._answers.put(bytes(message.payload))
        self._reply = f"fuzz-replies/{uuid.uuid4().hex}"
        self._port = port

    def __enter__(self) -> _Requester:
        self._client.connect("127.0.0.1", self._port)
        self._client.loop_start()
        info = self._client.subscribe(self._reply, qos=1)
        assert info[0] == mqtt.MQTT_ERR_SUCCESS
        time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.loop_stop()
        self._client.disconnect()

    def request(self, topic: str, payload: bytes) -> list[dict[str, Any]]:
        properties = publish_properties()
        properties.ResponseTopic = self._reply
        properties.CorrelationData = uuid.uuid4().bytes
        self._client.publish(topic, payload, qos=1, properties=properties).wait_for_publish(5)
        answers = [json.loads(self._answers.get(timeout=10))]
        with contextlib.suppress(queue.Empty):  # a second answer would break the promise
            answers.append(json.loads(self._answers.get(timeout=0.05)))
        return answers
