"""One stream's PLC handshake: control bits and registers in, status and the result block out.

Protocol-free on purpose: the server mode feeds it the PLC's writes, the client mode feeds it
what it polls from the PLC, and both read back the same registers. The rules (README, "Modbus TCP")
are the ones integrators know from smart cameras:

- Trigger acts on 0 -> 1 only. The first level seen after start or reconnect is a baseline,
  never an edge, so a Trigger held high across a restart does not fire.
- A new TRIG_SEQ value fires once (duplicate-safe for slow pollers); 0 never fires.
- A trigger while not enabled, not ready or busy is counted in MISSED_TRIGGERS and latched in
  MissedTrigger until ClearError; it is never queued.
- A result is presented values first, then RESULT_ID, then ResultValid and InspectionToggle.
- With `buffer: N`, up to N results wait for ResultAck; a trigger that would overflow them is
  missed and sets BufferOverrun.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from adapters.modbus.codec import EncodeError, encode, int16_register, u32_registers, u32_value
from gateway.config import ModbusClientConfig, ModbusConfig, ModbusStreamConfig, modbus_streams
from gateway.config.modbus_map import (
    COILS,
    CONTROLS,
    MODBUS_RESULT_HEADER,
    REGISTER_WIDTH,
    STATUS_BITS,
    Coil,
    Control,
    Register,
    Status,
)
from gateway.core import Core
from gateway.model import InspectionResult, Origin, Trigger
from gateway.snapshot import StreamSnapshot, heartbeat
from gateway.wire import recipe_parameters

log = structlog.get_logger(__name__)

Submit = Callable[[Trigger], "asyncio.Future[InspectionResult]"]


def next_id(value: int) -> int:
    """16-bit ids wrap 65535 -> 1; 0 means "none yet"."""
    return 1 if value >= 0xFFFF else value + 1


@dataclass(slots=True)
class _Pending:
    acq_id: int
    result: InspectionResult


class Handshake:
    """The registers and rules of one stream; every method runs on the event loop."""

    def __init__(
        self,
        stream_id: str,
        layout: ModbusStreamConfig,
        *,
        submit: Submit,
        snapshot: Callable[[], StreamSnapshot],
        word_order: str = "ABCD",
        heartbeat_s: float = 0.5,
        enable_required: bool = True,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.layout = layout
        self._submit = submit
        self._snapshot = snapshot
        self._word_order = word_order
        self._heartbeat_s = heartbeat_s
        self._enable_required = enable_required
        self._clock = clock
        self._on_change = on_change or (lambda: None)
        self._outputs = list(zip(layout.outputs, layout.output_addresses(), strict=True))
        self.length = max(
            [MODBUS_RESULT_HEADER]
            + [address + REGISTER_WIDTH[o.type] for o, address in self._outputs]
        )
        self.coils = [False] * COILS
        self.controls = [0] * CONTROLS
        self.block = [0] * self.length
        self._coil_known = [False] * COILS
        self._seq_known = True
        self._bits = 0
        self._inflight = 0
        self._waiting: deque[_Pending] = deque()
        self.result_version = 0
        """Bumped whenever the result part of the block changes (client mode writes it then)."""
        self.counters = {"triggers": 0, "missed": 0, "results": 0, "overruns": 0}
        self._warned: set[str] = set()

    # --- inputs from the PLC ----------------------------------------------------------------

    def reset_inputs(self) -> None:
        """A (re)connect: the next levels seen are baselines, not edges."""
        self._coil_known = [False] * COILS
        self._seq_known = False

    def write_coils(self, offset: int, values: Sequence[bool]) -> None:
        for index, value in enumerate(values, start=offset):
            self._write_coil(Coil(index), bool(value))

    def _write_coil(self, coil: Coil, value: bool) -> None:
        before, known = self.coils[coil], self._coil_known[coil]
        self.coils[coil] = value
        self._coil_known[coil] = True
        if not known:
            if value and coil is Coil.TRIGGER:
                log.info("modbus trigger high at (re)connect: not an edge", stream=self.stream_id)
            return
        if value == before:
            return
        if coil is Coil.TRIGGER:
            if value:
                self._trigger(seq=None)
            else:
                self._set(Status.TRIGGER_ACK, False)
        elif coil is Coil.RESULT_ACK:
            self._result_ack(value)
        elif coil is Coil.CLEAR_ERROR and value:
            self._clear_errors()
        self._on_change()

    def write_controls(self, offset: int, values: Sequence[int]) -> None:
        seq_before = self.controls[Control.TRIG_SEQ]
        for index, value in enumerate(values, start=offset):
            self.controls[index] = int(value) & 0xFFFF
        if offset > Control.TRIG_SEQ:
            return
        seq = self.controls[Control.TRIG_SEQ]
        if not self._seq_known:
            self._seq_known = True
            return
        if seq != seq_before and seq != 0:
            self._trigger(seq=seq)
            self._on_change()

    # --- what the PLC reads -----------------------------------------------------------------

    def status(self) -> int:
        stream = self._snapshot()
        bits = self._bits
        bits |= self._bit(Status.CAMERA_OK, stream.camera.connected)
        bits |= self._bit(Status.READY, self._ready(stream))
        bits |= self._bit(Status.BUSY, self._inflight > 0)
        return bits | self._bit(Status.HEARTBEAT, heartbeat(self._clock(), self._heartbeat_s))

    def registers(self, start: int, count: int) -> list[int]:
        """The result block from `start`, with a live STATUS word."""
        values = self.block[start : start + count]
        if start == Register.STATUS and values:
            values[0] = self.status()
        return values

    def status_bits(self) -> list[bool]:
        word = self.status()
        return [bool(word >> bit & 1) for bit in range(STATUS_BITS)]

    # --- the rules --------------------------------------------------------------------------

    @staticmethod
    def _bit(status: Status, value: bool) -> int:
        return (1 << status) if value else 0

    def _set(self, status: Status, value: bool) -> None:
        self._bits = (self._bits | (1 << status)) if value else (self._bits & ~(1 << status))

    def _is(self, status: Status) -> bool:
        return bool(self._bits >> status & 1)

    def _has_room(self) -> bool:
        if self.layout.buffer == 0:
            return self._inflight == 0
        held = self._inflight + len(self._waiting) + int(self._is(Status.RESULT_VALID))
        return held < self.layout.buffer

    def _ready(self, stream: StreamSnapshot) -> bool:
        """The stream is ready (`StreamSnapshot.ready`), triggers are enabled, and the result
        buffer has room."""
        enabled = self.coils[Coil.TRIGGER_ENABLE] or not self._enable_required
        return enabled and stream.ready and self._has_room()

    def _trigger(self, *, seq: int | None) -> None:
        stream = self._snapshot()
        if not self._ready(stream):
            self._miss(stream)
            return
        self.counters["triggers"] += 1
        acq_id = next_id(self.block[Register.ACQ_ID])
        self.block[Register.ACQ_ID] = acq_id
        if seq is None:
            self._set(Status.TRIGGER_ACK, True)
        else:
            self.block[Register.TRIG_ACK_SEQ] = seq
        if self.layout.buffer == 0:
            self._set(Status.RESULT_VALID, False)
        self._inflight += 1
        self.block[Register.PENDING] = self._pending()
        parameters = recipe_parameters(self.layout.recipe_parameter, self.controls[Control.RECIPE])
        part_id = u32_value(self.controls[Control.PART_ID : Control.PART_ID + 2], self._word_order)
        trigger = Trigger(
            self.stream_id,
            Origin.MODBUS,
            trigger_id=f"modbus-{self.stream_id}-{acq_id}-{time.time_ns():x}",
            parameters=parameters,
            part_id=part_id,
        )
        future = self._submit(trigger)
        future.add_done_callback(lambda done: self._on_result(acq_id, done))

    def _miss(self, stream: StreamSnapshot) -> None:
        self.counters["missed"] += 1
        self.block[Register.MISSED_TRIGGERS] = min(self.block[Register.MISSED_TRIGGERS] + 1, 0xFFFF)
        self._set(Status.MISSED_TRIGGER, True)
        if self.layout.buffer and stream.running and not self._has_room():
            self.counters["overruns"] += 1
            self._set(Status.BUFFER_OVERRUN, True)
        log.warning(
            "modbus trigger missed",
            stream=self.stream_id,
            enabled=self.coils[Coil.TRIGGER_ENABLE] or not self._enable_required,
            stream_ready=stream.ready,
            camera_ok=stream.camera.connected,
            busy=self._inflight > 0,
        )

    def _on_result(self, acq_id: int, done: asyncio.Future[InspectionResult]) -> None:
        if done.cancelled():
            return
        self._inflight -= 1
        pending = _Pending(acq_id, done.result())
        if self.layout.buffer == 0 or (
            not self._is(Status.RESULT_VALID) and not self.coils[Coil.RESULT_ACK]
        ):
            self._present(pending)
        else:
            self._waiting.append(pending)
            self.block[Register.PENDING] = self._pending()
        self._on_change()

    def _pending(self) -> int:
        return min(self._inflight + len(self._waiting), 0xFFFF)

    def _present(self, pending: _Pending) -> None:
        """Values first, then RESULT_ID, then the bits: one block read is always coherent."""
        result, block = pending.result, self.block
        self.counters["results"] += 1
        block[Register.RESULT_ACQ_ID] = pending.acq_id
        block[Register.RESULT_CODE] = int16_register(result.result_code)
        block[Register.ERROR_CODE] = int(result.error_code)
        block[Register.PENDING] = self._pending()
        block[Register.PROC_TIME_MS] = min(round(result.timings.total_ms), 0xFFFF)
        age_us = 0 if result.frame_age_ms is None else round(result.frame_age_ms * 1000.0)
        block[Register.FRAME_AGE_US : Register.FRAME_AGE_US + 2] = u32_registers(
            min(max(age_us, 0), 0xFFFF_FFFF), self._word_order
        )
        block[Register.PART_ID : Register.PART_ID + 2] = u32_registers(
            result.part_id or 0, self._word_order
        )
        for output, address in self._outputs:
            width = REGISTER_WIDTH[output.type]
            block[address : address + width] = self._encode_output(result, output, width)
        self.result_version += 1
        block[Register.RESULT_ID] = next_id(block[Register.RESULT_ID])
        self._set(Status.PASS, result.ok and result.passed is True)
        self._set(Status.FAIL, result.ok and result.passed is False)
        self._set(Status.ERROR, not result.ok)
        self._set(Status.RESULT_VALID, True)
        self._set(Status.INSPECTION_TOGGLE, not self._is(Status.INSPECTION_TOGGLE))

    def _encode_output(self, result: InspectionResult, output: Any, width: int) -> list[int]:
        if not result.ok:
            return [0] * width
        value = result.output(output.output)
        try:
            return encode(
                value,
                output.type,
                scale=output.scale,
                word_order=output.word_order or self._word_order,
            )
        except EncodeError as exc:
            if output.output not in self._warned:
                self._warned.add(output.output)
                log.warning(
                    "modbus output not written (zeros instead)",
                    stream=self.stream_id,
                    output=output.output,
                    reason=str(exc) if value is not None else "missing from the result",
                )
            return [0] * width

    def _result_ack(self, high: bool) -> None:
        if high:
            self._set(Status.RESULT_VALID, False)
        elif self._waiting:
            self._present(self._waiting.popleft())

    def _clear_errors(self) -> None:
        for status in (Status.MISSED_TRIGGER, Status.BUFFER_OVERRUN, Status.ERROR):
            self._set(status, False)
        self.block[Register.MISSED_TRIGGERS] = 0


def build_handshakes(
    config: ModbusConfig, core: Core, on_change: Callable[[], None] | None = None
) -> dict[str, tuple[int, Handshake]]:
    """A handshake per stream on Modbus, with its base address, fed by the dispatcher."""
    dispatcher = core.dispatcher
    layouts = modbus_streams(config, list(dispatcher.stream_ids))

    def enable_required(stream_id: str) -> bool:
        """Server mode, or a client-mode PLC with a TriggerEnable coil to poll."""
        if isinstance(config, ModbusClientConfig):
            return config.streams[stream_id].control_coils is not None
        return True

    def handshake(stream_id: str, layout: ModbusStreamConfig) -> Handshake:
        return Handshake(
            stream_id,
            layout,
            submit=dispatcher.submit,
            snapshot=lambda: dispatcher.snapshot(stream_id),
            word_order=config.word_order,
            heartbeat_s=config.heartbeat_ms / 1000.0,
            enable_required=enable_required(stream_id),
            on_change=on_change,
        )

    return {sid: (base, handshake(sid, layout)) for sid, (base, layout) in layouts.items()}
