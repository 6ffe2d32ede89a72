"""An MQTT v5 trigger client: sends triggers with a Response Topic and Correlation Data and
waits for each answer; also a plain subscriber for result topics. Used by the tests and runnable:

    python -m simulators.mqtt_client --host 127.0.0.1 --port 1883 --stream conveyor --count 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import socket
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from adapters.mqtt import publish_properties
from simulators.camera import PartSensor, wait_for_part


class MqttTriggerClient:
    """A blocking client (its own paho network thread); one instance per test or CLI run."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        prefix: str = "gateway/gateway",
        protocol: MQTTProtocolVersion = mqtt.MQTTv5,
        username: str | None = None,
        password: str | None = None,
        tls_ca: str | None = None,
    ) -> None:
        self.prefix = prefix
        self._protocol = protocol
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sim-{uuid.uuid4().hex[:8]}", protocol=protocol
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls_ca is not None:
            self._client.tls_set(ca_certs=tls_ca)
        self._client.on_socket_open = lambda c, u, sock: nodelay(sock)
        self._client.on_message = self._on_message
        self._connected = threading.Event()
        self.refused: str | None = None
        self._client.on_connect = self._on_connect
        self._reply_topic = f"sim/{uuid.uuid4().hex}/reply"
        self._waiting: dict[bytes, queue.Queue[dict[str, Any]]] = {}
        self.messages: queue.Queue[tuple[str, dict[str, Any] | bytes, bool]] = queue.Queue()
        self._lock = threading.Lock()
        self._host, self._port = host, port

    def __enter__(self) -> MqttTriggerClient:
        self._client.connect(self._host, self._port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(5.0):
            self.__exit__()
            if self.refused is not None:
                raise ConnectionRefusedError(f"MQTT connection refused: {self.refused}")
            raise TimeoutError(f"no MQTT connection to {self._host}:{self._port}")
        if self._protocol == mqtt.MQTTv5:
            self.listen(self._reply_topic)
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        else:
            self._connected.set()

    def _sync(self) -> None:
        """Wait until the broker has processed our earlier requests (a ping round trip)."""
        token = f"sim/{uuid.uuid4().hex}/sync"
        self.subscribe(token)
        self._client.publish(token, b"1", qos=1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                topic, _, _ = self.messages.get(timeout=0.1)
                if topic == token:
                    return
        raise TimeoutError("broker did not echo the sync message")

    def subscribe(self, topic: str) -> None:
        result, _mid = self._client.subscribe(topic, qos=1)
        if result != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"subscribe failed: {result}")

    def listen(self, topic: str) -> None:
        """Subscribe and wait until the subscription is active."""
        self.subscribe(topic)
        self._sync()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        properties = getattr(message, "properties", None)
        correlation = getattr(properties, "CorrelationData", None)
        body: dict[str, Any] | bytes
        try:
            body = json.loads(message.payload)
        except ValueError:
            body = bytes(message.payload)
        with self._lock:
            waiter = self._waiting.get(correlation) if correlation is not None else None
        if waiter is not None and isinstance(body, dict):
            waiter.put(body)
        else:
            self.messages.put((message.topic, body, bool(message.retain)))

    def publish(
        self,
        stream: str,
        payload: bytes | dict[str, Any] = b"",
        *,
        retain: bool = False,
        qos: int = 1,
        expiry_s: int | None = None,
        correlation: bytes | None = None,
    ) -> None:
        data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        properties = None
        if self._protocol == mqtt.MQTTv5:
            properties = publish_properties()
            if correlation is not None:
                properties.ResponseTopic = self._reply_topic
                properties.CorrelationData = correlation
            if expiry_s is not None:
                properties.MessageExpiryInterval = expiry_s
        info = self._client.publish(
            f"{self.prefix}/streams/{stream}/trigger",
            data,
            qos=qos,
            retain=retain,
            properties=properties,
        )
        info.wait_for_publish(5.0)

    def trigger(
        self,
        stream: str,
        payload: bytes | dict[str, Any] = b"",
        timeout_s: float = 10.0,
        expiry_s: int | None = None,
        qos: int = 1,
    ) -> dict[str, Any]:
        """Publish a trigger and wait for its answer on the response topic (MQTT v5)."""
        correlation = uuid.uuid4().bytes
        answers: queue.Queue[dict[str, Any]] = queue.Queue()
        with self._lock:
            self._waiting[correlation] = answers
        try:
            self.publish(stream, payload, correlation=correlation, expiry_s=expiry_s, qos=qos)
            return answers.get(timeout=timeout_s)
        finally:
            with self._lock:
                del self._waiting[correlation]

    def next_message(self, topic: str, timeout_s: float = 10.0) -> dict[str, Any] | bytes:
        """The next message on `topic` (others received meanwhile are dropped)."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"nothing on {topic} within {timeout_s} s")
            with contextlib.suppress(queue.Empty):
                got_topic, body, _ = self.messages.get(timeout=min(remaining, 0.1))
                if got_topic == topic:
                    return body


def mqtt_trigger_loop(
    host: str,
    port: int,
    prefix: str,
    stream: str,
    rate_hz: float,
    duration_s: float,
    stop: Any,
    on_answer: Any,
    part_sensor: PartSensor | None = None,
) -> int:
    """Trigger at `rate_hz` until `duration_s` passes or `stop.is_set()`; returns the count.
    With `part_sensor`, each trigger waits (up to 2 s) for a part in position."""
    deadline = time.monotonic() + duration_s
    sent = 0
    with MqttTriggerClient(host, port, prefix=prefix) as client:
        while time.monotonic() < deadline and not stop.is_set():
            started = time.monotonic()
            wait_for_part(part_sensor)
            on_answer(client.trigger(stream, {"trigger_id": f"mqtt-{sent}"}))
            sent += 1
            time.sleep(max(0.0, 1.0 / rate_hz - (time.monotonic() - started)))
    return sent


def nodelay(sock: Any) -> None:
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.mqtt_client", description="Trigger a stream over MQTT v5."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--prefix", default="gateway/demo", help="the gateway's topic prefix")
    parser.add_argument("--stream", default="conveyor")
    parser.add_argument("--rate", type=float, default=1.0, help="triggers per second")
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args(argv)
    with MqttTriggerClient(args.host, args.port, prefix=args.prefix) as client:
        for index in range(args.count):
            started = time.monotonic()
            answer = client.trigger(args.stream, {"trigger_id": f"sim-{index}"})
            error = answer.get("error")
            print(
                f"{answer.get('trigger_id')}: "
                + (
                    f"{error['name']}: {error['message']}"
                    if error
                    else f"pass={answer.get('pass')} outputs={answer.get('outputs')}"
                )
            )
            time.sleep(max(0.0, 1.0 / args.rate - (time.monotonic() - started)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
