"""The `modbus` section and the register map's one home: block spans, header size, widths."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, IPvAnyNetwork, model_validator

from gateway.config.base import StrictModel
from gateway.config.modbus_map import (
    MODBUS_BLOCK_SPAN,
    MODBUS_RESULT_HEADER,
    MODBUS_RESULT_SPAN,
    REGISTER_WIDTH,
)
from gateway.config.streams import ReconnectConfig

WordOrder = Literal["ABCD", "CDAB", "BADC", "DCBA"]
RegisterType = Literal["bool", "int16", "uint16", "int32", "uint32", "float32"]


class RegisterOutput(StrictModel):
    """One workflow output mapped into the result block."""

    output: str = Field(
        min_length=1, description="workflow output name; a dotted path reaches into objects"
    )
    address: int | None = Field(
        None,
        ge=MODBUS_RESULT_HEADER,
        lt=MODBUS_RESULT_SPAN,
        description="offset from the stream's base; default: right after the previous one",
    )
    type: RegisterType = "float32"
    scale: float = Field(1.0, description="the register holds value x scale (rounded for ints)")
    word_order: WordOrder | None = Field(None, description="32-bit types; default: the section's")


class ModbusStreamConfig(StrictModel):
    """How one stream appears on Modbus."""

    base: int | None = Field(
        None, ge=0, le=65536 - MODBUS_BLOCK_SPAN, description="default: 100 x stream index"
    )
    buffer: int = Field(
        0, ge=0, le=64, description="results kept until ResultAck; 0 = the newest overwrites"
    )
    recipe_parameter: str | None = Field(
        None, description="workflow parameter that receives the recipe register (when nonzero)"
    )
    outputs: list[RegisterOutput] = Field(default_factory=list)

    def output_addresses(self) -> list[int]:
        """Each output's offset from the base (explicit, or packed after the previous one)."""
        addresses, next_free = [], MODBUS_RESULT_HEADER
        for output in self.outputs:
            address = next_free if output.address is None else output.address
            addresses.append(address)
            next_free = address + REGISTER_WIDTH[output.type]
        return addresses

    @model_validator(mode="after")
    def _outputs_fit(self) -> ModbusStreamConfig:
        taken: dict[int, str] = {}
        for output, address in zip(self.outputs, self.output_addresses(), strict=True):
            for offset in range(address, address + REGISTER_WIDTH[output.type]):
                if offset >= MODBUS_RESULT_SPAN:
                    raise ValueError(
                        f"output {output.output!r} at offset {address} ends past the result "
                        f"block (offsets {MODBUS_RESULT_HEADER}..{MODBUS_RESULT_SPAN - 1})"
                    )
                if offset in taken:
                    raise ValueError(
                        f"outputs {taken[offset]!r} and {output.output!r} overlap at offset "
                        f"{offset}"
                    )
                taken[offset] = output.output
        return self


class ModbusServerConfig(StrictModel):
    """The gateway is a Modbus TCP server, as a smart camera is; the PLC is the client."""

    type: Literal["server"]
    enabled: bool = True
    host: str = Field("127.0.0.1", description="bind address; 0.0.0.0 for every interface")
    port: int = Field(5020, ge=0, le=65535, description="502 is the standard; 0 picks a free port")
    unit_id: int = Field(0, ge=0, le=255, description="0 answers every unit id")
    allow: list[IPvAnyNetwork] = Field(
        default_factory=list, description="client addresses allowed; empty = anyone who reaches it"
    )
    word_order: WordOrder = "ABCD"
    heartbeat_ms: int = Field(500, ge=50, description="Heartbeat bit toggles this often")
    streams: dict[str, ModbusStreamConfig] = Field(
        default_factory=dict, description="default: every stream, default layout"
    )


class ModbusClientStreamConfig(ModbusStreamConfig):
    """Where one stream's handshake lives in the PLC's own address space (client mode)."""

    buffer: int = Field(0, ge=0, le=0, description="client mode shows the newest result")
    control_coils: int | None = Field(
        None, ge=0, le=65532, description="PLC coils: TriggerEnable, Trigger, ResultAck, ClearError"
    )
    control_registers: int | None = Field(
        None, ge=0, le=65532, description="PLC holding registers: TRIG_SEQ, recipe, part id (2)"
    )
    result_registers: int = Field(
        ge=0, le=65536 - MODBUS_RESULT_SPAN, description="PLC holding registers for the result"
    )

    @model_validator(mode="after")
    def _something_to_poll(self) -> ModbusClientStreamConfig:
        if self.control_coils is None and self.control_registers is None:
            raise ValueError("give `control_coils`, `control_registers` or both (what to poll)")
        return self


class ModbusClientConfig(StrictModel):
    """The PLC is the Modbus TCP server; the gateway polls it and writes results into it."""

    type: Literal["client"]
    enabled: bool = True
    host: str
    port: int = Field(502, ge=1, le=65535)
    unit_id: int = Field(1, ge=0, le=255)
    poll_interval_ms: float = Field(10.0, ge=1.0, le=60_000)
    timeout_s: float = Field(1.0, gt=0)
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    word_order: WordOrder = "ABCD"
    heartbeat_ms: int = Field(500, ge=50)
    streams: dict[str, ModbusClientStreamConfig] = Field(min_length=1)


ModbusConfig = Annotated[ModbusServerConfig | ModbusClientConfig, Field(discriminator="type")]


def modbus_streams(
    modbus: ModbusConfig, stream_order: list[str]
) -> dict[str, tuple[int, ModbusStreamConfig]]:
    """The streams on Modbus with their base address (server mode: every stream by default,
    stream N at base 100 x N)."""
    chosen: dict[str, ModbusStreamConfig] = dict(modbus.streams) or {
        stream_id: ModbusStreamConfig() for stream_id in stream_order
    }
    return {
        stream_id: (
            MODBUS_BLOCK_SPAN * stream_order.index(stream_id)
            if stream.base is None
            else stream.base,
            stream,
        )
        for stream_id, stream in chosen.items()
        if stream_id in stream_order
    }


def check_bases(modbus: ModbusConfig, stream_order: list[str]) -> None:
    """Server mode: no two streams' blocks of addresses overlap (ValueError naming both)."""
    if modbus.type == "client":
        return
    owners: list[tuple[int, str]] = []
    for stream_id, (base, _) in modbus_streams(modbus, stream_order).items():
        for other_base, other in owners:
            if abs(other_base - base) < MODBUS_BLOCK_SPAN:
                raise ValueError(
                    f"modbus.streams.{stream_id}.base: {base} overlaps stream {other!r} at "
                    f"{other_base} (each stream needs {MODBUS_BLOCK_SPAN} addresses)"
                )
        owners.append((base, stream_id))
