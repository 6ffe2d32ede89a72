"""A Sparkplug B host application built on pysparkplug, an implementation independent of the
gateway's, for tests and benches: it prints every Sparkplug message it sees and sends the
commands it is given.

pysparkplug pins paho-mqtt < 2 while the gateway is on paho 2, so this runs in a venv of its own
(`make sparkplug-host`, `.venv-sparkplug`), as a process: stdout has one JSON line per message
(`{"type": "DDATA", "node": ..., "device": ..., "seq": ..., "bdSeq": ..., "metrics": {...}}`,
first `{"type": "ready"}`); stdin takes one JSON command per line:
`{"type": "DCMD", "node": N, "device": D, "metrics": [[name, datatype, value], ...]}` or
`{"type": "NCMD", "node": N, "metrics": [...]}`. With `--host-id` it publishes its STATE
(online, retained; offline as its will), as a primary host application does.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

import pysparkplug as spb


def _metrics(payload: Any) -> dict[str, Any]:
    return {metric.name: metric.value for metric in getattr(payload, "metrics", ())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--group", default="Inspection")
    parser.add_argument("--host-id", default=None)
    args = parser.parse_args()
    client = spb.Client(client_id=f"host-{args.host_id or 'test'}")
    lock = threading.Lock()

    def emit(record: dict[str, Any]) -> None:
        with lock:
            print(json.dumps(record, default=str), flush=True)

    def on_message(_: spb.Client, message: spb.Message) -> None:
        topic, payload = message.topic, message.payload
        record: dict[str, Any] = {
            "type": str(topic.message_type),
            "node": topic.edge_node_id,
            "device": topic.device_id,
            "seq": getattr(payload, "seq", None),
            "metrics": _metrics(payload),
        }
        if isinstance(payload, spb.NDeath):
            record["metrics"] = {"bdSeq": payload.bd_seq_metric.value}
        if isinstance(payload, spb.NBirth):
            record["bdSeq"] = record["metrics"].get("bdSeq")
        emit(record)

    def on_connect(_: spb.Client) -> None:
        if args.host_id:
            state = spb.State(timestamp=spb.get_current_timestamp(), online=True)
            topic = spb.Topic(message_type=spb.MessageType.STATE, sparkplug_host_id=args.host_id)
            client.publish(spb.Message(topic, state, spb.QoS.AT_LEAST_ONCE, retain=True))
        emit({"type": "connected"})

    if args.host_id:
        topic = spb.Topic(message_type=spb.MessageType.STATE, sparkplug_host_id=args.host_id)
        offline = spb.State(timestamp=spb.get_current_timestamp(), online=False)
        client.set_will(spb.Message(topic, offline, spb.QoS.AT_LEAST_ONCE, retain=True))
    everything = spb.Topic(group_id=args.group, message_type=spb.MULTI_LEVEL_WILDCARD)
    client.subscribe(everything, spb.QoS.AT_LEAST_ONCE, on_message)
    client.connect("127.0.0.1", port=args.port, callback=on_connect)
    emit({"type": "ready"})
    for line in sys.stdin:
        command = json.loads(line)
        metrics = tuple(
            spb.Metric(
                timestamp=spb.get_current_timestamp(),
                name=name,
                datatype=spb.DataType[datatype.upper()],
                value=value,
            )
            for name, datatype, value in command["metrics"]
        )
        kind = spb.MessageType[command["type"]]
        payload = (spb.DCmd if kind == spb.MessageType.DCMD else spb.NCmd)(
            timestamp=spb.get_current_timestamp(), metrics=metrics
        )
        topic = spb.Topic(
            group_id=args.group,
            message_type=kind,
            edge_node_id=command["node"],
            device_id=command.get("device"),
        )
        client.publish(spb.Message(topic, payload, spb.QoS.AT_MOST_ONCE, retain=False))
    client.disconnect()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
