"""MQTT trigger -> result latency through a local Mosquitto, beside the bare floor in the same run.

Floor: a plain paho responder (its own process) that answers each request on its Response Topic
at once. Gateway: its own process, one synthetic camera per stream, a trivial one-step
workflow. The client alternates between the two over one connection, QoS 0 then QoS 1. Then a
sustained run: several client threads triggering four streams for a bounded time.

    python -m bench.mqtt_trigger [--requests 2000] [--seconds 10] [--clients 4]

Writes bench/results/mqtt_trigger.json and .md. Run by hand, not in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.report import TRIVIAL_WORKFLOW, start_child, stop_child, summary, write_report
from simulators.broker import Mosquitto
from simulators.mqtt_client import MqttTriggerClient, nodelay

STREAMS = ("s1", "s2", "s3", "s4")


def serve_gateway(port: int, qos: int) -> None:
    import uvloop

    from gateway.app import Gateway
    from gateway.config import GatewayConfig
    from gateway.logs import configure_logging

    configure_logging("warning")
    stream = {
        "source": {"type": "synthetic", "width": 320, "height": 240, "fps": 30},
        "workflow": "trivial",
        "queue_size": 64,
    }
    config = GatewayConfig.model_validate(
        {
            "gateway_id": "bench",
            "http": {"enabled": False},
            "mqtt": {"enabled": True, "port": port, "result_qos": qos, "trigger_qos": qos},
            "workflows": {"trivial": {"specification": TRIVIAL_WORKFLOW}},
            "streams": {name: stream for name in STREAMS},
        }
    )

    async def main() -> None:
        async with Gateway(config):
            print("READY", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


def serve_floor(port: int, qos: int) -> None:
    """A bare paho responder: answers `floor/streams/+/trigger` on the Response Topic."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from adapters.mqtt import publish_properties

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="floor", protocol=mqtt.MQTTv5)
    client.on_socket_open = lambda c, u, sock: nodelay(sock)

    def on_message(c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
        properties = publish_properties()
        properties.CorrelationData = message.properties.CorrelationData  # type: ignore[union-attr]
        reply = json.dumps({"success": True, "echo": json.loads(message.payload)}).encode()
        c.publish(message.properties.ResponseTopic, reply, qos=qos, properties=properties)  # type: ignore[union-attr]

    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("floor/streams/+/trigger", qos=qos)
    client.connect("127.0.0.1", port)
    client.loop_start()
    time.sleep(0.3)
    print("READY", flush=True)
    sys.stdin.read()
    client.loop_stop()


def child(role: str, port: int, qos: int) -> subprocess.Popen[str]:
    return start_child("bench.mqtt_trigger", f"--serve-{role}", str(port), "--qos", str(qos))


def latency(port: int, qos: int, requests: int) -> dict[str, Any]:
    floor_ms: list[float] = []
    gateway_ms: list[float] = []
    failures = 0
    with (
        MqttTriggerClient("127.0.0.1", port, prefix="floor") as floor,
        MqttTriggerClient("127.0.0.1", port, prefix="gateway/bench") as gateway,
    ):
        for index in range(requests + 50):
            start = time.perf_counter()
            floor.trigger("s1", {"trigger_id": f"f{index}"}, qos=qos)
            floor_s = time.perf_counter() - start
            start = time.perf_counter()
            answer = gateway.trigger("s1", {"trigger_id": f"g{index}"}, qos=qos)
            gateway_s = time.perf_counter() - start
            if index >= 50:  # warm-up done
                floor_ms.append(floor_s * 1000)
                gateway_ms.append(gateway_s * 1000)
                failures += not answer.get("success")
    return {"floor": summary(floor_ms), "gateway": summary(gateway_ms), "failures": failures}


def sustained(port: int, clients: int, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    answered: list[list[str]] = [[] for _ in range(clients)]
    outcomes: dict[str, int] = {}
    lock = threading.Lock()

    def worker(index: int) -> None:
        with MqttTriggerClient("127.0.0.1", port, prefix="gateway/bench") as sim:
            sent = 0
            while time.monotonic() < deadline:
                stream = STREAMS[(index + sent) % len(STREAMS)]
                answer = sim.trigger(stream, {"trigger_id": f"c{index}-{sent}"})
                sent += 1
                answered[index].append(answer["trigger_id"])
                name = answer["error"]["name"] if answer.get("error") else "OK"
                with lock:
                    outcomes[name] = outcomes.get(name, 0) + 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    elapsed = time.monotonic() - started
    ids = [tid for batch in answered for tid in batch]
    return {
        "clients": clients,
        "streams": len(STREAMS),
        "seconds": round(elapsed, 2),
        "triggers": len(ids),
        "rate_per_s": len(ids) / elapsed,
        "outcomes": outcomes,
        "each_answered_once": len(ids) == len(set(ids)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mqtt_trigger", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--qos", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--serve-gateway", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-floor", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_gateway:
        serve_gateway(args.serve_gateway, args.qos)
        return 0
    if args.serve_floor:
        serve_floor(args.serve_floor, args.qos)
        return 0

    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as workdir:
        broker = Mosquitto(Path(workdir))
        broker.start()
        try:
            for qos in (0, 1):
                processes = [child("gateway", broker.port, qos), child("floor", broker.port, qos)]
                try:
                    report[f"qos{qos}"] = latency(broker.port, qos, args.requests)
                    if qos == 1:
                        report["sustained"] = sustained(broker.port, args.clients, args.seconds)
                finally:
                    for process in processes:
                        stop_child(process)
        finally:
            broker.stop()

    lines = [
        "| MQTT v5 request/response via Mosquitto | p50 ms | p99 ms | n |",
        "|---|---|---|---|",
    ]
    for qos in (0, 1):
        run = report[f"qos{qos}"]
        for name, label in (("floor", "bare paho responder (floor)"), ("gateway", "gateway")):
            r = run[name]
            lines.append(
                f"| QoS {qos}, {label} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['n']} |"
            )
        ratio = run["gateway"]["p50_ms"] / run["floor"]["p50_ms"]
        run["ratio_p50"] = ratio
        lines.append(f"| QoS {qos} ratio (p50) | {ratio:.2f}x | | failures {run['failures']} |")
    load = report["sustained"]
    lines += [
        "",
        f"Sustained (QoS 1): {load['clients']} clients over {load['streams']} streams for "
        f"{load['seconds']} s: {load['triggers']} triggers, {load['rate_per_s']:.0f}/s, "
        f"outcomes {load['outcomes']}, each answered exactly once: {load['each_answered_once']}.",
    ]
    write_report("mqtt_trigger", report, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
