"""Soak: minutes of mixed HTTP, MQTT, Modbus and OPC UA triggers at a set rate against
`gateway run` on its embedded demo config (the demo workflow), with RSS sampled.

Every trigger is counted: `lost` when no answer came within its timeout, `doubled` when a
protocol answered it twice (an MQTT reply twice, a Modbus RESULT_ID or OPC UA ResultCounter
moving by more than one). RSS growth is measured from the end of the warm-up to the end.

    python -m bench.soak [--minutes 10] [--rate 50] [--warmup-s 60]

Writes bench/results/soak.json and .md. Run by hand, not in tests (it takes minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pymodbus.client import AsyncModbusTcpClient

from bench.report import write_report
from gateway.config.modbus_map import Register
from simulators.broker import Mosquitto
from simulators.mqtt_client import MqttTriggerClient
from simulators.net import free_port
from simulators.opcua_client import OpcuaTriggerClient

PROTOCOLS = ("http", "mqtt", "modbus", "opcua")


@dataclass
class Tally:
    sent: int = 0
    answered: int = 0
    lost: int = 0
    doubled: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, name: str) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def paced(rate_hz: float, deadline: float) -> Any:
    """Yield at `rate_hz` until `deadline` (monotonic), never bursting to catch up."""
    interval, due = 1.0 / rate_hz, time.monotonic()
    while time.monotonic() < deadline:
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        due = max(due + interval, time.monotonic() - interval)
        yield


def http_load(port: int, rate: float, deadline: float, tally: Tally) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0) as http:
        for _ in paced(rate, deadline):
            tally.sent += 1
            try:
                body = http.post("/streams/conveyor/trigger").json()
            except httpx.HTTPError:
                tally.lost += 1
                continue
            tally.answered += 1
            if not body["success"]:
                tally.error(body["error"]["name"])


def mqtt_load(port: int, rate: float, deadline: float, tally: Tally) -> None:
    with MqttTriggerClient("127.0.0.1", port, prefix="gateway/demo") as sim:
        for index, _ in enumerate(paced(rate, deadline)):
            tally.sent += 1
            try:
                body = sim.trigger("conveyor", {"trigger_id": f"soak-{index}"}, timeout_s=10.0)
            except Exception:
                tally.lost += 1
                continue
            tally.answered += 1
            if not body["success"]:
                tally.error(body["error"]["name"])


async def modbus_load(port: int, rate: float, deadline: float, tally: Tally) -> None:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5)
    await client.connect()
    await client.write_coil(0, True, device_id=1)  # TriggerEnable
    seq, interval = 0, 1.0 / rate
    try:
        while time.monotonic() < deadline:
            started = time.monotonic()
            before = (await client.read_input_registers(0, count=14, device_id=1)).registers
            seq = seq % 65535 + 1
            await client.write_register(0, seq, device_id=1)  # TRIG_SEQ
            tally.sent += 1
            answered = None
            for _ in range(1000):  # bounded: 5 s
                block = (await client.read_input_registers(0, count=14, device_id=1)).registers
                if block[Register.RESULT_ID] != before[Register.RESULT_ID]:
                    answered = block
                    break
                await asyncio.sleep(0.005)
            if answered is None:
                if before[Register.MISSED_TRIGGERS] != 0:
                    tally.error("MISSED")
                else:
                    tally.lost += 1
            else:
                tally.answered += 1
                step = (answered[Register.RESULT_ID] - before[Register.RESULT_ID]) % 65535
                tally.doubled += int(step > 1)
            await client.write_coil(3, True, device_id=1)  # ClearError (missed triggers)
            await client.write_coil(3, False, device_id=1)
            await asyncio.sleep(max(interval - (time.monotonic() - started), 0.0))
    finally:
        client.close()


async def opcua_load(port: int, rate: float, deadline: float, tally: Tally) -> None:
    interval = 1.0 / rate
    async with OpcuaTriggerClient(f"opc.tcp://127.0.0.1:{port}/gateway", "conveyor") as sim:
        while time.monotonic() < deadline:
            started = time.monotonic()
            counter = await sim.node("Result.ResultCounter").read_value()
            tally.sent += 1
            try:
                await sim.trigger("count")
            except Exception:
                tally.lost += 1
            else:
                tally.answered += 1
                moved = (await sim.node("Result.ResultCounter").read_value()) - counter
                tally.doubled += int(moved > 1)
            await asyncio.sleep(max(interval - (time.monotonic() - started), 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0, help="triggers/s, all protocols")
    parser.add_argument("--warmup-s", type=float, default=60.0)
    parser.add_argument("--gateway-root", help="run the gateway from this checkout instead")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    broker = Mosquitto(work)
    broker.start()
    ports = {name: free_port() for name in ("http", "modbus", "opcua")}
    env = {**os.environ, "GATEWAY_DATA_DIR": str(work / "data"),
           "GATEWAY_HTTP_PORT": str(ports["http"]), "GATEWAY_MODBUS_PORT": str(ports["modbus"]),
           "GATEWAY_OPCUA_PORT": str(ports["opcua"])}  # fmt: skip
    config = work / "soak.yaml"
    embedded = Path(__file__).resolve().parent.parent / "gateway" / "defaults" / "gateway.yaml"
    config.write_text(
        embedded.read_text().replace(
            "gateway_id: demo", f"gateway_id: demo\nmqtt:\n  enabled: true\n  port: {broker.port}"
        )
    )
    (work / "part_inspection.yaml").write_text(
        (embedded.parent / "part_inspection.yaml").read_text()
    )
    (work / "part_classifier.onnx").write_bytes(
        (embedded.parent / "part_classifier.onnx").read_bytes()
    )
    root = Path(args.gateway_root or Path(__file__).resolve().parent.parent).resolve()
    env["PYTHONPATH"] = str(root)  # another checkout's gateway (an older commit), same clients
    gateway = subprocess.Popen(
        [sys.executable, "-c", "from gateway.cli import main; main()", "run", "-c", str(config)],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        report = soak(gateway.pid, ports, broker.port, args)
    finally:
        gateway.send_signal(signal.SIGINT)
        gateway.wait(timeout=30)
        broker.stop()
    lines = [
        f"Soak: {args.minutes:g} min at {args.rate:g} triggers/s (HTTP, MQTT, Modbus, OPC UA "
        "in equal shares), demo workflow, `gateway run` in its own process",
        "",
        "| protocol | sent | answered | lost | doubled | error results |",
        "|---|---|---|---|---|---|",
        *[
            f"| {name} | {t['sent']} | {t['answered']} | {t['lost']} | {t['doubled']} | "
            f"{t['errors'] or '-'} |"
            for name, t in report["protocols"].items()
        ],
        "",
        f"RSS after warm-up {report['rss_after_warmup_mb']:.1f} MB, at the end "
        f"{report['rss_end_mb']:.1f} MB: growth {report['rss_growth_pct']:+.2f} % "
        f"(peak {report['rss_peak_mb']:.1f} MB)",
    ]
    write_report("soak", report, lines)


def soak(pid: int, ports: dict[str, int], mqtt_port: int, args: Any) -> dict[str, Any]:
    with httpx.Client(base_url=f"http://127.0.0.1:{ports['http']}", timeout=5) as http:
        for _ in range(300):  # bounded: 30 s
            try:
                if http.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    started = time.monotonic()
    deadline = started + args.minutes * 60.0
    share = args.rate / len(PROTOCOLS)
    tallies = {name: Tally() for name in PROTOCOLS}
    threads = [
        threading.Thread(target=http_load, args=(ports["http"], share, deadline, tallies["http"])),
        threading.Thread(target=mqtt_load, args=(mqtt_port, share, deadline, tallies["mqtt"])),
        threading.Thread(
            target=asyncio.run,
            args=(modbus_load(ports["modbus"], share, deadline, tallies["modbus"]),),
        ),
        threading.Thread(
            target=asyncio.run,
            args=(opcua_load(ports["opcua"], share, deadline, tallies["opcua"]),),
        ),
    ]
    for thread in threads:
        thread.start()
    samples: list[tuple[float, float]] = []
    while time.monotonic() < deadline:
        samples.append((time.monotonic() - started, rss_mb(pid)))
        time.sleep(5.0)
    for thread in threads:
        thread.join(timeout=60)
    samples.append((time.monotonic() - started, rss_mb(pid)))
    after_warmup = next((mb for at, mb in samples if at >= args.warmup_s), samples[0][1])
    end = samples[-1][1]
    return {
        "minutes": args.minutes,
        "rate_hz": args.rate,
        "warmup_s": args.warmup_s,
        "protocols": {name: vars(tally) for name, tally in tallies.items()},
        "rss_samples_mb": samples,
        "rss_after_warmup_mb": after_warmup,
        "rss_end_mb": end,
        "rss_peak_mb": max(mb for _, mb in samples),
        "rss_growth_pct": (end - after_warmup) / after_warmup * 100.0,
    }


if __name__ == "__main__":
    main()
