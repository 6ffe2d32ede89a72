"""MQTT front end (paho-mqtt 2.x, MQTT v5): triggers in, results out, availability and state.

paho runs its own network thread; every callback hands its arguments to the event loop and
does nothing else (`adapters.broker.on_loop`), so all state lives on the loop.

Topics under `<prefix>` (default `gateway/<gateway_id>`), README "MQTT":
`status` (retained online, LWT offline), `streams/<id>/state` (retained),
`streams/<id>/trigger` (in), `streams/<id>/result` (every result), `streams/<id>/error`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from adapters.broker import first_connection, log_in, on_loop
from adapters.fleet import Fleet, announcement
from gateway.config import MqttConfig
from gateway.core import Core
from gateway.expiring import ExpiringMap
from gateway.model import ErrorCode, InspectionResult, Origin, Trigger
from gateway.outbox import Outbox
from gateway.supervise import cancel_and_wait
from gateway.version import VERSION
from gateway.wire import BadTrigger, ImageTransport, TriggerRequest, encode_result, parse_trigger

log = structlog.get_logger(__name__)

STATE_INTERVAL_S = 2.0


class MqttAdapter:
    name = "mqtt"

    def __init__(self, config: MqttConfig, core: Core) -> None:
        self._dispatcher = core.dispatcher
        self._bus = core.bus
        self._config = config
        self._images = ImageTransport(config.image_outputs)
        gateway_id = core.gateway_id
        self.prefix = config.topic_prefix or f"gateway/{gateway_id}"
        self._client_id = config.client_id or f"{gateway_id}-gateway"
        self._stream_ids = frozenset(self._dispatcher.stream_ids)
        self._seen: ExpiringMap[bool] = ExpiringMap(100_000, config.duplicate_window_s)
        history = core.history
        self._outbox_path = None if history is None else history.directory / "mqtt-outbox.db"
        self._outbox: Outbox | None = None
        """Results waiting for the broker, on disk (in memory without a history)."""
        self._handed: dict[int, int] = {}
        """paho message id -> outbox id, for entries handed to paho and not yet acknowledged."""
        self._handed_upto = 0
        """The newest outbox entry handed to paho in this run (paho resends those itself)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._connected = False
        self._unsubscribe: Any = None
        self._state_task: asyncio.Task[None] | None = None
        self._last_state: dict[str, bytes] = {}
        self._gateway_id = gateway_id
        self.fleet = Fleet(config.fleet, self.prefix, self._send) if config.fleet.enabled else None
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

    @property
    def queued(self) -> int:
        """Results waiting in the outbox for the broker."""
        return 0 if self._outbox is None else len(self._outbox)

    def status(self) -> dict[str, Any]:
        return {
            "broker": f"{self._config.host}:{self._config.port}",
            "connected": self._connected,
            "prefix": self.prefix,
            "offline_queue": self.queued,
            **self.counters,
        }

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        config = self._config
        self._outbox = Outbox(self._outbox_path, config.results_kept_offline)
        self._handed.clear()
        self._handed_upto = 0
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self._client_id, protocol=mqtt.MQTTv5
        )
        log_in(client, config)
        client.will_set(f"{self.prefix}/status", b"offline", qos=1, retain=True)
        client.on_connect = on_loop(loop, self._connected_cb)
        client.on_disconnect = on_loop(loop, self._disconnected_cb)
        client.on_message = on_loop(loop, self._message_cb)
        client.on_publish = on_loop(loop, self._acknowledged)
        self._client = client
        self._unsubscribe = self._bus.subscribe(self._publish_result)
        session = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        session.SessionExpiryInterval = config.session_expiry_s
        # a kept session is resumed from the first connect on: a restart gets what waited
        client.connect_async(
            config.host,
            config.port,
            config.keepalive_s,
            clean_start=config.session_expiry_s == 0,
            properties=session,
        )
        client.loop_start()
        if not await first_connection(lambda: self._connected):
            log.warning(
                "MQTT broker not reachable yet; retrying", host=config.host, port=config.port
            )
        self._state_task = asyncio.create_task(self._publish_states_forever(), name="mqtt-state")

    async def stop(self) -> None:
        await cancel_and_wait(self._state_task)
        self._state_task = None
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
        if self._outbox is not None:
            self._outbox.close()
            self._outbox = None

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
        # Retain As Published: a live publish keeps its retain flag, so the one rule holds for
        # replayed and live retained messages alike (and for clearing one with an empty payload).
        options = SubscribeOptions(qos=self._config.trigger_qos, retainAsPublished=True)
        self._client.subscribe(f"{self.prefix}/streams/+/trigger", options=options)
        if self.fleet is not None:
            self._client.subscribe([(topic, 1) for topic in self.fleet.subscriptions])
        self._client.publish(f"{self.prefix}/status", b"online", qos=1, retain=True)
        self._last_state.clear()
        self._publish_states()
        self._send_outbox()
        log.info("MQTT connected", host=self._config.host, port=self._config.port)

    def _disconnected_cb(
        self, flags: Any, reason_code: ReasonCode, properties: Properties | None
    ) -> None:
        if self._connected:
            log.warning("MQTT disconnected; reconnecting", reason=str(reason_code))
        self._connected = False

    def _message_cb(self, message: mqtt.MQTTMessage) -> None:
        if self.fleet is not None:
            correlation = getattr(getattr(message, "properties", None), "CorrelationData", None)
            if self.fleet.on_message(message.topic, bytes(message.payload), correlation):
                return
        parts = message.topic.removeprefix(f"{self.prefix}/").split("/")
        if len(parts) != 3 or parts[0] != "streams" or parts[2] != "trigger":
            return
        if message.retain:
            # Retained messages never trigger: one replayed on subscribe is an old trigger (a
            # restart must not re-inspect), a live one would fire again for every new subscriber.
            self.counters["retained_ignored"] += 1
            return
        stream_id = parts[1]
        properties = getattr(message, "properties", None)
        reply_to = _ReplyTo(
            getattr(properties, "ResponseTopic", None) or None,
            getattr(properties, "CorrelationData", None),
        )
        try:
            request = self._parse(bytes(message.payload))
        except BadTrigger as exc:
            self.counters["rejected"] += 1
            trigger = Trigger(stream_id, Origin.MQTT, exc.trigger_id or uuid.uuid4().hex)
            future = self._dispatcher.reject(trigger, exc.code, str(exc))
            future.add_done_callback(lambda done: self._refused(done.result(), reply_to))
            return
        self._accept(stream_id, request, properties, reply_to)

    def _accept(
        self, stream_id: str, request: TriggerRequest, properties: Any, reply_to: _ReplyTo
    ) -> None:
        trigger_id = request.trigger_id or uuid.uuid4().hex
        key = f"{stream_id}\0{trigger_id}"
        if request.trigger_id is not None and self._seen.get(key):
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
            self._seen.put(key, True)  # only that it came: a redelivery is not answered again
        if future.done() and future.result().error_code is ErrorCode.UNKNOWN_STREAM:
            self.counters["rejected"] += 1
            self._refused(future.result(), reply_to)
        elif reply_to.topic:
            future.add_done_callback(lambda done: self._reply(reply_to, done.result()))

    def _parse(self, payload: bytes) -> TriggerRequest:
        if len(payload) > self._config.max_payload_bytes:
            raise BadTrigger(
                f"payload of {len(payload)} bytes is over max_payload_bytes "
                f"{self._config.max_payload_bytes}"
            )
        return parse_trigger(payload)

    def _refused(self, result: InspectionResult, reply_to: _ReplyTo) -> None:
        """A trigger refused at the door: on the stream's error topic, and as the reply."""
        self._publish(f"{self.prefix}/streams/{result.stream}/error", self._body(result), 1)
        if reply_to.topic:
            self._reply(reply_to, result, qos=1)

    def _body(self, result: InspectionResult) -> bytes:
        return encode_result(result, self._images)

    def _reply(self, reply_to: _ReplyTo, result: InspectionResult, qos: int | None = None) -> None:
        assert reply_to.topic is not None
        properties = publish_properties()
        if reply_to.correlation is not None:
            properties.CorrelationData = reply_to.correlation
        qos = self._config.result_qos if qos is None else qos
        self._publish(reply_to.topic, self._body(result), qos, properties)

    def _publish_result(self, result: InspectionResult) -> None:
        """Bus sink: every result of a known stream, whatever its origin, on its result topic."""
        if result.stream not in self._stream_ids:
            return
        topic = f"{self.prefix}/streams/{result.stream}/result"
        payload = self._body(result)
        if self._connected and not self.queued:
            self._publish(topic, payload, self._config.result_qos)
            return
        assert self._outbox is not None
        self._outbox.append(topic, payload)  # after what already waits: the order holds
        self.counters["results_dropped"] = self._outbox.dropped
        if self._connected:
            self._send_outbox()

    def _send_outbox(self) -> None:
        """Hand waiting results to paho in order; each leaves the outbox when acknowledged."""
        if self._outbox is None or self._client is None:
            return
        while self._connected:
            batch = self._outbox.pending(after=self._handed_upto)
            if not batch:
                return
            for entry_id, topic, payload in batch:
                info = self._client.publish(topic, payload, qos=self._config.result_qos)
                self._handed[info.mid] = entry_id
                self._handed_upto = entry_id

    def _acknowledged(self, mid: int, *_: Any) -> None:
        """paho's on_publish: the broker has the message (QoS 1), or it was sent (QoS 0)."""
        entry_id = self._handed.pop(mid, None)
        if entry_id is not None and self._outbox is not None:
            self._outbox.remove(entry_id)

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

    def _send(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        expiry_s: int | None,
        correlation: bytes | None,
        response_topic: str | None,
    ) -> None:
        """A request to another gateway (the fleet's remote triggers)."""
        properties = publish_properties()
        if expiry_s is not None:
            properties.MessageExpiryInterval = expiry_s
        if correlation is not None:
            properties.CorrelationData = correlation
        if response_topic is not None:
            properties.ResponseTopic = response_topic
        self._publish(topic, payload, qos, properties)

    def _publish_states(self) -> None:
        snapshots = self._dispatcher.snapshots()
        info = orjson.dumps(announcement(self._gateway_id, VERSION, self.prefix, snapshots))
        if self._last_state.get("\0info") != info:  # retained: only when it changed
            self._last_state["\0info"] = info
            self._publish(f"{self.prefix}/info", info, 1, retain=True)
        for snapshot in snapshots:
            stream_id = snapshot.id
            payload = orjson.dumps(
                {
                    "state": snapshot.activity,
                    "camera_connected": snapshot.camera.connected,
                    "fps": round(snapshot.camera.fps),
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


@dataclass(frozen=True, slots=True)
class _ReplyTo:
    """MQTT v5 request/response: where the requester wants its answer."""

    topic: str | None
    correlation: bytes | None


def publish_properties() -> Properties:
    """MQTT v5 PUBLISH properties (paho's constructor is untyped)."""
    return Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
