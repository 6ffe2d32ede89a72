"""Modbus TCP end to end: real pymodbus peers on loopback, the PLC simulator, both modes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from adapters.modbus.codec import decode, encode, int16_value
from adapters.modbus.server import ModbusServerAdapter
from gateway.app import Gateway
from gateway.config import ConfigError, GatewayConfig, SourceConfig, parse_config
from gateway.config.modbus_map import Coil, Register, Status
from gateway.frame_source import FrameSource
from gateway.model import InspectionResult, Origin
from simulators.net import free_port
from simulators.plc import GatewayServerIo, PlcMemory, PlcProgram, bit
from tests.conftest import first_frame, make_config, running_gateway, wait_until
from tests.test_http_errors import StalledCamera

VECTOR = 123456.0
WORD_ORDERS = {
    "ABCD": [0x47F1, 0x2000],
    "CDAB": [0x2000, 0x47F1],
    "BADC": [0xF147, 0x0020],
    "DCBA": [0x0020, 0xF147],
}
CONSTANT_WORKFLOW: dict[str, Any] = {
    "inputs": [
        {"type": "WorkflowImage", "name": "image"},
        {"type": "WorkflowParameter", "name": "recipe", "default_value": 0},
    ],
    "steps": [
        {
            "type": "expression",
            "name": "value",
            "expression": f"{VECTOR} + recipe",
            "variables": {"recipe": "$inputs.recipe"},
        },
        {
            "type": "expression",
            "name": "rule",
            "expression": "recipe != 13",
            "variables": {"recipe": "$inputs.recipe"},
        },
    ],
    "outputs": [
        {"type": "JsonField", "name": "value", "selector": "$steps.value.result"},
        {"type": "JsonField", "name": "pass", "selector": "$steps.rule.result"},
    ],
}
CAMERA = {"type": "synthetic", "width": 160, "height": 120, "fps": 30}


def modbus_config(
    *, streams: dict[str, Any] | None = None, modbus: dict[str, Any] | None = None, **stream: Any
) -> GatewayConfig:
    return make_config(
        streams=streams or {"cam": {"source": CAMERA, "workflow": "constant", **stream}},
        workflows={"constant": {"specification": CONSTANT_WORKFLOW}},
        modbus={"type": "server", "port": 0, **(modbus or {})},
    )


def client_config(port: int, stream: dict[str, Any], **modbus: Any) -> GatewayConfig:
    """Client mode against a simulated PLC on `port`, polling every 5 ms."""
    return make_config(
        streams={"cam": {"source": CAMERA, "workflow": "constant"}},
        workflows={"constant": {"specification": CONSTANT_WORKFLOW}},
        modbus={
            "type": "client",
            "host": "127.0.0.1",
            "port": port,
            "poll_interval_ms": 5,
            "streams": {"cam": stream},
            **modbus,
        },
    )


def server_port(gateway: Gateway) -> int:
    assert isinstance(gateway.modbus, ModbusServerAdapter) and gateway.modbus.port
    return gateway.modbus.port


@asynccontextmanager
async def plc(port: int) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    assert await client.connect()
    try:
        yield client
    finally:
        client.close()


async def block(client: AsyncModbusTcpClient, base: int = 0, count: int = 14) -> list[int]:
    reply = await client.read_input_registers(base, count=count, device_id=1)
    assert not reply.isError(), reply
    return list(reply.registers)


async def wait_block(client: AsyncModbusTcpClient, predicate: Any, base: int = 0) -> list[int]:
    for _ in range(500):
        registers = await block(client, base)
        if predicate(registers):
            return registers
        await asyncio.sleep(0.01)
    raise AssertionError(f"block never matched: {registers}")


def modbus_results(published: list[InspectionResult]) -> list[InspectionResult]:
    return [result for result in published if result.origin is Origin.MODBUS]


# --- the handshake, end to end with the simulator -------------------------------------------


@pytest.mark.parametrize("trigger", ["coil", "counter"])
@pytest.mark.parametrize("fc3", [False, True], ids=["fc4", "fc3-mirror"])
async def test_server_mode_handshake_with_the_plc_simulator(trigger: str, fc3: bool) -> None:
    config = modbus_config(
        modbus={"streams": {"cam": {"outputs": [{"output": "value", "type": "float32"}]}}}
    )
    async with running_gateway(config) as (gateway, _, published):
        await first_frame(gateway)
        async with plc(server_port(gateway)) as client:
            program = PlcProgram(GatewayServerIo(client, 0, 16, 1, fc3), trigger=trigger)
            await program.connect()
            stats = await program.run(20)
            last = await block(client, count=16)
    assert stats.summary()["ok"] == 20 and stats.cycles == 20
    assert (stats.missed, stats.mismatched, stats.timeouts) == (0, 0, 0)
    assert [acq for acq, _, _ in stats.results] == list(range(1, 21))
    assert all(acq == result_acq for acq, result_acq, _ in stats.results)
    results = modbus_results(published)
    assert [r.part_id for r in results] == list(range(1, 21))
    assert decode(last[14:16], "float32") == VECTOR
    assert int16_value(last[Register.RESULT_CODE]) == 1 and last[Register.ERROR_CODE] == 0


@pytest.mark.parametrize("trigger", ["coil", "counter"])
async def test_client_mode_handshake_with_the_plc_simulator(trigger: str) -> None:
    memory = PlcMemory(coils=8, controls=20, results=300)
    port = await memory.start()
    config = client_config(
        port,
        {
            "control_coils": 8,
            "control_registers": 20,
            "result_registers": 300,
            "outputs": [{"output": "value", "type": "float32", "word_order": "CDAB"}],
        },
    )
    try:
        async with running_gateway(config) as (gateway, _, published):
            await first_frame(gateway)
            program = PlcProgram(memory, trigger=trigger)
            await program.connect()
            stats = await program.run(30)
    finally:
        await memory.stop()
    assert stats.cycles == 30 and stats.summary()["ok"] == 30
    assert (stats.missed, stats.mismatched, stats.timeouts) == (0, 0, 0)
    assert [r.part_id for r in modbus_results(published)] == list(range(1, 31))
    assert decode(memory.block[14:16], "float32", word_order="CDAB") == VECTOR


async def test_thousands_of_fastest_cycles_each_get_exactly_one_result() -> None:
    async with running_gateway(modbus_config()) as (gateway, _, published):
        await first_frame(gateway)
        async with plc(server_port(gateway)) as client:
            program = PlcProgram(GatewayServerIo(client, 0, 14, 1, False), ack=False)
            await program.connect()
            stats = await program.run(2000, rate=0)
    assert stats.cycles == 2000 and stats.summary()["ok"] == 2000
    assert (stats.missed, stats.mismatched, stats.timeouts) == (0, 0, 0)
    results = modbus_results(published)
    assert len(results) == 2000 and len({r.trigger_id for r in results}) == 2000
    assert [r.part_id for r in results] == list(range(1, 2001))
    assert [acq for acq, _, _ in stats.results] == list(range(1, 2001))
    assert all(acq == result_acq == result_id for acq, result_acq, result_id in stats.results)


# --- handshake rules -------------------------------------------------------------------------


async def test_trigger_while_busy_is_missed_not_queued_and_latched_until_clear_error() -> None:
    camera = StalledCamera()

    def factory(stream_id: str, config: SourceConfig) -> FrameSource:
        return camera

    config = modbus_config(frame_policy={"type": "next", "timeout_ms": 3000})
    async with running_gateway(config, factory) as (gateway, _, published):
        await wait_until(lambda: gateway.streams["cam"].capture.connected)
        async with plc(server_port(gateway)) as client:
            await client.write_coils(0, [True, False, False, False], device_id=1)
            await client.write_coil(Coil.TRIGGER, True, device_id=1)
            busy = await wait_block(client, lambda b: bit(b, Status.TRIGGER_ACK))
            assert bit(busy, Status.BUSY) and not bit(busy, Status.READY)
            await client.write_coil(Coil.TRIGGER, False, device_id=1)
            await client.write_coil(Coil.TRIGGER, True, device_id=1)  # while busy
            await client.write_register(0, 7, device_id=1)  # TRIG_SEQ while busy, too
            missed = await block(client)
            assert missed[Register.MISSED_TRIGGERS] == 2 and bit(missed, Status.MISSED_TRIGGER)
            assert missed[Register.ACQ_ID] == 1 and missed[Register.TRIG_ACK_SEQ] == 0
            camera.release()
            done = await wait_block(client, lambda b: bit(b, Status.RESULT_VALID))
            assert done[Register.RESULT_ACQ_ID] == 1 and bit(done, Status.MISSED_TRIGGER)
            await client.write_coil(Coil.CLEAR_ERROR, True, device_id=1)
            cleared = await block(client)
            assert (
                not bit(cleared, Status.MISSED_TRIGGER) and cleared[Register.MISSED_TRIGGERS] == 0
            )
            await asyncio.sleep(0.2)
    assert len(modbus_results(published)) == 1  # the missed triggers never ran


async def test_not_enabled_and_paused_triggers_are_missed() -> None:
    async with running_gateway(modbus_config()) as (gateway, http, published):
        await first_frame(gateway)
        async with plc(server_port(gateway)) as client:
            await client.write_coils(0, [False, False, False, False], device_id=1)
            await client.write_coil(Coil.TRIGGER, True, device_id=1)
            registers = await block(client)
            assert registers[Register.MISSED_TRIGGERS] == 1 and not bit(registers, Status.READY)
            await client.write_coils(0, [True, False], device_id=1)
            assert bit(await block(client), Status.READY)
            assert (await http.post("/streams/cam/pause")).status_code == 200
            assert not bit(await block(client), Status.READY)
            await client.write_coil(Coil.TRIGGER, True, device_id=1)
            assert (await block(client))[Register.MISSED_TRIGGERS] == 2
            assert (await http.post("/streams/cam/resume")).status_code == 200
            await client.write_coil(Coil.TRIGGER, False, device_id=1)
            await client.write_coil(Coil.TRIGGER, True, device_id=1)
            done = await wait_block(client, lambda b: bit(b, Status.RESULT_VALID))
            assert done[Register.ACQ_ID] == 1 and int16_value(done[Register.RESULT_CODE]) == 1
    assert len(modbus_results(published)) == 1


async def test_error_results_carry_the_shared_code_and_recipe_reaches_the_workflow() -> None:
    async with running_gateway(
        modbus_config(modbus={"streams": {"cam": {"recipe_parameter": "recipe"}}})
    ) as (gateway, _, published):
        await first_frame(gateway)
        async with plc(server_port(gateway)) as client:
            await client.write_coils(0, [True, False, False, False], device_id=1)
            await client.write_registers(0, [1, 13, 0, 42], device_id=1)  # TRIG_SEQ, recipe 13
            fail = await wait_block(client, lambda b: bit(b, Status.RESULT_VALID))
            assert int16_value(fail[Register.RESULT_CODE]) == 2 and bit(fail, Status.FAIL)
            assert fail[Register.TRIG_ACK_SEQ] == 1 and fail[Register.PART_ID + 1] == 42
            gateway.streams["cam"].capture.stop()  # the camera goes away: CameraOK drops
            gone = await wait_block(client, lambda b: not bit(b, Status.CAMERA_OK))
            assert not bit(gone, Status.READY)
    assert modbus_results(published)[0].passed is False


# --- edges across restarts and reconnects -------------------------------------------------


async def test_trigger_held_high_across_a_gateway_restart_does_not_fire() -> None:
    config = modbus_config(modbus={"port": free_port()})
    port = config.modbus.port if config.modbus else 0
    async with running_gateway(config) as (gateway, _, _):
        await first_frame(gateway)
        async with plc(port) as client:
            await client.write_coils(0, [True, True], device_id=1)
            assert (await block(client))[Register.ACQ_ID] == 0  # first level seen: a baseline
            await client.write_coils(0, [True, False], device_id=1)
            await client.write_coils(0, [True, True], device_id=1)
            assert (await block(client))[Register.ACQ_ID] == 1
    async with running_gateway(config) as (gateway, _, published):  # restarted, PLC holds high
        await first_frame(gateway)
        async with plc(port) as client:
            for _ in range(3):  # the PLC keeps writing its outputs, Trigger still high
                await client.write_coils(0, [True, True, False, False], device_id=1)
            assert (await block(client))[Register.ACQ_ID] == 0
            await client.write_coils(0, [True, False], device_id=1)
            await client.write_coils(0, [True, True], device_id=1)
            done = await wait_block(client, lambda b: bit(b, Status.RESULT_VALID))
            assert done[Register.ACQ_ID] == 1
        async with plc(port) as client:  # the PLC reconnects, Trigger still high
            await client.write_coils(0, [True, True], device_id=1)
            assert (await block(client))[Register.ACQ_ID] == 1
    assert len(modbus_results(published)) == 1


async def test_client_mode_reconnects_and_a_trigger_held_high_does_not_fire() -> None:
    memory = PlcMemory()
    port = await memory.start()
    config = client_config(
        port,
        {"control_coils": 0, "result_registers": 100},
        reconnect={"initial_s": 0.05, "max_s": 0.2},
    )
    try:
        async with running_gateway(config) as (gateway, http, published):
            adapter = gateway.modbus
            assert adapter is not None and not isinstance(adapter, ModbusServerAdapter)
            await first_frame(gateway)
            program = PlcProgram(memory)
            await program.connect()
            await program.run(1)
            memory.coils[Coil.TRIGGER] = True  # raised while the gateway watches: one trigger
            await wait_until(lambda: memory.block[Register.ACQ_ID] == 2)
            await memory.stop()  # the PLC goes away with Trigger still high
            await wait_until(lambda: not adapter.connected)
            assert (await http.get("/healthz")).status_code == 200
            await asyncio.sleep(0.3)  # a few refused reconnects
            await memory.start(port=port)
            await wait_until(lambda: adapter.counters["connects"] == 2)
            polls = adapter.counters["polls"]
            await wait_until(lambda: adapter.counters["polls"] > polls + 5)
            assert memory.block[Register.ACQ_ID] == 2  # no edge from the reconnect
            memory.coils[Coil.TRIGGER] = False
            await wait_until(lambda: adapter.counters["polls"] > polls + 10)
            memory.coils[Coil.TRIGGER] = True
            await wait_until(lambda: memory.block[Register.RESULT_ACQ_ID] == 3)
    finally:
        await memory.stop()
    assert len(modbus_results(published)) == 3
    assert adapter.counters["errors"] >= 1


# --- buffering ------------------------------------------------------------------------------


async def test_buffered_results_wait_for_result_ack_and_overrun_is_flagged() -> None:
    config = modbus_config(modbus={"streams": {"cam": {"buffer": 2}}})
    async with running_gateway(config) as (gateway, _, published):
        await first_frame(gateway)
        async with plc(server_port(gateway)) as client:
            await client.write_coils(0, [True, False, False, False], device_id=1)
            await client.write_registers(0, [1, 0, 0, 101], device_id=1)
            first = await wait_block(client, lambda b: bit(b, Status.RESULT_VALID))
            await client.write_registers(0, [2, 0, 0, 102], device_id=1)
            await wait_until(lambda: len(modbus_results(published)) == 2)
            held = await block(client)
            assert held[Register.RESULT_ACQ_ID] == 1 and held[Register.PENDING] == 1
            assert not bit(held, Status.READY)  # two results held: the buffer is full
            await client.write_registers(0, [3, 0, 0, 103], device_id=1)
            over = await block(client)
            assert bit(over, Status.BUFFER_OVERRUN) and over[Register.MISSED_TRIGGERS] == 1
            assert over[Register.RESULT_ACQ_ID] == 1 and first[Register.PART_ID + 1] == 101
            await client.write_coil(Coil.RESULT_ACK, True, device_id=1)
            assert not bit(await block(client), Status.RESULT_VALID)
            await client.write_coil(Coil.RESULT_ACK, False, device_id=1)
            second = await block(client)
            assert bit(second, Status.RESULT_VALID) and second[Register.RESULT_ACQ_ID] == 2
            assert second[Register.PART_ID + 1] == 102 and second[Register.RESULT_ID] == 2
            assert bit(second, Status.READY) and second[Register.PENDING] == 0
            await client.write_coil(Coil.CLEAR_ERROR, True, device_id=1)
            assert not bit(await block(client), Status.BUFFER_OVERRUN)
    assert [r.part_id for r in modbus_results(published)] == [101, 102]


# --- data types, word orders, bad requests ---------------------------------------------------


@pytest.mark.parametrize("order", list(WORD_ORDERS))
def test_word_orders_match_the_test_vector(order: str) -> None:
    assert encode(VECTOR, "float32", word_order=order) == WORD_ORDERS[order]
    assert decode(WORD_ORDERS[order], "float32", word_order=order) == VECTOR


def test_types_scale_round_and_clamp() -> None:
    assert encode(True, "bool") == [1] and encode(0.0, "bool") == [0]
    assert encode(-2, "int16") == [0xFFFE] and encode(1e9, "int16") == [0x7FFF]
    assert encode(1.26, "uint16", scale=100) == [126] and encode(-5, "uint16") == [0]
    assert encode(-70000, "int32") == [0xFFFE, 0xEE90]
    assert encode(70000, "uint32", word_order="CDAB") == [0x1170, 0x0001]
    assert decode(encode(-70000, "int32", word_order="DCBA"), "int32", word_order="DCBA") == -70000


async def test_every_word_order_over_tcp_and_in_the_holding_mirror() -> None:
    outputs: list[dict[str, Any]] = [
        {"output": "value", "type": "float32", "word_order": order} for order in WORD_ORDERS
    ]
    outputs += [
        {"output": "pass", "type": "bool"},
        {"output": "missing.path", "type": "uint16"},
        {"output": "value", "type": "int32", "scale": 0.5, "address": 30},
    ]
    config = modbus_config(modbus={"streams": {"cam": {"outputs": outputs}}})
    async with running_gateway(config) as (gateway, _, _):
        await first_frame(gateway)
        async with plc(server_port(gateway)) as client:
            await client.write_coils(0, [True, False, False, False], device_id=1)
            await client.write_register(0, 1, device_id=1)
            await wait_block(client, lambda b: bit(b, Status.RESULT_VALID))
            registers = await block(client, count=32)
            mirror = await client.read_holding_registers(50, count=32, device_id=1)
    for index, order in enumerate(WORD_ORDERS):
        assert registers[14 + 2 * index : 16 + 2 * index] == WORD_ORDERS[order]
    assert registers[22:25] == [1, 0, 0]  # pass, the missing output as 0, unused
    assert decode(registers[30:32], "int32") == VECTOR / 2
    assert mirror.registers[1:] == registers[1:]


async def test_illegal_addresses_and_read_only_writes_get_exception_responses() -> None:
    async with running_gateway(modbus_config()) as (gateway, http, _):
        await first_frame(gateway)
        async with plc(server_port(gateway)) as client:
            refused = [
                await client.read_input_registers(0, count=15, device_id=1),  # past the block
                await client.read_input_registers(40, count=1, device_id=1),  # between blocks
                await client.read_holding_registers(4, count=1, device_id=1),
                await client.write_register(50, 1, device_id=1),  # the read-only mirror
                await client.write_register(4, 1, device_id=1),
                await client.write_registers(2, [1, 2, 3], device_id=1),  # runs past part id
                await client.write_coil(4, True, device_id=1),
                await client.read_coils(64, count=1, device_id=1),
                await client.read_discrete_inputs(900, count=1, device_id=1),
            ]
            for reply in refused:
                assert reply.isError() and reply.exception_code == 2, reply  # ILLEGAL ADDRESS
            assert not (await client.read_holding_registers(50, count=14, device_id=1)).isError()
            program = PlcProgram(GatewayServerIo(client, 0, 14, 1, False))
            await program.connect()
            assert (await program.run(3)).summary()["ok"] == 3  # still serving
        assert (await http.get("/healthz")).status_code == 200


async def test_clients_outside_the_allowlist_are_disconnected() -> None:
    config = modbus_config(modbus={"allow": ["10.0.0.0/8"]})
    async with running_gateway(config) as (gateway, http, _):
        client = AsyncModbusTcpClient(
            "127.0.0.1", port=server_port(gateway), timeout=1, retries=0, reconnect_delay=0
        )
        try:
            await client.connect()
            with pytest.raises(ModbusException):  # the connection is closed under it
                await client.read_input_registers(0, count=1, device_id=1)
        finally:
            client.close()
        assert gateway.modbus is not None and gateway.modbus.status()["refused"] == 1
        assert (await http.get("/healthz")).status_code == 200
    allowed = modbus_config(modbus={"allow": ["127.0.0.0/8"]})
    async with running_gateway(allowed) as (gateway, _, _), plc(server_port(gateway)) as client:
        assert len(await block(client)) == 14


# --- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("modbus", "message"),
    [
        (
            "modbus:\n  type: server\n  streams:\n    nope: {}\n",
            "modbus.streams.nope: no stream named 'nope'",
        ),
        (
            "modbus:\n  type: server\n  streams:\n    a: {base: 0}\n    b: {base: 50}\n",
            "modbus.streams.b.base: 50 overlaps stream 'a' at 0",
        ),
        (
            "modbus:\n  type: server\n  streams:\n    a:\n      outputs:\n"
            "        - {output: x, type: float32, address: 20}\n"
            "        - {output: y, type: int16, address: 21}\n",
            "outputs 'x' and 'y' overlap at offset 21",
        ),
        (
            "modbus:\n  type: server\n  streams:\n    a:\n      outputs:\n"
            "        - {output: x, type: float32, address: 49}\n",
            "ends past the result block",
        ),
        (
            "modbus:\n  type: client\n  host: 10.0.0.5\n  streams:\n"
            "    a: {result_registers: 100}\n",
            "give `control_coils`, `control_registers` or both",
        ),
        (
            "modbus:\n  type: server\n  word_order: ACBD\n",
            "line.yaml:8 modbus.word_order: Input should be",
        ),
        ("modbus:\n  type: plc\n", "modbus: Input tag 'plc' found using 'type'"),
    ],
)
def test_modbus_config_errors_name_the_key(modbus: str, message: str) -> None:
    text = (
        "workflows:\n  w: {specification: {steps: []}}\nstreams:\n"
        "  a: {source: {type: synthetic}, workflow: w}\n"
        "  b: {source: {type: synthetic}, workflow: w}\n" + modbus
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "line.yaml")
    assert message in str(caught.value), str(caught.value)
    assert "line.yaml:" in str(caught.value)


async def test_discrete_inputs_mirror_status_and_the_heartbeat_toggles() -> None:
    async with running_gateway(modbus_config(modbus={"heartbeat_ms": 50})) as (gateway, _, _):
        await first_frame(gateway)
        async with plc(server_port(gateway)) as client:
            await client.write_coils(0, [True, False, False, False], device_id=1)
            seen: set[bool] = set()
            for _ in range(200):  # bounded: both heartbeat levels within 200 reads
                bits = (await client.read_discrete_inputs(0, count=12, device_id=1)).bits[:12]
                status = (await block(client))[Register.STATUS]
                assert bits[: Status.HEARTBEAT] == [
                    bool(status >> b & 1) for b in range(Status.HEARTBEAT)
                ]
                assert bits[Status.READY] and bits[Status.CAMERA_OK]
                seen.add(bits[Status.HEARTBEAT])
                if seen == {False, True}:
                    break
                await asyncio.sleep(0.01)
            assert seen == {False, True}
            second_stream = await client.read_discrete_inputs(100, count=1, device_id=1)
            assert second_stream.isError()  # one stream: nothing at base 100
