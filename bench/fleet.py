"""Fleet and SCADA figures, each beside its floor measured in the same run (by hand):

  remote    a fleet trigger (gateway A -> broker -> gateway B -> broker -> A) beside a local
            MQTT trigger to B on the same broker (client -> B -> client)
  sparkplug a Sparkplug DCMD Trigger -> the DDATA of its result, beside a plain MQTT trigger to
            the same gateway
  postgres  results/s into one PostgreSQL table from 3 gateways, beside a bare batched INSERT
            of the same rows from one connection

    python -m bench.fleet [--requests 300] [--seconds 10]

Every gateway runs in this process, on one loop, a synthetic camera and a one-step workflow.
Writes bench/results/fleet.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg.types.json import Jsonb

from adapters.sparkplug.payload import DataType, Metric, decode, encode
from bench.report import TRIVIAL_WORKFLOW, summary, write_report
from gateway.app import Gateway
from gateway.config import GatewayConfig
from gateway.logs import configure_logging
from gateway.model import Origin, Trigger
from simulators.broker import Mosquitto
from simulators.mqtt_client import MqttTriggerClient
from simulators.postgres import PostgresServer


def config(gateway_id: str, data: Path, **sections: Any) -> GatewayConfig:
    stream = {
        "source": {"type": "synthetic", "width": 320, "height": 240, "fps": 30},
        "workflow": "trivial",
        "queue_size": 64,
    }
    raw = {
        "gateway_id": gateway_id,
        "http": {"enabled": False},
        "history": {"data_dir": str(data / gateway_id)},
        "workflows": {"trivial": {"specification": TRIVIAL_WORKFLOW}},
        "streams": {"cam": stream},
        **sections,
    }
    return GatewayConfig.model_validate(raw)


def mqtt_section(port: int) -> dict[str, Any]:
    return {"enabled": True, "port": port, "session_expiry_s": 60}


def local_triggers(port: int, gateway_id: str, count: int) -> list[float]:
    times = []
    with MqttTriggerClient("127.0.0.1", port, prefix=f"gateway/{gateway_id}") as client:
        for _ in range(count):
            started = time.perf_counter()
            client.trigger("cam", b"{}")
            times.append((time.perf_counter() - started) * 1000)
    return times


async def remote_triggers(viewer: Gateway, target: str, count: int) -> list[float]:
    assert viewer.mqtt is not None and viewer.mqtt.fleet is not None
    fleet = viewer.mqtt.fleet
    times = []
    for _ in range(count):
        started = time.perf_counter()
        request = fleet.trigger(target, "cam", {}, 60)
        for _ in range(20_000):  # bounded: 10 s
            if (fleet.request(request["request_id"]) or {}).get("state") != "waiting":
                break
            await asyncio.sleep(0.0005)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def remote_vs_local(port: int, data: Path, count: int) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        viewer = await stack.enter_async_context(
            Gateway(config("line-a", data, mqtt=mqtt_section(port)))
        )
        await stack.enter_async_context(Gateway(config("line-b", data, mqtt=mqtt_section(port))))
        assert viewer.mqtt is not None and viewer.mqtt.fleet is not None
        for _ in range(500):  # bounded: until B's announcement reached A
            if any(g["gateway_id"] == "line-b" for g in viewer.mqtt.fleet.gateways()):
                break
            await asyncio.sleep(0.01)
        local, remote = [], []
        for _ in range(2):  # alternate, so drift hits both
            local += await asyncio.to_thread(local_triggers, port, "line-b", count // 2)
            remote += await remote_triggers(viewer, "line-b", count // 2)
    return {"local_mqtt": summary(local), "remote_fleet": summary(remote)}


def dcmd_triggers(port: int, count: int) -> list[float]:
    """DCMD Trigger, then wait for the next DDATA carrying a result."""
    answers: queue.Queue[float] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"host-{uuid.uuid4().hex[:6]}")

    def on_message(_: Any, __: Any, message: mqtt.MQTTMessage) -> None:
        _, metrics = decode(bytes(message.payload))
        if "Result/Id" in metrics:
            answers.put(time.perf_counter())

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe("spBv1.0/Inspection/DDATA/line-s/cam", qos=0)
    time.sleep(0.5)
    command = encode([Metric("Trigger", DataType.BOOLEAN, True)], seq=None)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        client.publish("spBv1.0/Inspection/DCMD/line-s/cam", command, qos=0)
        times.append((answers.get(timeout=10) - started) * 1000)
    client.disconnect()
    client.loop_stop()
    return times


async def sparkplug_vs_mqtt(port: int, data: Path, count: int) -> dict[str, Any]:
    sections = {"mqtt": mqtt_section(port), "sparkplug": {"enabled": True, "port": port}}
    async with Gateway(config("line-s", data, **sections)):
        await asyncio.sleep(1.0)
        plain, dcmd = [], []
        for _ in range(2):
            plain += await asyncio.to_thread(local_triggers, port, "line-s", count // 2)
            dcmd += await asyncio.to_thread(dcmd_triggers, port, count // 2)
    return {"mqtt_trigger": summary(plain), "sparkplug_dcmd": summary(dcmd)}


async def postgres_rate(dsn: str, data: Path, seconds: float) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        gateways = []
        for name in ("pg-1", "pg-2", "pg-3"):
            history = {"data_dir": str(data / name), "postgres": {"dsn": dsn, "retry_s": 0.5}}
            gateway = Gateway(config(name, data, history=history))
            gateways.append(await stack.enter_async_context(gateway))
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        deadline = time.monotonic() + seconds

        async def load(gateway: Gateway) -> int:
            count = 0
            while time.monotonic() < deadline:
                await asyncio.gather(
                    *(gateway.dispatcher.inspect(Trigger("cam", Origin.PYTHON)) for _ in range(16))
                )
                count += 16
            return count

        made = sum(await asyncio.gather(*(load(g) for g in gateways)))
        for _ in range(6000):  # bounded: until every outbox is empty
            if all(g.plant_history is not None and g.plant_history.queued == 0 for g in gateways):
                break
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
    with psycopg.connect(dsn) as db:
        stored = db.execute("SELECT count(*) FROM inspection_results").fetchone()
        fetched = db.execute(
            "SELECT gateway_id, stream, result_id, trigger_id, source, received_at, passed, "
            "error_code, error_message, part_id, frame_id, total_ms, record "
            "FROM inspection_results"
        ).fetchall()
        rows = [(*row[:-1], Jsonb(row[-1])) for row in fetched]
        db.execute("CREATE TABLE floor (LIKE inspection_results INCLUDING ALL)")
        floor_started = time.perf_counter()
        with db.cursor() as cursor:
            for index in range(0, len(rows), 500):
                cursor.executemany(
                    "INSERT INTO floor (gateway_id, stream, result_id, trigger_id, source, "
                    "received_at, passed, error_code, error_message, part_id, frame_id, "
                    "total_ms, record) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    rows[index : index + 500],
                )
                db.commit()
        floor_s = time.perf_counter() - floor_started
    return {
        "results": made,
        "stored": stored[0] if stored else 0,
        "gateway_results_per_s": made / elapsed,
        "floor_rows_per_s": len(rows) / floor_s,
    }


def line(name: str, figure: dict[str, float], floor: dict[str, float]) -> str:
    ratio = figure["p50_ms"] / floor["p50_ms"]
    return (
        f"| {name} | {figure['p50_ms']:.2f} | {figure['p99_ms']:.2f} | "
        f"{floor['p50_ms']:.2f} | {floor['p99_ms']:.2f} | {ratio:.2f} |"
    )


async def run(args: argparse.Namespace) -> None:
    configure_logging("warning")
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as workdir:
        data = Path(workdir)
        broker = Mosquitto(data)
        broker.start()
        try:
            fleet = await remote_vs_local(broker.port, data, args.requests)
            spb = await sparkplug_vs_mqtt(broker.port, data, args.requests)
        finally:
            broker.stop()
        with PostgresServer() as postgres:
            pg = await postgres_rate(postgres.dsn, data, args.seconds)
    lines = [
        f"Fleet and SCADA, {args.requests} requests each, one run",
        "",
        "| path | p50 ms | p99 ms | floor p50 ms | floor p99 ms | p50 ratio |",
        "|---|---|---|---|---|---|",
        line("remote fleet trigger (floor: MQTT)", fleet["remote_fleet"], fleet["local_mqtt"]),
        line("Sparkplug DCMD -> DDATA (floor: MQTT)", spb["sparkplug_dcmd"], spb["mqtt_trigger"]),
        "",
        f"PostgreSQL, 3 gateways for {args.seconds:g} s: {pg['results']} results, {pg['stored']} "
        f"stored, {pg['gateway_results_per_s']:.0f} results/s end to end; bare batched INSERT of "
        f"the same rows {pg['floor_rows_per_s']:.0f} rows/s",
    ]  # fmt: skip
    write_report("fleet", {"fleet": fleet, "sparkplug": spb, "postgres": pg}, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
