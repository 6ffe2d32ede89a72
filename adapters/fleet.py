"""The fleet over MQTT: every gateway announces itself on the broker, any gateway lists the
ones it sees and triggers them remotely, with no network path to them but the broker's.

Each gateway keeps a retained `<prefix>/info` (id, version, streams with state and camera
health) beside its retained `<prefix>/status` (online, or offline by its will). A remote
trigger is a plain MQTT trigger on `<their prefix>/streams/<id>/trigger`, QoS 1, with a
Response Topic (`<our prefix>/fleet/replies`), Correlation Data and a Message Expiry: a gateway
that is away gets it when it is back, through its persistent session (`mqtt.session_expiry_s`),
unless it expired first; the broker then drops it and the request shows expired.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

import orjson

from gateway.config.mqtt import FleetConfig
from gateway.snapshot import StreamSnapshot

REQUESTS_KEPT: Final = 1000
REPLY_GRACE_S: Final = 2.0
"""After a trigger's expiry, how long its answer may still be on its way."""

Publish = Callable[[str, bytes, int, int | None, bytes | None, str | None], None]
"""(topic, payload, qos, message expiry s, correlation data, response topic)"""


def announcement(
    gateway_id: str, version: str, prefix: str, snapshots: list[StreamSnapshot]
) -> dict[str, Any]:
    """What `<prefix>/info` says of this gateway (no time in it: retained only on change)."""
    streams = [
        {
            "id": snapshot.id,
            "activity": snapshot.activity,
            "mode": snapshot.mode,
            "workflow": snapshot.workflow,
            "camera": {
                "connected": snapshot.camera.connected,
                "fps": round(snapshot.camera.fps),
                "last_error": snapshot.camera.last_error,
            },
            "counters": dict(snapshot.counters),
        }
        for snapshot in snapshots
    ]
    return {"gateway_id": gateway_id, "version": version, "prefix": prefix, "streams": streams}


class Fleet:
    """The gateways on the broker (from their retained info and status) and remote triggers."""

    def __init__(self, config: FleetConfig, own_prefix: str, publish: Publish) -> None:
        self._config = config
        self._publish = publish
        self.reply_topic = f"{own_prefix}/fleet/replies"
        head, _, _ = config.info_topic.rpartition("/")
        self.status_topic = f"{head}/status"
        self._info: dict[str, dict[str, Any]] = {}
        """By topic prefix: the gateway's announcement."""
        self._status: dict[str, str] = {}
        self._requests: OrderedDict[str, dict[str, Any]] = OrderedDict()

    @property
    def subscriptions(self) -> list[str]:
        return [self._config.info_topic, self.status_topic, self.reply_topic]

    def on_message(self, topic: str, payload: bytes, correlation: bytes | None) -> bool:
        """Take a fleet message; False if the topic is not one of the fleet's."""
        if topic == self.reply_topic:
            self._answered(correlation, payload)
            return True
        prefix, _, leaf = topic.rpartition("/")
        if leaf == "info" and _matches(self._config.info_topic, topic):
            if not payload:  # a cleared announcement: the gateway was retired
                self._info.pop(prefix, None)
                return True
            try:
                info = orjson.loads(payload)
            except orjson.JSONDecodeError:
                return True  # not an announcement of ours
            if isinstance(info, dict) and isinstance(info.get("gateway_id"), str):
                self._info[prefix] = info
            return True
        if leaf == "status" and _matches(self.status_topic, topic):
            self._status[prefix] = payload.decode(errors="replace")
            return True
        return False

    def gateways(self) -> list[dict[str, Any]]:
        return [
            {**info, "online": self._status.get(prefix) == "online"}
            for prefix, info in sorted(self._info.items(), key=lambda item: item[1]["gateway_id"])
        ]

    def trigger(
        self, gateway_id: str, stream: str, parameters: dict[str, Any], expiry_s: int | None
    ) -> dict[str, Any]:
        """Send a trigger to a gateway by its id; the request to follow with `request`."""
        found = [info for info in self._info.values() if info["gateway_id"] == gateway_id]
        if not found:
            raise LookupError(f"no gateway {gateway_id!r} on the broker")
        info = found[0]
        if stream not in {entry["id"] for entry in info.get("streams", [])}:
            raise LookupError(f"gateway {gateway_id!r} has no stream {stream!r}")
        expiry = expiry_s or self._config.trigger_expiry_s
        request_id = uuid.uuid4().hex
        now = time.time()
        request = {
            "request_id": request_id,
            "gateway_id": gateway_id,
            "stream": stream,
            "state": "waiting",
            "sent_at": now,
            "expires_at": now + expiry,
            "result": None,
        }
        self._requests[request_id] = request
        while len(self._requests) > REQUESTS_KEPT:
            self._requests.popitem(last=False)
        body = orjson.dumps({"trigger_id": request_id, "parameters": parameters})
        topic = f"{info['prefix']}/streams/{stream}/trigger"
        self._publish(topic, body, 1, expiry, request_id.encode(), self.reply_topic)
        return self.request(request_id) or request

    def request(self, request_id: str) -> dict[str, Any] | None:
        request = self._requests.get(request_id)
        if request is None:
            return None
        waiting = request["state"] == "waiting"
        if waiting and time.time() > request["expires_at"] + REPLY_GRACE_S:
            request["state"] = "expired"
            request["message"] = (
                f"gateway {request['gateway_id']!r} did not take the trigger within "
                f"{request['expires_at'] - request['sent_at']:.0f} s (offline, or its session "
                "is not kept: mqtt.session_expiry_s)"
            )
        return dict(request)

    def _answered(self, correlation: bytes | None, payload: bytes) -> None:
        request = self._requests.get((correlation or b"").decode(errors="replace"))
        if request is None or request["state"] == "done":
            return
        try:
            request["result"] = orjson.loads(payload)
        except orjson.JSONDecodeError:
            request["result"] = {"success": False, "raw": payload.decode(errors="replace")}
        request["state"] = "done"
        request["answered_at"] = time.time()


def _matches(pattern: str, topic: str) -> bool:
    """MQTT topic filter matching (`+` one level, `#` the rest)."""
    parts, levels = pattern.split("/"), topic.split("/")
    for index, part in enumerate(parts):
        if part == "#":
            return True
        if index >= len(levels) or (part != "+" and part != levels[index]):
            return False
    return len(parts) == len(levels)
