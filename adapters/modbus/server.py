"""Server mode: the gateway is a Modbus TCP server, as a smart camera is; the PLC polls it.

pymodbus 3.16 `SimDevice(action=...)` holds the address space; the action runs before every
read and write. Reads are answered from the streams' `Handshake`s (so STATUS and Heartbeat are
live), writes go to them first. Each stream owns 100 addresses from its base B:

    coils      B+0..3   TriggerEnable, Trigger, ResultAck, ClearError        (PLC writes)
    discrete   B+0..11  the STATUS bits                                      (read only)
    holding    B+0..3   TRIG_SEQ, recipe, part id u32                        (PLC writes)
    holding    B+50..   the result block, mirrored for PLCs without FC4      (read only)
    input      B+0..    the result block                                     (read only)

Modbus has no authentication: bind to the plant network's interface and list the PLCs in
`allow`; other peers are disconnected as they connect.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any, Final

import structlog
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from adapters.modbus.handshake import Handshake, build_handshakes
from adapters.modbus.strict import StrictDecoder
from gateway.config import MODBUS_RESULT_SPAN, ModbusServerConfig
from gateway.config.modbus_map import COILS, CONTROLS, STATUS_BITS
from gateway.core import Core

log = structlog.get_logger(__name__)

READ_BITS: Final = MappingProxyType({1: "coils", 5: "coils", 15: "coils", 2: "discrete"})
HOLDING: Final = frozenset({3, 6, 16, 22, 23})


class AddressSpace:
    """Which handshake answers each address; the SimDevice blocks that match it."""

    def __init__(self, handshakes: dict[int, Handshake]) -> None:
        self.by_base = dict(sorted(handshakes.items()))

    def find(self, address: int, size: Callable[[Handshake], int], start: int = 0) -> Any:
        """(handshake, offset) for an address inside [base+start, base+start+size)."""
        for base, handshake in self.by_base.items():
            offset = address - base - start
            if 0 <= offset < size(handshake):
                return handshake, offset
        return None

    def device(self, unit_id: int, action: Any) -> SimDevice:
        coils, discrete, holding, inputs = [], [], [], []
        for base, handshake in self.by_base.items():
            coils.append(SimData(base, values=[False] * COILS, datatype=DataType.BITS))
            discrete.append(SimData(base, values=[False] * STATUS_BITS, datatype=DataType.BITS))
            holding.append(SimData(base, count=CONTROLS, datatype=DataType.REGISTERS))
            holding.append(
                SimData(
                    base + MODBUS_RESULT_SPAN,
                    count=handshake.length,
                    datatype=DataType.REGISTERS,
                    readonly=True,
                )
            )
            inputs.append(SimData(base, count=handshake.length, datatype=DataType.REGISTERS))
        return SimDevice(id=unit_id, simdata=(coils, discrete, holding, inputs), action=action)

    # --- the action: answer reads from the handshakes, hand writes to them -------------------

    async def action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code in READ_BITS:
            return self._bits(function_code, start_address, address, count, registers, values)
        if function_code in HOLDING:
            if values is not None:
                return self._write_controls(address, [int(v) for v in values])
            return self._read(address, count, registers, address - start_address, holding=True)
        return self._read(address, count, registers, address - start_address, holding=False)

    def _bits(
        self,
        function_code: int,
        start_address: int,
        address: int,
        register_count: int,
        registers: list[int],
        values: Sequence[int | bool] | None,
    ) -> ExcCodes | None:
        """Bit blocks arrive as 16-bit words: `register_count` words from word address // 16."""
        coils = READ_BITS[function_code] == "coils"
        width: Callable[[Handshake], int] = (lambda _: COILS) if coils else (lambda _: STATUS_BITS)
        if values is not None:
            targets = [self.find(address + i, width) for i in range(len(values))]
            if any(target is None for target in targets):
                return ExcCodes.ILLEGAL_ADDRESS
            for (handshake, offset), value in zip(targets, values, strict=True):
                handshake.write_coils(offset, [bool(value)])
            return None
        if self.find(address, width) is None:
            return ExcCodes.ILLEGAL_ADDRESS
        first_word = address // 16
        offset = first_word - start_address
        status: dict[int, list[bool]] = {}  # one STATUS evaluation per stream per request
        for word in range(register_count):
            packed = 0
            for bit in range(16):
                target = self.find((first_word + word) * 16 + bit, width)
                if target is None:
                    continue
                handshake, index = target
                if coils:
                    level = handshake.coils[index]
                else:
                    level = status.setdefault(id(handshake), handshake.status_bits())[index]
                packed |= int(level) << bit
            registers[offset + word] = packed
        return None

    def _write_controls(self, address: int, values: list[int]) -> ExcCodes | None:
        target = self.find(address, lambda _: CONTROLS)
        if target is None or target[1] + len(values) > CONTROLS:
            return ExcCodes.ILLEGAL_ADDRESS
        handshake, offset = target
        handshake.write_controls(offset, values)
        return None

    def _read(
        self, address: int, count: int, registers: list[int], offset: int, *, holding: bool
    ) -> ExcCodes | None:
        if holding:
            target = self.find(address, lambda _: CONTROLS)
            if target is not None:
                handshake, index = target
                registers[offset : offset + count] = handshake.controls[index : index + count]
                return None
            target = self.find(address, lambda h: h.length, start=MODBUS_RESULT_SPAN)
        else:
            target = self.find(address, lambda h: h.length)
        if target is None:
            return ExcCodes.ILLEGAL_ADDRESS
        handshake, index = target
        registers[offset : offset + count] = handshake.registers(index, count)
        return None


def _allowlist(config: ModbusServerConfig) -> Callable[[str], bool]:
    networks = list(config.allow)
    if not networks:
        return lambda _host: True

    def allowed(host: str) -> bool:
        try:
            peer = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(peer in network for network in networks)

    return allowed


class _GuardedHandler(ServerRequestHandler):
    """Drops connections from peers outside the allowlist before they send a request."""

    def callback_connected(self) -> None:
        super().callback_connected()
        peer = self.transport.get_extra_info("peername") if self.transport else None
        host = str(peer[0]) if peer else ""
        server: GuardedServer = self.server
        server.connections += 1
        if not server.allowed(host):
            server.refused += 1
            log.warning("modbus client refused (not in modbus.allow)", peer=host)
            self.close()


class GuardedServer(ModbusTcpServer):
    def __init__(self, device: SimDevice, address: tuple[str, int], allowed: Any) -> None:
        super().__init__(device, address=address)
        self.strict = StrictDecoder()  # the spec's exceptions, not pymodbus's `80 01`
        self.decoder = self.strict
        self.allowed: Callable[[str], bool] = allowed
        self.connections = 0
        self.refused = 0

    def callback_new_connection(self) -> ServerRequestHandler:
        return _GuardedHandler(  # type: ignore[no-untyped-call]
            self, self.trace_packet, self.trace_pdu, self.trace_connect
        )


class ModbusServerAdapter:
    name = "modbus"

    def __init__(self, config: ModbusServerConfig, core: Core) -> None:
        self._config = config
        handshakes = build_handshakes(config, core)
        self.space = AddressSpace({base: handshake for base, handshake in handshakes.values()})
        self.handshakes = list(self.space.by_base.values())
        self._server: GuardedServer | None = None
        self.port: int | None = None

    async def start(self) -> None:
        device = self.space.device(self._config.unit_id, self.space.action)
        server = GuardedServer(
            device, (self._config.host, self._config.port), _allowlist(self._config)
        )
        await server.serve_forever(background=True)
        self._server = server
        sockets = getattr(server.transport, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._config.port
        log.info(
            "modbus server listening",
            host=self._config.host,
            port=self.port,
            streams={h.stream_id: base for base, h in self.space.by_base.items()},
        )

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    def status(self) -> dict[str, Any]:
        server = self._server
        return {
            "mode": "server",
            "port": self.port,
            "connections": 0 if server is None else server.connections,
            "refused": 0 if server is None else server.refused,
            "requests_refused": {} if server is None else dict(server.strict.refused),
            "streams": {h.stream_id: dict(h.counters) for h in self.handshakes},
        }
