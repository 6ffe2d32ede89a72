"""Sparkplug B front end: the gateway is an Edge Node, each stream a Device (README "Fleet and
SCADA").

Topics `spBv1.0/<group>/<type>/<edge node>[/<device>]`. On every connection: NDEATH registered
as the MQTT will with this connection's bdSeq, then NBIRTH (seq 0, bdSeq, `Node
Control/Rebirth`) and a DBIRTH per running stream; DDATA for every result and for state that
changed; DDEATH when a stream stops, DBIRTH when it runs again; seq counts every message after
NBIRTH modulo 256; bdSeq counts connections modulo 256. NCMD `Node Control/Rebirth` births
everything again; DCMD `Trigger` (with `Part Id`, `Parameters` as JSON) triggers the stream and
is answered by the DDATA of its result. With `primary_host_id`, births wait for that host
application's STATE to be online, and an offline host gets an NDEATH.

Written over paho 2 rather than on a Sparkplug library: the maintained Python ones
(pysparkplug 0.6, mqtt-spb-wrapper 2.1) pin paho-mqtt < 2, which the gateway's MQTT front end
cannot use; the tests check this one against pysparkplug as the host application. paho runs its
own thread; callbacks hand over to the event loop, except the will's bdSeq, which must change
before paho reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion

from adapters.broker import first_connection, log_in, on_loop
from adapters.sparkplug.device_metrics import (
    COMMAND_TYPES,
    COMMANDS,
    PARAMETERS,
    PART_ID,
    REBIRTH,
    TRIGGER,
    result_metrics,
    state_metrics,
)
from adapters.sparkplug.payload import DataType, Metric, decode, encode
from gateway.config.sparkplug import SparkplugConfig
from gateway.core import Core
from gateway.model import InspectionResult, Origin, Trigger
from gateway.snapshot import StreamState
from gateway.supervise import cancel_and_wait
from gateway.wire import BadTrigger, parse_trigger

log = structlog.get_logger(__name__)

NAMESPACE = "spBv1.0"
STATE_INTERVAL_S = 1.0


class SparkplugAdapter:
    name = "sparkplug"

    def __init__(self, config: SparkplugConfig, core: Core) -> None:
        self._config = config
        self._dispatcher = core.dispatcher
        self._bus = core.bus
        self.node_id = config.edge_node_id or core.gateway_id
        self._stream_ids = frozenset(self._dispatcher.stream_ids)
        self._bd_seq = 0
        """This connection's birth/death sequence number (the will carries it)."""
        self._seq = 0
        self._born: set[str] = set()
        self._node_born = False
        self._sent: dict[str, dict[str, Any]] = {}
        """Per device, the state metric values last sent (DDATA carries only changes)."""
        self._last_result: dict[str, InspectionResult] = {}
        self._host_online = config.primary_host_id is None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._connected = False
        self._unsubscribe: Any = None
        self._state_task: asyncio.Task[None] | None = None
        self.counters = {"connects": 0, "births": 0, "commands": 0, "triggers": 0, "refused": 0}

    def topic(self, kind: str, device: str | None = None) -> str:
        node = f"{NAMESPACE}/{self._config.group_id}/{kind}/{self.node_id}"
        return node if device is None else f"{node}/{device}"

    def status(self) -> dict[str, Any]:
        return {
            "broker": f"{self._config.host}:{self._config.port}",
            "connected": self._connected,
            "group_id": self._config.group_id,
            "edge_node_id": self.node_id,
            "bdSeq": self._bd_seq,
            "primary_host_online": self._host_online,
            **self.counters,
        }

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        config = self._config
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{self.node_id}-sparkplug",
            protocol=mqtt.MQTTv311,
            clean_session=True,  # Sparkplug: an edge node's session is never resumed
        )
        log_in(client, config)
        self._set_will(client)
        client.on_connect = on_loop(loop, self._connected_cb)
        client.on_disconnect = self._on_disconnect
        client.on_message = on_loop(loop, self._message_cb)
        self._client = client
        self._unsubscribe = self._bus.subscribe(self._publish_result)
        client.connect_async(config.host, config.port, config.keepalive_s)
        client.loop_start()
        if not await first_connection(lambda: self._connected):
            log.warning("Sparkplug broker not reachable yet; retrying", host=config.host)
        self._state_task = asyncio.create_task(self._watch_states(), name="sparkplug-state")

    async def stop(self) -> None:
        await cancel_and_wait(self._state_task)
        if self._unsubscribe is not None:
            self._unsubscribe()
        client = self._client
        if client is not None:
            if self._connected:  # a clean disconnect sends no will: say it ourselves
                info = client.publish(self.topic("NDEATH"), self._death(), qos=1)
                await asyncio.to_thread(info.wait_for_publish, 2.0)
            self._connected = False
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)

    # --- paho thread ---------------------------------------------------------------------------

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, *args: Any) -> None:
        """The next connection is a new one: its will carries the next bdSeq. Set here, on
        paho's thread, because paho reconnects before the event loop would get to it."""
        self._bd_seq = (self._bd_seq + 1) % 256
        self._set_will(client)
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._disconnected)

    def _set_will(self, client: mqtt.Client) -> None:
        client.will_set(self.topic("NDEATH"), self._death(), qos=1, retain=False)

    def _death(self) -> bytes:
        return encode([Metric("bdSeq", DataType.UINT64, self._bd_seq)], seq=None)

    # --- on the event loop ---------------------------------------------------------------------

    def _connected_cb(self, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.error("Sparkplug connection refused", reason=str(reason_code))
            return
        assert self._client is not None
        self._connected = True
        self.counters["connects"] += 1
        self._node_born = False
        self._client.subscribe(self.topic("NCMD"), qos=1)
        self._client.subscribe(self.topic("DCMD", "+"), qos=1)
        host = self._config.primary_host_id
        if host is not None:
            self._host_online = False  # until its STATE says so
            self._client.subscribe(f"{NAMESPACE}/STATE/{host}", qos=1)
        self._birth()
        log.info("Sparkplug connected", edge_node=self.node_id, bdSeq=self._bd_seq)

    def _disconnected(self) -> None:
        if self._connected:
            log.warning("Sparkplug disconnected; reconnecting", edge_node=self.node_id)
        self._connected = False
        self._node_born = False
        self._born.clear()

    def _birth(self) -> None:
        """NBIRTH (seq 0), then a DBIRTH for every running stream."""
        if not (self._connected and self._host_online):
            return
        self._seq = 0
        node = [
            Metric("bdSeq", DataType.UINT64, self._bd_seq),
            Metric(REBIRTH, DataType.BOOLEAN, False),
            Metric("Properties/Streams", DataType.STRING, ",".join(sorted(self._stream_ids))),
        ]
        self._send(self.topic("NBIRTH"), node, seq=0)
        self._node_born = True
        self.counters["births"] += 1
        self._born.clear()
        for snapshot in self._dispatcher.snapshots():
            if snapshot.id in self._stream_ids and snapshot.state is not StreamState.STOPPED:
                self._device_birth(snapshot.id)

    def _device_birth(self, device: str) -> None:
        snapshot = self._dispatcher.snapshot(device)
        state = state_metrics(snapshot)
        outputs = self._outputs(device)
        metrics = [*state, *COMMANDS, *result_metrics(self._last_result.get(device), outputs)]
        self._send(self.topic("DBIRTH", device), metrics)
        self._sent[device] = {metric.name: metric.value for metric in state}
        self._born.add(device)

    def _send(self, topic: str, metrics: list[Metric], seq: int | None = None) -> None:
        """Publish with the next seq (0..255, shared by the node and its devices)."""
        if seq is None:
            self._seq = (self._seq + 1) % 256
            seq = self._seq
        if self._client is not None:
            self._client.publish(topic, encode(metrics, seq), qos=0)

    def _outputs(self, device: str) -> list[Any]:
        stream = self._config.streams.get(device)
        return [] if stream is None else stream.outputs

    def _publish_result(self, result: InspectionResult) -> None:
        """Bus sink: every result of a stream, whatever its origin, as DDATA."""
        if result.stream not in self._stream_ids:
            return
        self._last_result[result.stream] = result.without_frame()
        if self._node_born and result.stream in self._born:
            metrics = result_metrics(result, self._outputs(result.stream))
            self._send(self.topic("DDATA", result.stream), metrics)

    async def _watch_states(self) -> None:
        while True:
            await asyncio.sleep(STATE_INTERVAL_S)
            if self._node_born:
                self._report_states()

    def _report_states(self) -> None:
        """DDATA with the state metrics that changed; DDEATH / DBIRTH as streams stop and run."""
        for snapshot in self._dispatcher.snapshots():
            device = snapshot.id
            if device not in self._stream_ids:
                continue
            stopped = snapshot.state is StreamState.STOPPED
            if stopped and device in self._born:
                self._born.discard(device)
                self._send(self.topic("DDEATH", device), [])
            elif not stopped and device not in self._born:
                self._device_birth(device)
            elif not stopped:
                sent = self._sent.setdefault(device, {})
                changed = [m for m in state_metrics(snapshot) if sent.get(m.name) != m.value]
                if changed:
                    sent.update({metric.name: metric.value for metric in changed})
                    self._send(self.topic("DDATA", device), changed)

    def _message_cb(self, message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        if topic.startswith(f"{NAMESPACE}/STATE/"):
            self._host_state(bytes(message.payload))
            return
        try:
            _, metrics = decode(bytes(message.payload), COMMAND_TYPES)
        except ValueError as exc:
            self.counters["refused"] += 1
            log.warning("Sparkplug command refused", topic=topic, reason=str(exc))
            return
        self.counters["commands"] += 1
        if topic == self.topic("NCMD"):
            if metrics.get(REBIRTH):
                self._birth()
            return
        device = topic.rsplit("/", 1)[-1]
        if metrics.get(TRIGGER):
            self._trigger(device, metrics)

    def _trigger(self, device: str, metrics: dict[str, Any]) -> None:
        """A DCMD Trigger: read as a trigger body, so it is checked as every protocol's is."""
        self.counters["triggers"] += 1
        trigger_id = uuid.uuid4().hex
        try:
            parameters = metrics.get(PARAMETERS)
            body: dict[str, Any] = {"trigger_id": trigger_id}
            if parameters:
                body["parameters"] = json.loads(parameters)
            if metrics.get(PART_ID) is not None:
                body["part_id"] = metrics[PART_ID]
            request = parse_trigger(orjson.dumps(body))
        except (BadTrigger, ValueError, TypeError) as exc:
            self.counters["refused"] += 1
            trigger = Trigger(device, Origin.SPARKPLUG, trigger_id)
            self._dispatcher.reject(trigger, BadTrigger(str(exc)).code, f"DCMD: {exc}")
            return
        trigger = Trigger(
            device,
            Origin.SPARKPLUG,
            trigger_id,
            parameters=request.parameters,
            part_id=request.part_id,
        )
        self._dispatcher.submit(trigger)  # its result comes back by the bus, as DDATA

    def _host_state(self, payload: bytes) -> None:
        """The primary host's STATE: JSON `{"online": ...}` (3.0) or ONLINE/OFFLINE (2.2)."""
        try:
            online = bool(orjson.loads(payload).get("online"))
        except (orjson.JSONDecodeError, AttributeError):
            online = payload.strip().upper() == b"ONLINE"
        was, self._host_online = self._host_online, online
        if online and not was:
            self._birth()
        elif was and not online and self._node_born and self._client is not None:
            self._client.publish(self.topic("NDEATH"), self._death(), qos=1)
            self._node_born = False
            self._born.clear()
