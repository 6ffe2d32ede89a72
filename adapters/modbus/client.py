"""Client mode: the PLC is the Modbus TCP server; the gateway polls it and writes results into it.

Every `poll_interval_ms` the gateway reads each stream's control coils (TriggerEnable, Trigger,
ResultAck, ClearError) and control registers (TRIG_SEQ, recipe, part id) from the PLC, feeds them
to the stream's `Handshake` exactly as server mode feeds the PLC's writes, and writes the result
block back into the PLC's holding registers: the result values first, then the header (STATUS,
TRIG_ACK_SEQ, ACQ_ID, RESULT_ID) in a second write, so the PLC never sees a new RESULT_ID with
old values. The first poll after every (re)connect is a baseline: no trigger fires from it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from adapters.modbus.handshake import Handshake, build_handshakes
from gateway.config import ModbusClientConfig, ModbusClientStreamConfig
from gateway.config.modbus_map import COILS, CONTROLS, HEADER
from gateway.core import Core
from gateway.supervise import Backoff, cancel_and_wait, reconnect_forever

log = structlog.get_logger(__name__)


class PlcError(Exception):
    """The PLC answered with a Modbus exception or not at all."""


class ModbusClientAdapter:
    name = "modbus"

    def __init__(self, config: ModbusClientConfig, core: Core) -> None:
        self._config = config
        self._wake = asyncio.Event()
        built = build_handshakes(config, core, on_change=self.wake)
        self.handshakes = {stream_id: handshake for stream_id, (_, handshake) in built.items()}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connected = False
        self.counters = {"connects": 0, "polls": 0, "writes": 0, "errors": 0}
        self.last_error: str | None = None

    def wake(self) -> None:
        """A handshake changed: write it now instead of at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="modbus-client")

    async def stop(self) -> None:
        # The flag as well as the cancel: on Python 3.11 asyncio.wait_for (inside pymodbus's
        # request) swallows a cancellation that races with its response, and the loop would
        # poll on. The loop checks the flag between requests.
        self._stopping = True
        self._wake.set()
        await cancel_and_wait(self._task)
        self._task = None

    def status(self) -> dict[str, Any]:
        return {
            "mode": "client",
            "plc": f"{self._config.host}:{self._config.port}",
            "connected": self.connected,
            "last_error": self.last_error,
            **self.counters,
            "streams": {sid: dict(h.counters) for sid, h in self.handshakes.items()},
        }

    # --- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        await reconnect_forever(
            self._session,
            Backoff(self._config.reconnect),
            stopping=lambda: self._stopping,
            retry_on=(TimeoutError, PlcError, ModbusException, OSError),
            on_failure=self._failed,
        )

    async def _session(self, backoff: Backoff) -> None:
        """One connection to the PLC, served until it fails."""
        client = AsyncModbusTcpClient(
            self._config.host,
            port=self._config.port,
            timeout=self._config.timeout_s,
            retries=0,
            reconnect_delay=0,
        )
        try:
            if not await client.connect():
                raise PlcError(f"cannot connect to {self._config.host}:{self._config.port}")
            self.connected = True
            self.counters["connects"] += 1
            self.last_error = None
            log.info("modbus connected to PLC", host=self._config.host, port=self._config.port)
            backoff.reset()
            await self._serve(client)
        finally:
            self.connected = False
            client.close()

    def _failed(self, exc: BaseException, retry_s: float) -> None:
        self.counters["errors"] += 1
        if str(exc) != self.last_error:
            log.warning("modbus PLC unreachable; retrying", error=str(exc), retry_s=retry_s)
        self.last_error = str(exc)

    async def _serve(self, client: AsyncModbusTcpClient) -> None:
        written: dict[str, tuple[int, list[int]]] = {}  # per stream: result version, header
        for handshake in self.handshakes.values():
            handshake.reset_inputs()
        loop = asyncio.get_running_loop()
        interval = self._config.poll_interval_ms / 1000.0
        next_poll = loop.time()
        while not self._stopping:
            if loop.time() >= next_poll:
                next_poll = max(next_poll + interval, loop.time())
                for stream_id, handshake in self.handshakes.items():
                    await self._poll(client, self._stream(stream_id), handshake)
                self.counters["polls"] += 1
            for stream_id, handshake in self.handshakes.items():
                await self._push(client, stream_id, handshake, written)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(next_poll - loop.time(), 0.0)):
                    await self._wake.wait()

    def _stream(self, stream_id: str) -> ModbusClientStreamConfig:
        return self._config.streams[stream_id]

    async def _poll(
        self, client: AsyncModbusTcpClient, layout: ModbusClientStreamConfig, handshake: Handshake
    ) -> None:
        unit = self._config.unit_id
        # Coils are read first and applied last: a part id the PLC wrote before raising Trigger
        # is then always in the register read that follows, and latched with that trigger.
        coils: list[bool] | None = None
        if layout.control_coils is not None:
            reply = await client.read_coils(layout.control_coils, count=COILS, device_id=unit)
            _check(reply, f"reading coils {layout.control_coils}..")
            coils = list(reply.bits[:COILS])
        if layout.control_registers is not None:
            reply = await client.read_holding_registers(
                layout.control_registers, count=CONTROLS, device_id=unit
            )
            _check(reply, f"reading holding registers {layout.control_registers}..")
            handshake.write_controls(0, reply.registers[:CONTROLS])
        if coils is not None:
            handshake.write_coils(0, coils)

    async def _push(
        self,
        client: AsyncModbusTcpClient,
        stream_id: str,
        handshake: Handshake,
        written: dict[str, tuple[int, list[int]]],
    ) -> None:
        """Write what changed: the result values, then the header that announces them.

        Both are copied before the first write: a result presented while a write is on the wire
        waits for the next pass instead of mixing into this one.
        """
        address, unit = self._stream(stream_id).result_registers, self._config.unit_id
        version, header = handshake.result_version, handshake.registers(0, HEADER)
        body = handshake.registers(HEADER, handshake.length - HEADER)
        written_version, written_header = written.get(stream_id, (-1, []))
        if version != written_version:
            reply = await client.write_registers(address + HEADER, body, device_id=unit)
            _check(reply, f"writing the result to holding registers {address + HEADER}..")
            self.counters["writes"] += 1
        if header != written_header:
            reply = await client.write_registers(address, header, device_id=unit)
            _check(reply, f"writing the status to holding registers {address}..")
            self.counters["writes"] += 1
        written[stream_id] = (version, header)


def _check(reply: Any, what: str) -> None:
    if reply.isError():
        raise PlcError(f"PLC refused {what}: {reply}")
