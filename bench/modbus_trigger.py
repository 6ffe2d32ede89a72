"""Modbus trigger -> result latency, beside the bare pymodbus floor measured in the same run.

Server mode. Floor: a plain pymodbus server (SimDevice, no action) in its own process; one
cycle = write a holding register + read it back. Gateway: its own process, a synthetic camera
and a trivial one-step workflow; one cycle = write a new TRIG_SEQ (or raise Trigger), then read
the result block until RESULT_ID changes. The client alternates between the two, one connection
each. Client mode: the PLC (this process) raises a new TRIG_SEQ in its own memory and times
until the gateway, polling every `--poll-ms`, has written the matching ACQ_ID back.

    python -m bench.modbus_trigger [--cycles 2000] [--poll-ms 10] [--client-cycles 300]

Writes bench/results/modbus_trigger.json and .md. Run by hand, not in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from bench.report import TRIVIAL_WORKFLOW, start_child, stop_child, summary, write_report
from gateway.config.modbus_map import Coil, Register
from simulators.net import free_port
from simulators.plc import PlcMemory


def gateway_config(modbus: dict[str, Any]) -> Any:
    from gateway.config import GatewayConfig

    return GatewayConfig.model_validate(
        {
            "gateway_id": "bench",
            "http": {"enabled": False},
            "modbus": modbus,
            "workflows": {"trivial": {"specification": TRIVIAL_WORKFLOW}},
            "streams": {
                "s1": {
                    "source": {"type": "synthetic", "width": 320, "height": 240, "fps": 30},
                    "workflow": "trivial",
                }
            },
        }
    )


def serve(role: str, port: int, poll_ms: float) -> None:
    import uvloop

    from gateway.app import Gateway
    from gateway.logs import configure_logging

    configure_logging("warning")

    async def main() -> None:
        if role == "floor":
            from pymodbus.server import ModbusTcpServer
            from pymodbus.simulator import DataType, SimData, SimDevice

            device = SimDevice(id=0, simdata=SimData(0, count=100, datatype=DataType.REGISTERS))
            server = ModbusTcpServer(device, address=("127.0.0.1", port))
            await server.serve_forever(background=True)
            print("READY", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            return
        if role == "gateway":
            modbus: dict[str, Any] = {"type": "server", "port": port}
        else:
            modbus = {
                "type": "client",
                "host": "127.0.0.1",
                "port": port,
                "poll_interval_ms": poll_ms,
                "streams": {"s1": {"control_registers": 0, "result_registers": 100}},
            }
        async with Gateway(gateway_config(modbus)) as gateway:
            while gateway.streams["s1"].capture.latest() is None:  # noqa: ASYNC110 (a thread fills it)
                await asyncio.sleep(0.01)
            print("READY", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


def child(role: str, port: int, poll_ms: float = 10.0) -> subprocess.Popen[str]:
    return start_child(
        "bench.modbus_trigger", "--serve", role, "--port", str(port), "--poll-ms", str(poll_ms)
    )


async def server_mode(cycles: int) -> dict[str, Any]:
    floor_port, gateway_port = free_port(), free_port()
    processes = [child("floor", floor_port), child("gateway", gateway_port)]
    floor = AsyncModbusTcpClient("127.0.0.1", port=floor_port)
    gateway = AsyncModbusTcpClient("127.0.0.1", port=gateway_port)
    try:
        await floor.connect()
        await gateway.connect()
        await gateway.write_coils(0, [True, False, False, False], device_id=1)
        floor_ms: list[float] = []
        seq_ms: list[float] = []
        coil_ms: list[float] = []
        reads: list[int] = []
        lost = 0
        result_id = 0
        for index in range(cycles + 100):
            start = time.perf_counter()
            await floor.write_register(10, index & 0xFFFF, device_id=1)
            echo = await floor.read_holding_registers(10, count=1, device_id=1)
            floor_s = time.perf_counter() - start
            lost += echo.registers[0] != index & 0xFFFF
            for coil in (False, True):
                start = time.perf_counter()
                if coil:
                    await gateway.write_coil(Coil.TRIGGER, True, device_id=1)
                else:
                    await gateway.write_register(0, index % 0xFFFF + 1, device_id=1)
                polls = 0
                while True:
                    polls += 1
                    block = await gateway.read_input_registers(0, count=14, device_id=1)
                    if block.registers[Register.RESULT_ID] != result_id:
                        break
                elapsed = time.perf_counter() - start
                result_id = block.registers[Register.RESULT_ID]
                lost += block.registers[Register.RESULT_ACQ_ID] != block.registers[Register.ACQ_ID]
                if coil:
                    await gateway.write_coil(Coil.TRIGGER, False, device_id=1)
                if index >= 100:  # warm-up done
                    (coil_ms if coil else seq_ms).append(elapsed * 1000)
                    reads.append(polls)
            if index >= 100:
                floor_ms.append(floor_s * 1000)
    finally:
        floor.close()
        gateway.close()
        for process in processes:
            stop_child(process)
    return {
        "floor": summary(floor_ms),
        "trig_seq": summary(seq_ms),
        "trigger_coil": summary(coil_ms),
        "block_reads_per_cycle_mean": sum(reads) / len(reads),
        "mismatched": lost,
    }


async def client_mode(cycles: int, poll_ms: float) -> dict[str, Any]:
    memory = PlcMemory(controls=0, results=100)
    port = await memory.start()
    process = await asyncio.to_thread(child, "client", port, poll_ms)
    detect_ms: list[float] = []
    try:
        for seq in range(1, cycles + 1):
            before = memory.block[Register.ACQ_ID]
            await asyncio.sleep((seq % 7) * poll_ms / 7000.0)  # spread over the poll phase
            start = time.perf_counter()
            memory.controls[0] = seq
            while memory.block[Register.ACQ_ID] == before:
                memory.changed.clear()
                async with asyncio.timeout(5.0):
                    await memory.changed.wait()
            detect_ms.append((time.perf_counter() - start) * 1000)
    finally:
        await asyncio.to_thread(stop_child, process)
        await memory.stop()
    return {"poll_interval_ms": poll_ms, "detection": summary(detect_ms)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.modbus_trigger", description=__doc__)
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--client-cycles", type=int, default=300)
    parser.add_argument("--poll-ms", type=float, default=10.0)
    parser.add_argument("--serve", choices=["floor", "gateway", "client"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.poll_ms)
        return 0

    report = {
        "server": asyncio.run(server_mode(args.cycles)),
        "client": asyncio.run(client_mode(args.client_cycles, args.poll_ms)),
    }
    server, client = report["server"], report["client"]
    floor = server["floor"]
    lines = [
        "| Modbus, server mode | p50 ms | p99 ms | n | p50 / floor |",
        "|---|---|---|---|---|",
        f"| floor: write + read back (bare pymodbus) | {floor['p50_ms']:.3f} | "
        f"{floor['p99_ms']:.3f} | {floor['n']} | 1.00 |",
    ]
    for key, label in (("trig_seq", "write TRIG_SEQ"), ("trigger_coil", "raise Trigger")):
        row = server[key]
        lines.append(
            f"| gateway: {label} -> RESULT_ID seen | {row['p50_ms']:.3f} | {row['p99_ms']:.3f} | "
            f"{row['n']} | {row['p50_ms'] / floor['p50_ms']:.2f} |"
        )
    detect = client["detection"]
    lines += [
        "",
        f"Block reads per cycle (mean): {server['block_reads_per_cycle_mean']:.2f}; "
        f"RESULT_ACQ_ID != ACQ_ID: {server['mismatched']}.",
        "",
        "| Modbus, client mode | p50 ms | p99 ms | n | poll interval ms |",
        "|---|---|---|---|---|",
        f"| new TRIG_SEQ in the PLC -> ACQ_ID written back | {detect['p50_ms']:.3f} | "
        f"{detect['p99_ms']:.3f} | {detect['n']} | {client['poll_interval_ms']:g} |",
    ]
    write_report("modbus_trigger", report, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
