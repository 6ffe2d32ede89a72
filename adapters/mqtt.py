"""MQTT front end (paho-mqtt 2.x, MQTT v5): triggers in, results out, availability and state.

paho runs its own network thread; every callback hands its arguments to the gateway's event
loop with `call_soon_threadsafe` and does nothing else, so all state lives on the loop.

Topics under `<prefix>` (default `gateway/<gateway_id>`), DESIGN section 5:
`status` (retained online, LWT offline), `streams/<id>/state` (retained),
`streams/<id>/trigger` (in), `streams/<id>/result` (every result), `streams/<id>/error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections import deque
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.config import MqttConfig
from gateway.dispatcher import Dispatcher, ResultBus
from gateway.model import ErrorCode, InspectionResult, Origin, Trigger
from gateway.recent_futures import RecentFutures

log = structlog.get_logger(__name__)

STATE_INTERVAL_S = 2.0


class TriggerMessage(BaseModel):
    """The JSON payload of a trigger; empty payloads mean `{}`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    trigger_id: str | None = Field(None, min_length=1, max_length=128)
    parameters: dict[str, Any] = Field(default_factory=dict)
    part_id: int | None = Field(None, ge=0, le=0xFFFFFFFF)


class MqttAdapter:
    name = "mqtt"

    def __init__(
        self, dispatcher: Dispatcher, bus: ResultBus, config: MqttConfig, gateway_id: str
    ) -> None:
        self._dispatcher = dispatcher
        self._bus = bus
        self._config = config
        self.prefix = config.topic_prefix or f"gateway/{gateway_id}"
        self._client_id = config.client_id or f"{gateway_id}-gateway"
        self._recent: RecentFutures[InspectionResult] = RecentFutures(
            100_000, config.duplicate_window_s
        )
        self._offline: deque[tuple[str, bytes]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._connected = False
        self._unsubscribe: Any = None
        self._state_task: asyncio.Task[None] | None = None
        self._last_state: dict[str, bytes] = {}
        self.counters = {
            "triggers": 0,
            "rejected": 0,
            "retained_ignored": 0,
            "duplicates_ignored": 0,
            "results_dropped": 0,
            "connects": 0,
        }

    @property
    def connected(self) -> bool:
        return self._connected

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        config = self._config
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self._client_id, protocol=mqtt.MQTTv5
        )
        if config.username:
            password = config.password.get_secret_value() if config.password else None
            client.username_pw_set(config.username, password)
        if config.tls is not None:
            client.tls_set(
                ca_certs=str(config.tls.ca_file) if config.tls.ca_file else None,
                certfile=str(config.tls.cert_file) if config.tls.cert_file else None,
                keyfile=str(config.tls.key_file) if config.tls.key_file else None,
            )
            client.tls_insecure_set(config.tls.insecure)
        client.will_set(f"{self.prefix}/status", b"offline", qos=1, retain=True)
        client.reconnect_delay_set(config.reconnect_min_s, config.reconnect_max_s)
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._threadsafe(self._connected_cb)
        client.on_disconnect = self._threadsafe(self._disconnected_cb)
        client.on_message = self._threadsafe(self._message_cb)
        self._client = client
        self._unsubscribe = self._bus.subscribe(self._publish_result)
        client.connect_async(config.host, config.port, config.keepalive_s)
        client.loop_start()
        for _ in range(300):  # bounded: wait up to 3 s for the broker, then carry on retrying
            if self._connected:
                break
            await asyncio.sleep(0.01)
        if not self._connected:
            log.warning(
                "MQTT broker not reachable yet; retrying", host=config.host, port=config.port
            )
        self._state_task = asyncio.create_task(self._publish_states_forever(), name="mqtt-state")

    async def stop(self) -> None:
        if self._state_task is not None:
            self._state_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._state_task
        if self._unsubscribe is not None:
            self._unsubscribe()
        client = self._client
        if client is not None:
            if self._connected:
                info = client.publish(f"{self.prefix}/status", b"offline", qos=1, retain=True)
                await asyncio.to_thread(info.wait_for_publish, 2.0)
            self._connected = False  # a disconnect we asked for is not worth a warning
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)
        self._connected = False

    # --- paho thread -> event loop -------------------------------------------------------------

    @staticmethod
    def _on_socket_open(client: mqtt.Client, userdata: Any, sock: Any) -> None:
        """Without TCP_NODELAY a QoS 1 round trip waits on Nagle: ~88 ms instead of ~0.4 ms."""
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _threadsafe(self, handler: Any) -> Any:
        def callback(client: mqtt.Client, userdata: Any, *args: Any) -> None:
            assert self._loop is not None
            with contextlib.suppress(RuntimeError):  # loop closed during shutdown
                self._loop.call_soon_threadsafe(handler, *args)

        return callback

    # --- on the event loop ---------------------------------------------------------------------

    def _connected_cb(
        self, flags: Any, reason_code: ReasonCode, properties: Properties | None
    ) -> None:
        if reason_code.is_failure:
            log.error("MQTT connection refused", reason=str(reason_code))
            return
        assert self._client is not None
        self._connected = True
        self.counters["connects"] += 1
        self._client.subscribe(f"{self.prefix}/streams/+/trigger", qos=self._config.trigger_qos)
        self._client.publish(f"{self.prefix}/status", b"online", qos=1, retain=True)
        self._last_state.clear()
        self._publish_states()
        while self._offline and self._connected:
            topic, payload = self._offline.popleft()
            self._client.publish(topic, payload, qos=self._config.result_qos)
        log.info("MQTT connected", host=self._config.host, port=self._config.port)

    def _disconnected_cb(
        self, flags: Any, reason_code: ReasonCode, properties: Properties | None
    ) -> None:
        if self._connected:
            log.warning("MQTT disconnected; reconnecting", reason=str(reason_code))
        self._connected = False

    def _message_cb(self, message: mqtt.MQTTMessage) -> None:
        parts = message.topic.removeprefix(f"{self.prefix}/").split("/")
        if len(parts) != 3 or parts[0] != "streams" or parts[2] != "trigger":
            return
        stream_id = parts[1]
        properties = getattr(message, "properties", None)
        response_topic = getattr(properties, "ResponseTopic", None)
        correlation = getattr(properties, "CorrelationData", None)
        if message.retain:
            # A retained trigger is an old one replayed on subscribe: a restart must not re-inspect.
            self.counters["retained_ignored"] += 1
            return
        try:
            request = self._parse(stream_id, bytes(message.payload))
        except _Rejected as exc:
            self.counters["rejected"] += 1
            self._publish_error(
                stream_id, exc.code, str(exc), exc.trigger_id, response_topic, correlation
            )
            return
        trigger_id = request.trigger_id or uuid.uuid4().hex
        key = f"{stream_id}\0{trigger_id}"
        if request.trigger_id is not None and self._recent.get(key) is not None:
            self.counters["duplicates_ignored"] += 1  # QoS 1 redelivery: answered once already
            return
        expiry = getattr(properties, "MessageExpiryInterval", None)
        now = time.monotonic()
        trigger = Trigger(
            stream=stream_id,
            origin=Origin.MQTT,
            trigger_id=trigger_id,
            parameters=request.parameters,
            part_id=request.part_id,
            received_mono=now,
            expires_mono=None if expiry is None else now + float(expiry),
        )
        self.counters["triggers"] += 1
        future = self._dispatcher.submit(trigger)
        if request.trigger_id is not None:
            self._recent.put(key, future)
        if response_topic:
            future.add_done_callback(
                lambda done: self._reply(response_topic, correlation, done.result())
            )

    def _parse(self, stream_id: str, payload: bytes) -> TriggerMessage:
        if stream_id not in self._dispatcher.streams:
            known = ", ".join(sorted(self._dispatcher.streams))
            raise _Rejected(
                ErrorCode.UNKNOWN_STREAM, f"unknown stream {stream_id!r} (known: {known})"
            )
        if len(payload) > self._config.max_payload_bytes:
            raise _Rejected(
                ErrorCode.BAD_REQUEST,
                f"payload of {len(payload)} bytes is over max_payload_bytes "
                f"{self._config.max_payload_bytes}",
            )
        if not payload.strip():
            return TriggerMessage()
        try:
            data = json.loads(payload)
        except (UnicodeDecodeError, ValueError) as exc:
            raise _Rejected(ErrorCode.BAD_REQUEST, f"payload is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise _Rejected(ErrorCode.BAD_REQUEST, "payload must be a JSON object or empty")
        trigger_id = data.get("trigger_id") if isinstance(data.get("trigger_id"), str) else None
        try:
            return TriggerMessage.model_validate(data)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in error["loc"])
            raise _Rejected(ErrorCode.BAD_REQUEST, f"{where}: {error['msg']}", trigger_id) from None

    def _reply(self, topic: str, correlation: bytes | None, result: InspectionResult) -> None:
        properties = publish_properties()
        if correlation is not None:
            properties.CorrelationData = correlation
        self._publish(topic, _result_payload(result), self._config.result_qos, properties)

    def _publish_result(self, result: InspectionResult) -> None:
        """Bus sink: every result, whatever its source, on its stream's result topic."""
        if result.stream not in self._dispatcher.streams:
            return
        topic = f"{self.prefix}/streams/{result.stream}/result"
        payload = _result_payload(result)
        if self._connected:
            self._publish(topic, payload, self._config.result_qos)
            return
        if len(self._offline) >= self._config.results_kept_offline:
            self._offline.popleft()
            self.counters["results_dropped"] += 1
        if self._config.results_kept_offline > 0:
            self._offline.append((topic, payload))

    def _publish_error(
        self,
        stream_id: str,
        code: ErrorCode,
        message: str,
        trigger_id: str | None,
        response_topic: str | None,
        correlation: bytes | None,
    ) -> None:
        payload = orjson.dumps(
            {
                "success": False,
                "stream": stream_id,
                "trigger_id": trigger_id,
                "message": message,
                "error": {"code": int(code), "name": code.name, "message": message},
            }
        )
        self._publish(f"{self.prefix}/streams/{stream_id}/error", payload, 1)
        if response_topic:
            properties = publish_properties()
            if correlation is not None:
                properties.CorrelationData = correlation
            self._publish(response_topic, payload, 1, properties)

    def _publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        properties: Properties | None = None,
        retain: bool = False,
    ) -> None:
        if self._client is not None:
            self._client.publish(topic, payload, qos=qos, retain=retain, properties=properties)

    def _publish_states(self) -> None:
        for stream_id, stream in self._dispatcher.streams.items():
            status = stream.status()
            payload = orjson.dumps(
                {
                    "state": status["activity"],
                    "camera_connected": status["camera"]["connected"],
                    "fps": round(status["camera"]["fps"]),
                }
            )
            if self._last_state.get(stream_id) != payload:
                self._last_state[stream_id] = payload
                self._publish(f"{self.prefix}/streams/{stream_id}/state", payload, 1, retain=True)

    async def _publish_states_forever(self) -> None:
        while True:
            await asyncio.sleep(STATE_INTERVAL_S)
            if self._connected:
                self._publish_states()


class _Rejected(Exception):
    def __init__(self, code: ErrorCode, message: str, trigger_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.trigger_id = trigger_id


def publish_properties() -> Properties:
    """MQTT v5 PUBLISH properties (paho's constructor is untyped)."""
    return Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]


def _result_payload(result: InspectionResult) -> bytes:
    body = result.to_dict()
    body["success"] = result.ok
    return orjson.dumps(body)
