"""OPC UA trigger -> ResultCounter latency, beside the bare asyncua floor measured in the same run.

Floor: a plain asyncua server (own process) whose PostWrite callback writes a counter node at
once; one cycle = write Trigger, wait for the subscription to report the counter. Gateway: its
own process, a synthetic camera and a trivial one-step workflow; one cycle = write
Control/Trigger, wait for the subscription to report Result/ResultCounter. One client alternates
between the two; repeated with the subscription's publishing interval at 0 and at 50 ms.

    python -m bench.opcua_trigger [--cycles 500]

Writes bench/results/opcua_trigger.json and .md. Run by hand, not in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from asyncua import ua
from asyncua.client.client import Client

from bench.report import TRIVIAL_WORKFLOW, start_child, stop_child, summary, write_report
from simulators.net import free_port
from simulators.opcua_client import CounterWatch, OpcuaTriggerClient


def serve(role: str, port: int) -> None:
    import uvloop

    from gateway.logs import configure_logging

    configure_logging("warning")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_floor(port) if role == "floor" else serve_gateway(port))


async def serve_floor(port: int) -> None:
    from asyncua.common.callback import CallbackType
    from asyncua.server.server import Server

    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/floor")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    await server.register_namespace("urn:floor")
    trigger = await server.nodes.objects.add_variable("ns=2;s=Trigger", "2:Trigger", False)
    await trigger.set_writable()
    counter = await server.nodes.objects.add_variable(
        "ns=2;s=Counter", "2:Counter", 0, ua.VariantType.UInt32
    )
    count = 0

    async def on_write(event: Any, _dispatcher: Any) -> None:
        nonlocal count
        if event.is_external:
            count += 1
            await server.write_attribute_value(
                counter.nodeid, ua.DataValue(ua.Variant(count, ua.VariantType.UInt32))
            )

    server.subscribe_server_callback(CallbackType.PostWrite, on_write)
    async with server:
        print("READY", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def serve_gateway(port: int) -> None:
    from gateway.app import Gateway
    from gateway.config import GatewayConfig

    config = GatewayConfig.model_validate(
        {
            "gateway_id": "bench",
            "http": {"enabled": False},
            "opcua": {"type": "server", "port": port},
            "workflows": {"trivial": {"specification": TRIVIAL_WORKFLOW}},
            "streams": {
                "s1": {
                    "source": {"type": "synthetic", "width": 320, "height": 240, "fps": 30},
                    "workflow": "trivial",
                }
            },
        }
    )
    async with Gateway(config) as gateway:
        while gateway.streams["s1"].capture.latest() is None:  # noqa: ASYNC110 (a thread fills it)
            await asyncio.sleep(0.01)
        print("READY", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def measure(floor_port: int, gateway_port: int, cycles: int, interval_ms: float) -> Any:
    floor = Client(f"opc.tcp://127.0.0.1:{floor_port}/floor", timeout=4)
    await floor.connect()
    counts = CounterWatch()
    subscription = await floor.create_subscription(interval_ms, counts)
    await subscription.subscribe_data_change(floor.get_node("ns=2;s=Counter"))
    await counts.values.get()
    trigger = floor.get_node("ns=2;s=Trigger")
    floor_ms: list[float] = []
    gateway_ms: list[float] = []
    url = f"opc.tcp://127.0.0.1:{gateway_port}/gateway"
    try:
        async with OpcuaTriggerClient(url, "s1", publishing_interval_ms=interval_ms) as gateway:
            for index in range(cycles + 50):
                start = time.perf_counter()
                await trigger.write_value(ua.DataValue(ua.Variant(True, ua.VariantType.Boolean)))
                async with asyncio.timeout(10):
                    await counts.values.get()
                floor_s = time.perf_counter() - start
                start = time.perf_counter()
                await gateway.write("Control.Trigger", True, ua.VariantType.Boolean)
                await gateway.wait_counter()
                gateway_s = time.perf_counter() - start
                if index >= 50:  # warm-up done
                    floor_ms.append(floor_s * 1000)
                    gateway_ms.append(gateway_s * 1000)
    finally:
        await floor.disconnect()
    return {
        "publishing_interval_ms": interval_ms,
        "floor": summary(floor_ms),
        "gateway": summary(gateway_ms),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.opcua_trigger", description=__doc__)
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--serve", choices=["floor", "gateway"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    floor_port, gateway_port = free_port(), free_port()
    processes = [
        start_child("bench.opcua_trigger", "--serve", "floor", "--port", str(floor_port)),
        start_child("bench.opcua_trigger", "--serve", "gateway", "--port", str(gateway_port)),
    ]
    try:
        runs = [asyncio.run(measure(floor_port, gateway_port, args.cycles, ms)) for ms in (0, 50)]
    finally:
        for process in processes:
            stop_child(process)
    lines = [
        "| OPC UA, write Trigger -> subscription sees the counter | publishing ms | p50 ms "
        "| p99 ms | n | p50 / floor |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        floor, gateway = run["floor"], run["gateway"]
        lines.append(
            f"| floor: bare asyncua server, PostWrite writes a counter | "
            f"{run['publishing_interval_ms']:g} | {floor['p50_ms']:.3f} | {floor['p99_ms']:.3f} "
            f"| {floor['n']} | 1.00 |"
        )
        lines.append(
            f"| gateway: Control/Trigger -> Result/ResultCounter | "
            f"{run['publishing_interval_ms']:g} | {gateway['p50_ms']:.3f} | "
            f"{gateway['p99_ms']:.3f} | {gateway['n']} | "
            f"{gateway['p50_ms'] / floor['p50_ms']:.2f} |"
        )
    write_report("opcua_trigger", {"runs": runs}, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
