"""The demo line: the gateway on its embedded config, driven by every simulator at once.

A PLC triggers over Modbus each time the synthetic conveyor's photo-eye reports a part in
position and scores the result registers against the scene's ground truth; an OPC UA client,
an MQTT client (when a broker runs) and an HTTP client trigger at a steady rate. `DemoBoard`
keeps the recent results per protocol: a live table in a terminal, one line per PLC part and a
JSON summary when headless (CI).
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rich.console import Console
from rich.live import Live
from rich.table import Table

from adapters.modbus import ModbusServerAdapter
from adapters.modbus.codec import int16_value, u32_value
from adapters.opcua import OpcuaServerAdapter
from gateway.app import Gateway
from gateway.config.modbus_map import RESULT_FAIL, RESULT_PASS, Register
from gateway.latency import percentile
from gateway.sources.scene import ConveyorScene
from gateway.sources.synthetic import SyntheticCamera
from simulators.http_client import trigger_loop
from simulators.mqtt_client import mqtt_trigger_loop
from simulators.opcua_client import opcua_trigger_loop
from simulators.plc import PlcProgram, PlcStats, plc_loop

STREAM = "conveyor"


class SceneCamera(Protocol):
    """A camera showing the conveyor scene: the synthetic one, or the scene over RTSP."""

    @property
    def scene(self) -> ConveyorScene: ...

    def part_in_position(self) -> int | None: ...

    def part_arrived(self) -> int | None: ...


PROTOCOLS = ("Modbus (PLC)", "OPC UA", "MQTT", "HTTP")
DEFECT_CODES = ("none", "scratch", "missing_hole", "wrong_colour", "no_part", "no_serial")
"""The demo workflow's `defect_code` output (gateway/defaults/part_inspection.yaml)."""
PLC_OUTPUT_REGISTERS = 5  # serial_number uint32, defect_code uint16, confidence float32


@dataclass
class ProtocolTally:
    results: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=300))
    last: str = "-"

    def percentile(self, q: float) -> float | None:
        return percentile(sorted(self.latencies_ms), q) if self.latencies_ms else None


class DemoBoard:
    """Recent results per protocol, and the PLC's parts scored against the scene's truth."""

    def __init__(self, scene: ConveyorScene) -> None:
        self.scene = scene
        self.tallies = {protocol: ProtocolTally() for protocol in PROTOCOLS}
        self.plc_correct = 0
        self.plc: PlcProgram | None = None
        self._plc_results = 0

    def record(self, protocol: str, body: dict[str, Any]) -> None:
        """A result as the protocol's client received it (the result body of gateway.wire)."""
        tally = self.tallies[protocol]
        tally.results += 1
        error = body.get("error")
        if error:
            tally.errors += 1
            tally.last = f"{error['name']}: {error['message']}"[:60]
            return
        outputs = body.get("outputs", {})
        tally.passed += bool(body.get("pass"))
        tally.failed += not body.get("pass")
        tally.latencies_ms.append(float(body["timings"]["total_ms"]))
        verdict = "PASS" if body.get("pass") else "FAIL"
        tally.last = f"{verdict} {outputs.get('serial') or '-'} {outputs.get('defect', '')}"

    def record_plc(self, plc: PlcProgram) -> None:
        """The PLC's last cycle, read from its result registers, scored against the truth."""
        self.plc = plc
        tally = self.tallies["Modbus (PLC)"]
        stats, block = plc.stats, plc.last_block
        got_result = len(stats.results) > self._plc_results
        self._plc_results = len(stats.results)
        if not got_result:
            tally.errors += 1
            tally.last = f"part {plc.last_part_id}: no result"
            return
        tally.results += 1
        code = int16_value(block[Register.RESULT_CODE])
        registers = plc.output_registers()
        serial_number = u32_value(registers[0:2])
        defect = DEFECT_CODES[registers[2]] if registers[2] < len(DEFECT_CODES) else "?"
        truth = self.scene.defect(plc.last_part_id) or "none"
        if code == RESULT_PASS:
            tally.passed += 1
        elif code == RESULT_FAIL:
            tally.failed += 1
        else:
            tally.errors += 1
        correct = (
            serial_number == plc.last_part_id
            and defect == truth
            and (code == RESULT_PASS) == (truth == "none")  # the verdict the PLC acts on
        )
        self.plc_correct += correct
        if stats.cycle_ms:
            tally.latencies_ms.append(stats.cycle_ms[-1])
        verdict = {RESULT_PASS: "OK", RESULT_FAIL: "NG"}.get(code, f"code {code}")
        mark = "" if correct else f"  (truth: {truth})"
        tally.last = f"{verdict} SN-{serial_number:06d} {defect}{mark}"

    def table(self) -> Table:
        table = Table(title="Recent results per protocol (Ctrl-C stops)", expand=False)
        for column in ("protocol", "results", "pass", "fail", "errors", "p50 ms", "p99 ms"):
            table.add_column(column, justify="left" if column == "protocol" else "right")
        table.add_column("last result")
        for protocol, tally in self.tallies.items():
            p50, p99 = tally.percentile(0.5), tally.percentile(0.99)
            table.add_row(
                protocol,
                str(tally.results),
                str(tally.passed),
                str(tally.failed),
                str(tally.errors),
                "-" if p50 is None else f"{p50:.1f}",
                "-" if p99 is None else f"{p99:.1f}",
                tally.last,
            )
        if self.plc is not None:
            stats = self.plc.stats
            table.caption = (
                f"PLC: {stats.cycles} parts, OK {stats.passed}, NG {stats.failed}, "
                f"missed {stats.missed}, timeouts {stats.timeouts}; "
                f"agrees with the line's ground truth on {self.plc_correct}"
            )
        return table

    def status_line(self) -> str:
        """The table in one line, for a log or a pipe (no live table without a terminal)."""
        parts = []
        if self.plc is not None:
            stats = self.plc.stats
            parts.append(
                f"PLC {stats.cycles} parts OK {stats.passed} NG {stats.failed} "
                f"missed {stats.missed} correct {self.plc_correct}"
            )
        for protocol, tally in self.tallies.items():
            p50 = tally.percentile(0.5)
            shown = "-" if p50 is None else f"{p50:.0f} ms"
            parts.append(f"{protocol} {tally.results} (p50 {shown})")
        return " | ".join(parts)

    def summary(self) -> dict[str, Any]:
        plc = self.plc.stats if self.plc is not None else PlcStats()
        inspected = len(plc.results)
        return {
            "plc": {
                "parts": plc.cycles,
                "inspected": inspected,
                "ok": plc.passed,
                "ng": plc.failed,
                "missed": plc.missed,
                "timeouts": plc.timeouts,
                "mismatched": plc.mismatched,
                "correct": self.plc_correct,
                "accuracy": round(self.plc_correct / inspected, 4) if inspected else None,
            },
            "protocols": {
                protocol: {
                    "results": t.results,
                    "pass": t.passed,
                    "fail": t.failed,
                    "errors": t.errors,
                    "p50_ms": _round(t.percentile(0.5)),
                    "p99_ms": _round(t.percentile(0.99)),
                    "mean_ms": _round(statistics.fmean(t.latencies_ms)) if t.latencies_ms else None,
                }
                for protocol, t in self.tallies.items()
            },
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


STATUS_EVERY_S = 5.0


async def _report_every(board: DemoBoard, seconds: float, echo: Callable[[str], None]) -> None:
    while True:
        await asyncio.sleep(seconds)
        echo(board.status_line())


async def run_demo(
    gateway: Gateway,
    *,
    stop: asyncio.Event,
    rate: float,
    duration_s: float | None,
    mqtt_port: int | None,
    headless: bool,
    echo: Callable[[str], None],
    camera: SceneCamera | None = None,
) -> dict[str, Any]:
    """Drive the running `gateway` until `stop` or `duration_s`; returns the summary. The
    photo-eye and the truth come from `camera` (the scene behind the stream's camera), by
    default the stream's own synthetic camera."""
    for name in ("asyncua", "opcua"):  # the demo's own OPC UA client's revised-value notices
        logging.getLogger(name).setLevel(logging.ERROR)
    if camera is None:
        source = gateway.streams[STREAM].capture.source
        if not isinstance(source, SyntheticCamera):
            raise RuntimeError(f"the demo needs stream {STREAM!r} on the synthetic camera")
        camera = source
    board = DemoBoard(camera.scene)
    seconds = duration_s or 365 * 86400.0
    assert gateway.http is not None
    url = f"http://127.0.0.1:{gateway.http.port}"
    clients: list[asyncio.Task[Any]] = []

    def record(protocol: str) -> Callable[[dict[str, Any]], None]:
        return lambda body: board.record(protocol, body)

    console = Console()
    per_part = headless or not console.is_terminal  # a line per part where no live table shows

    if isinstance(gateway.modbus, ModbusServerAdapter) and gateway.modbus.port:
        echo(f"Modbus TCP on 127.0.0.1:{gateway.modbus.port}: a PLC triggers each part")

        def on_cycle(plc: PlcProgram) -> None:
            board.record_plc(plc)
            if per_part:
                echo(f"PLC  part {plc.last_part_id:<5} {board.tallies['Modbus (PLC)'].last}")

        clients.append(
            asyncio.create_task(
                plc_loop(
                    "127.0.0.1",
                    gateway.modbus.port,
                    rate=0.0,
                    duration_s=seconds,
                    on_cycle=on_cycle,
                    part_sensor=camera.part_arrived,
                    output_registers=PLC_OUTPUT_REGISTERS,
                )
            )
        )
    if isinstance(gateway.opcua, OpcuaServerAdapter) and gateway.opcua.port:
        echo(f"OPC UA at {gateway.opcua.endpoint} (browse Objects/Gateway/Streams)")
        clients.append(
            asyncio.create_task(
                opcua_trigger_loop(
                    gateway.opcua.endpoint,
                    STREAM,
                    rate=rate,
                    duration_s=seconds,
                    on_result=record("OPC UA"),
                    part_sensor=camera.part_in_position,
                )
            )
        )
    if gateway.mqtt is not None and mqtt_port is not None:
        echo(f"MQTT on 127.0.0.1:{mqtt_port}, topics {gateway.mqtt.prefix}/...")
        clients.append(
            asyncio.create_task(
                asyncio.to_thread(
                    mqtt_trigger_loop,
                    "127.0.0.1",
                    mqtt_port,
                    gateway.mqtt.prefix,
                    STREAM,
                    rate,
                    seconds,
                    stop,
                    record("MQTT"),
                    camera.part_in_position,
                )
            )
        )
    clients.append(
        asyncio.create_task(
            trigger_loop(
                url,
                STREAM,
                rate_hz=rate,
                duration_s=seconds,
                on_result=lambda _status, body: board.record("HTTP", body),
                part_sensor=camera.part_in_position,
            )
        )
    )
    stopper = asyncio.create_task(stop.wait())
    if headless:
        await asyncio.wait({*clients, stopper}, return_when=asyncio.FIRST_COMPLETED)
    elif console.is_terminal:
        with Live(get_renderable=board.table, console=console, refresh_per_second=4):
            await asyncio.wait({*clients, stopper}, return_when=asyncio.FIRST_COMPLETED)
    else:  # piped or under systemd: a line every few seconds instead of a live table
        reporter = asyncio.create_task(_report_every(board, STATUS_EVERY_S, echo))
        await asyncio.wait({*clients, stopper}, return_when=asyncio.FIRST_COMPLETED)
        reporter.cancel()
    echo("stopping…")
    stop.set()
    stopper.cancel()
    await asyncio.wait(clients, timeout=5)
    for client in clients:
        client.cancel()
    for client in clients:
        if client.done() and not client.cancelled() and client.exception() is not None:
            echo(f"a simulated client failed: {client.exception()!r}")
    summary = board.summary()
    echo("demo summary: " + json.dumps(summary))
    return summary
