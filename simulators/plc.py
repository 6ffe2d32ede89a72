"""A PLC simulator: runs a conveyor cycle against the gateway over Modbus TCP, in either mode.

Each cycle is what a PLC program does when a part reaches the camera: wait for Ready, latch the
part id, raise Trigger (or write a new TRIG_SEQ), wait for TriggerAck, drop Trigger, wait for
ResultValid, read the whole result block in one request, check that RESULT_ACQ_ID matches the
ACQ_ID of this trigger, count OK/NG, and acknowledge with ResultAck.

- `--mode server`: the gateway is the Modbus server; this PLC is a client of it.
- `--mode client`: this PLC is the Modbus server; the gateway polls it and writes the result
  into its holding registers.

    python -m simulators.plc --mode server --port 5020 --cycles 100 --rate 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from adapters.modbus.codec import int16_value, u32_registers, u32_value
from gateway.config import MODBUS_RESULT_HEADER, MODBUS_RESULT_SPAN
from gateway.config.modbus_map import (
    COILS,
    CONTROLS,
    RESULT_FAIL,
    RESULT_PASS,
    Coil,
    Control,
    Register,
    Status,
)


class HandshakeTimeout(Exception):
    """The gateway did not answer a handshake step in time."""


class PlcIo(Protocol):
    """What the PLC program touches: its control outputs and the gateway's result block."""

    async def set_coils(self, coil: Coil, values: list[bool]) -> None: ...
    async def set_controls(self, control: Control, values: list[int]) -> None: ...
    async def read_block(self) -> list[int]: ...
    async def settle(self) -> None:
        """Wait a little for the gateway to move before reading again."""


class GatewayServerIo:
    """Server mode: the PLC is a Modbus client of the gateway."""

    def __init__(
        self, client: AsyncModbusTcpClient, base: int, length: int, unit: int, fc3: bool
    ) -> None:
        self.client, self.base, self.length, self.unit, self.fc3 = client, base, length, unit, fc3

    async def set_coils(self, coil: Coil, values: list[bool]) -> None:
        if len(values) == 1:
            reply = await self.client.write_coil(self.base + coil, values[0], device_id=self.unit)
        else:
            reply = await self.client.write_coils(self.base + coil, values, device_id=self.unit)
        _check(reply)

    async def set_controls(self, control: Control, values: list[int]) -> None:
        reply = await self.client.write_registers(self.base + control, values, device_id=self.unit)
        _check(reply)

    async def read_block(self) -> list[int]:
        if self.fc3:
            reply = await self.client.read_holding_registers(
                self.base + MODBUS_RESULT_SPAN, count=self.length, device_id=self.unit
            )
        else:
            reply = await self.client.read_input_registers(
                self.base, count=self.length, device_id=self.unit
            )
        _check(reply)
        return list(reply.registers)

    async def settle(self) -> None:
        await asyncio.sleep(0)


def _check(reply: Any) -> None:
    if reply.isError():
        raise RuntimeError(f"gateway answered {reply}")


class PlcMemory:
    """Client mode: the PLC's own address space, served over Modbus for the gateway to poll.

    Coils at `coils`, control registers at `controls`, and the result block the gateway writes at
    `results` (holding registers). The PLC program reads and writes it directly, as a PLC does.
    """

    def __init__(self, coils: int = 0, controls: int = 0, results: int = 100, length: int = 50):
        self.coils_at, self.controls_at, self.results_at = coils, controls, results
        self.coils = [False] * COILS
        self.controls = [0] * CONTROLS
        self.block = [0] * length
        self.changed = asyncio.Event()
        self.writes = 0
        self.server: ModbusTcpServer | None = None
        self.port = 0

    def device(self) -> SimDevice:
        holding = [SimData(self.controls_at, count=CONTROLS, datatype=DataType.REGISTERS)]
        holding.append(SimData(self.results_at, count=len(self.block), datatype=DataType.REGISTERS))
        holding.sort(key=lambda data: data.address)
        coils = [SimData(self.coils_at, values=[False] * COILS, datatype=DataType.BITS)]
        # pymodbus wants every block non-empty; this PLC has no inputs of its own
        discrete = [SimData(0, values=[False], datatype=DataType.BITS)]
        inputs = [SimData(0, datatype=DataType.INVALID)]
        return SimDevice(id=0, simdata=(coils, discrete, holding, inputs), action=self._action)

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code == 1:
            word = address // 16
            bits = {self.coils_at + i: level for i, level in enumerate(self.coils)}
            for index in range(count):
                registers[word - start_address + index] = sum(
                    int(bits.get((word + index) * 16 + bit, False)) << bit for bit in range(16)
                )
            return None
        offset = address - start_address
        if values is None:
            for index in range(count):
                registers[offset + index] = self._holding(address + index)
            return None
        if function_code in (5, 15):
            return ExcCodes.ILLEGAL_ADDRESS  # the gateway never writes the PLC's coils
        for index, value in enumerate(values):
            where = address + index - self.results_at
            if not 0 <= where < len(self.block):
                return ExcCodes.ILLEGAL_ADDRESS
            self.block[where] = int(value)
        self.writes += 1
        self.changed.set()
        return None

    def _holding(self, address: int) -> int:
        if 0 <= address - self.controls_at < CONTROLS:
            return self.controls[address - self.controls_at]
        return self.block[address - self.results_at]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self.server = ModbusTcpServer(self.device(), address=(host, port))
        await self.server.serve_forever(background=True)
        sockets = getattr(self.server.transport, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()  # type: ignore[no-untyped-call]
            self.server = None

    # the program's side (PlcIo)
    async def set_coils(self, coil: Coil, values: list[bool]) -> None:
        self.coils[coil : coil + len(values)] = values

    async def set_controls(self, control: Control, values: list[int]) -> None:
        self.controls[control : control + len(values)] = values

    async def read_block(self) -> list[int]:
        return list(self.block)

    async def settle(self) -> None:
        self.changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.05):
                await self.changed.wait()


def bit(block: list[int], status: Status) -> bool:
    return bool(block[Register.STATUS] >> status & 1)


@dataclass
class PlcStats:
    cycles: int = 0
    passed: int = 0
    failed: int = 0
    done: int = 0
    errors: Counter[int] = field(default_factory=Counter)
    missed: int = 0
    mismatched: int = 0
    timeouts: int = 0
    cycle_ms: list[float] = field(default_factory=list)
    results: list[tuple[int, int, int]] = field(default_factory=list)
    """(ACQ_ID, RESULT_ACQ_ID, RESULT_ID) of every cycle that got a result."""

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.cycle_ms)

        def pct(p: float) -> float | None:
            return (
                round(ordered[min(int(p * len(ordered)), len(ordered) - 1)], 3) if ordered else None
            )

        return {
            "cycles": self.cycles,
            "ok": self.passed,
            "ng": self.failed,
            "no_verdict": self.done,
            "errors": dict(self.errors),
            "missed": self.missed,
            "mismatched": self.mismatched,
            "timeouts": self.timeouts,
            "cycle_ms_p50": pct(0.5),
            "cycle_ms_p99": pct(0.99),
            "cycle_ms_mean": round(statistics.fmean(ordered), 3) if ordered else None,
        }


class PlcProgram:
    """The PLC side of the handshake, the same in both modes."""

    def __init__(
        self, io: PlcIo, *, trigger: str = "coil", step_timeout_s: float = 5.0, ack: bool = True
    ) -> None:
        self.io, self.trigger, self.step_timeout_s, self.ack = io, trigger, step_timeout_s, ack
        self.stats = PlcStats()
        self.last_block: list[int] = []
        self.last_part_id = 0
        self._seq = 0

    async def connect(self) -> None:
        """Write every control output once, as a PLC does at startup: TriggerEnable on."""
        await self.io.set_coils(Coil.TRIGGER_ENABLE, [True, False, False, False])

    async def wait_for(self, done: Callable[[list[int]], bool], what: str) -> list[int]:
        deadline = time.monotonic() + self.step_timeout_s
        while True:
            block = await self.io.read_block()
            if done(block):
                return block
            if time.monotonic() > deadline:
                raise HandshakeTimeout(f"no {what} within {self.step_timeout_s} s")
            await self.io.settle()

    async def cycle(self, part_id: int) -> None:
        """One part: trigger, wait, read, check, acknowledge."""
        started = time.perf_counter()
        self.stats.cycles += 1
        self.last_part_id = part_id
        try:
            await self._cycle(part_id)
        except HandshakeTimeout:
            self.stats.timeouts += 1
            return
        self.stats.cycle_ms.append((time.perf_counter() - started) * 1000.0)

    async def _cycle(self, part_id: int) -> None:
        before = await self.wait_for(lambda b: bit(b, Status.READY), "Ready")
        missed_before = before[Register.MISSED_TRIGGERS]
        result_id_before = before[Register.RESULT_ID]
        if self.trigger == "counter":
            self._seq = self._seq % 0xFFFF + 1
            seq = self._seq
            await self.io.set_controls(Control.TRIG_SEQ, [seq, 0, *u32_registers(part_id)])
            acked = await self.wait_for(
                lambda b: (
                    b[Register.TRIG_ACK_SEQ] == seq or b[Register.MISSED_TRIGGERS] != missed_before
                ),
                "TRIG_ACK_SEQ",
            )
        else:
            await self.io.set_controls(Control.PART_ID, u32_registers(part_id))
            await self.io.set_coils(Coil.TRIGGER, [True])
            acked = await self.wait_for(
                lambda b: (
                    bit(b, Status.TRIGGER_ACK) or b[Register.MISSED_TRIGGERS] != missed_before
                ),
                "TriggerAck",
            )
            await self.io.set_coils(Coil.TRIGGER, [False])
        if acked[Register.MISSED_TRIGGERS] != missed_before:
            self.stats.missed += 1
            await self.io.set_coils(Coil.CLEAR_ERROR, [True])
            await self.io.set_coils(Coil.CLEAR_ERROR, [False])
            return
        acq_id = acked[Register.ACQ_ID]
        block = await self.wait_for(
            lambda b: bit(b, Status.RESULT_VALID) and b[Register.RESULT_ID] != result_id_before,
            "ResultValid",
        )
        self._count(block, acq_id, part_id)
        self.last_block = block
        if self.ack:
            await self.io.set_coils(Coil.RESULT_ACK, [True])
            await self.wait_for(lambda b: not bit(b, Status.RESULT_VALID), "ResultValid low")
            await self.io.set_coils(Coil.RESULT_ACK, [False])

    def _count(self, block: list[int], acq_id: int, part_id: int) -> None:
        stats = self.stats
        stats.results.append((acq_id, block[Register.RESULT_ACQ_ID], block[Register.RESULT_ID]))
        echoed = u32_value(block[Register.PART_ID : Register.PART_ID + 2])
        if block[Register.RESULT_ACQ_ID] != acq_id or echoed != part_id:
            stats.mismatched += 1
        code = int16_value(block[Register.RESULT_CODE])
        if code == RESULT_PASS:
            stats.passed += 1
        elif code == RESULT_FAIL:
            stats.failed += 1
        elif code < 0:
            stats.errors[block[Register.ERROR_CODE]] += 1
        else:
            stats.done += 1

    async def run(
        self,
        cycles: int | None = None,
        *,
        rate: float = 0.0,
        duration_s: float | None = None,
        on_cycle: Callable[[PlcProgram], None] | None = None,
        part_sensor: Callable[[], int | None] | None = None,
    ) -> PlcStats:
        """`cycles` parts or `duration_s` seconds (at least one bound), `rate` parts per second
        (0: as fast as the handshake allows). With `part_sensor` (the line's photo-eye: the
        number of the part in position, or None) each part is triggered once when it arrives,
        with its number as PART_ID, and `rate` is ignored."""
        if cycles is None and duration_s is None:
            raise ValueError("give cycles or duration_s: the loop must be bounded")
        period = 1.0 / rate if rate > 0 and part_sensor is None else 0.0
        next_part = time.monotonic()
        deadline = None if duration_s is None else next_part + duration_s
        part, count = 0, 0
        while (cycles is None or count < cycles) and (
            deadline is None or time.monotonic() < deadline
        ):
            if part_sensor is None:
                part += 1
            else:
                arrived = await _next_part(part_sensor, part, deadline)
                if arrived is None:
                    break
                part = arrived
            count += 1
            await self.cycle(part)
            if on_cycle is not None:
                on_cycle(self)
            next_part += period
            await asyncio.sleep(max(next_part - time.monotonic(), 0.0))
        return self.stats

    def output_registers(self) -> list[int]:
        """The result block's output registers (after the fixed header) of the last cycle."""
        return self.last_block[MODBUS_RESULT_HEADER:]


async def _next_part(
    sensor: Callable[[], int | None], last: int, deadline: float | None
) -> int | None:
    """Wait for a part other than `last` in position (None when the deadline passes first)."""
    while deadline is None or time.monotonic() < deadline:
        arrived = sensor()
        if arrived is not None and arrived != last:
            return arrived
        await asyncio.sleep(0.01)
    return None


async def plc_loop(
    host: str,
    port: int,
    *,
    rate: float,
    duration_s: float,
    on_cycle: Callable[[PlcProgram], None] | None = None,
    base: int = 0,
    trigger: str = "coil",
    part_sensor: Callable[[], int | None] | None = None,
    output_registers: int = 1,
) -> PlcStats:
    """A PLC on the gateway's Modbus server for `duration_s`: the demo's conveyor."""
    client = AsyncModbusTcpClient(host, port=port, timeout=2, retries=0)
    if not await client.connect():
        raise ConnectionError(f"cannot connect to the gateway's Modbus server at {host}:{port}")
    try:
        io = GatewayServerIo(client, base, MODBUS_RESULT_HEADER + output_registers, 1, False)
        program = PlcProgram(io, trigger=trigger)
        await program.connect()
        return await program.run(
            rate=rate, duration_s=duration_s, on_cycle=on_cycle, part_sensor=part_sensor
        )
    finally:
        client.close()


async def _main(args: argparse.Namespace) -> int:
    length = MODBUS_RESULT_HEADER + args.output_registers
    if args.mode == "server":
        client = AsyncModbusTcpClient(args.host, port=args.port, timeout=2, retries=0)
        if not await client.connect():
            print(f"cannot connect to the gateway at {args.host}:{args.port}")
            return 2
        io: PlcIo = GatewayServerIo(client, args.base, length, args.unit, args.fc3)
    else:
        memory = PlcMemory(args.control_coils, args.control_registers, args.result_registers)
        port = await memory.start(args.host, args.port)
        print(f"PLC listening on {args.host}:{port}; waiting for the gateway to poll")
        io = memory
    program = PlcProgram(io, trigger=args.trigger, ack=not args.no_ack)
    try:
        await program.connect()
        stats = await program.run(args.cycles, rate=args.rate)
    finally:
        if args.mode == "server":
            client.close()
        else:
            await memory.stop()
    for key, value in stats.summary().items():
        print(f"{key:>14}: {value}")
    return 0 if stats.timeouts == 0 and stats.mismatched == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.plc",
        description="Run a conveyor cycle against the gateway over Modbus TCP and count OK/NG, "
        "missed triggers and cycle times. Exit 1 if a result was lost or mismatched.",
    )
    parser.add_argument(
        "--mode",
        choices=["server", "client"],
        default="server",
        help="server: the gateway is the Modbus server (default); "
        "client: this PLC is the server and the gateway polls it",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="gateway address (server mode) or bind address (client mode)",
    )
    parser.add_argument("--port", type=int, default=5020, help="Modbus port (default 5020)")
    parser.add_argument("--unit", type=int, default=1, help="unit id (server mode)")
    parser.add_argument("--base", type=int, default=0, help="the stream's base address")
    parser.add_argument(
        "--fc3",
        action="store_true",
        help="read the result mirror with FC3 instead of input registers (FC4)",
    )
    parser.add_argument(
        "--output-registers",
        type=int,
        default=0,
        help="registers of mapped workflow outputs to read after the header",
    )
    parser.add_argument(
        "--trigger",
        choices=["coil", "counter"],
        default="coil",
        help="raise the Trigger coil (default) or write a new TRIG_SEQ",
    )
    parser.add_argument("--no-ack", action="store_true", help="skip ResultAck")
    parser.add_argument("--cycles", type=int, default=100, help="parts to run (default 100)")
    parser.add_argument(
        "--rate",
        type=float,
        default=2.0,
        help="parts per second; 0 = as fast as the handshake allows",
    )
    parser.add_argument("--control-coils", type=int, default=0, help="client mode: coil address")
    parser.add_argument(
        "--control-registers",
        type=int,
        default=0,
        help="client mode: TRIG_SEQ/recipe/part id holding registers",
    )
    parser.add_argument(
        "--result-registers",
        type=int,
        default=100,
        help="client mode: where the gateway writes the result block",
    )
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
