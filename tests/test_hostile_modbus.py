"""Raw Modbus TCP frames as a buggy PLC or a scanner sends them: every refused request gets the
exception the spec prescribes, under its own function code, and the gateway keeps serving."""

from __future__ import annotations

import asyncio
import logging
import struct

import pytest

from tests.conftest import first_frame, running_gateway
from tests.test_modbus import modbus_config, plc, server_port


async def exchange(port: int, pdu: bytes, transaction: int = 7) -> bytes:
    """One request over a fresh connection; the answer's PDU (without the MBAP header)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(struct.pack(">HHHB", transaction, 0, len(pdu) + 1, 1) + pdu)
        await writer.drain()
        async with asyncio.timeout(5):
            header = await reader.readexactly(7)
            tid, _, length, _ = struct.unpack(">HHHB", header)
            body = await reader.readexactly(length - 1)
        assert tid == transaction
        return body
    finally:
        writer.close()


CASES: list[tuple[str, bytes, bytes]] = [
    ("read coils, count 0", bytes([1]) + struct.pack(">HH", 0, 0), bytes([0x81, 3])),
    ("read coils, 2001 bits", bytes([1]) + struct.pack(">HH", 0, 2001), bytes([0x81, 3])),
    ("read discrete, count 0", bytes([2]) + struct.pack(">HH", 0, 0), bytes([0x82, 3])),
    ("read holding, count 0", bytes([3]) + struct.pack(">HH", 0, 0), bytes([0x83, 3])),
    ("read holding, 126", bytes([3]) + struct.pack(">HH", 0, 126), bytes([0x83, 3])),
    ("read input, 126", bytes([4]) + struct.pack(">HH", 0, 126), bytes([0x84, 3])),
    ("write coil 0x1234", bytes([5]) + struct.pack(">HH", 1, 0x1234), bytes([0x85, 3])),
    ("write coils, bad byte count", bytes([15]) + struct.pack(">HHB", 0, 4, 3) + b"\x0f\0\0",
     bytes([0x8F, 3])),
    ("write registers, 124", bytes([16]) + struct.pack(">HHB", 0, 124, 248) + b"\0" * 248,
     bytes([0x90, 3])),
    ("truncated read", bytes([3, 0]), bytes([0x83, 3])),
    *[(f"function {code}", bytes([code]) + b"\0\0", bytes([0x80 | code, 1]))
      for code in (7, 8, 11, 12, 17, 20, 24, 43, 65)],
]  # fmt: skip


@pytest.mark.parametrize(("what", "request_pdu", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_refused_requests_get_the_exception_the_spec_gives(
    what: str, request_pdu: bytes, expected: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_gateway(modbus_config()) as (gateway, _, _published):
        await first_frame(gateway)
        port = server_port(gateway)
        with caplog.at_level(logging.WARNING):
            assert await exchange(port, request_pdu) == expected, what
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        # and the gateway still serves a good read
        good = await exchange(port, bytes([4]) + struct.pack(">HH", 0, 14))
        assert good[:2] == bytes([4, 28])
        assert gateway.modbus is not None
        assert sum(gateway.modbus.status()["requests_refused"].values()) == 1


async def test_a_flood_of_bad_frames_is_counted_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_gateway(modbus_config()) as (gateway, _, _published):
        await first_frame(gateway)
        port = server_port(gateway)
        with caplog.at_level(logging.INFO):
            for index in range(200):
                await exchange(port, bytes([8, 0, 0, 0x12, 0x34]), transaction=index)
        assert len(caplog.records) < 10
        assert gateway.modbus is not None
        assert gateway.modbus.status()["requests_refused"] == {1: 200}
        exposition = gateway.metrics.exposition().decode()
        assert 'gateway_modbus_requests_refused_total{exception="1"} 200.0' in exposition
        async with plc(port) as client:
            reply = await client.read_input_registers(0, count=14, device_id=1)
            assert not reply.isError()
