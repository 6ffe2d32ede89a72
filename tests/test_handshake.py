"""The Modbus handshake as a unit: no sockets, a fake stream snapshot, an injected clock, and
triggers answered by the test (the protocol end to end is in test_modbus.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from types import MappingProxyType

from adapters.modbus.handshake import Handshake
from gateway.camera_health import CameraHealth
from gateway.config import ModbusStreamConfig, RegisterOutput
from gateway.config.modbus_map import Coil, Control, Register, Status
from gateway.model import InspectionResult, Trigger
from gateway.snapshot import StreamSnapshot, StreamState

CAMERA = CameraHealth(True, 30.0, 10, 5.0, 0, None)
READY = StreamSnapshot(
    id="cam",
    state=StreamState.RUNNING,
    mode="triggered",
    workflow="w",
    max_fps=5.0,
    frame_policy="latest",
    pending=0,
    queue_size=4,
    camera=CAMERA,
    counters=MappingProxyType({}),
    last_error=None,
)


class Rig:
    """A handshake whose triggers wait for the test to answer them."""

    def __init__(self, layout: ModbusStreamConfig | None = None, **kwargs: object) -> None:
        self.stream = READY
        self.now = 0.0
        self.triggers: list[tuple[Trigger, asyncio.Future[InspectionResult]]] = []
        self.changes = 0
        self.handshake = Handshake(
            "cam",
            layout or ModbusStreamConfig(),
            submit=self.submit,
            snapshot=lambda: self.stream,
            heartbeat_s=0.5,
            clock=lambda: self.now,
            on_change=self.changed,
            **kwargs,  # type: ignore[arg-type]
        )
        self.handshake.write_coils(0, [False] * 4)  # the baseline after connect
        self.handshake.write_controls(0, [0, 0, 0, 0])

    def submit(self, trigger: Trigger) -> asyncio.Future[InspectionResult]:
        future: asyncio.Future[InspectionResult] = asyncio.get_running_loop().create_future()
        self.triggers.append((trigger, future))
        return future

    def changed(self) -> None:
        self.changes += 1

    def bit(self, status: Status) -> bool:
        return bool(self.handshake.status() >> status & 1)

    def register(self, register: Register) -> int:
        return self.handshake.registers(0, self.handshake.length)[register]

    def enable(self) -> None:
        self.handshake.write_coils(Coil.TRIGGER_ENABLE, [True])

    def pulse(self) -> None:
        self.handshake.write_coils(Coil.TRIGGER, [True])
        self.handshake.write_coils(Coil.TRIGGER, [False])

    async def answer(self, index: int = -1, passed: bool = True, **outputs: object) -> None:
        trigger, future = self.triggers[index]
        future.set_result(
            InspectionResult(
                stream="cam",
                trigger_id=trigger.trigger_id,
                result_id=1,
                origin=trigger.origin,
                received_at=trigger.received_at,
                outputs=dict(outputs),
                passed=passed,
                part_id=trigger.part_id,
            )
        )
        await asyncio.sleep(0)  # done callbacks run on the loop


async def test_trigger_fires_on_rising_edge_only_and_result_is_presented() -> None:
    rig = Rig()
    rig.enable()
    assert rig.bit(Status.READY) and rig.bit(Status.CAMERA_OK)
    rig.handshake.write_coils(Coil.TRIGGER, [True])
    rig.handshake.write_coils(Coil.TRIGGER, [True])  # held: no second edge
    assert len(rig.triggers) == 1 and rig.bit(Status.TRIGGER_ACK)
    assert rig.register(Register.ACQ_ID) == 1 and rig.register(Register.PENDING) == 1
    await rig.answer(passed=False)
    assert rig.bit(Status.RESULT_VALID) and rig.bit(Status.FAIL) and not rig.bit(Status.PASS)
    assert rig.register(Register.RESULT_ID) == 1 and rig.register(Register.RESULT_ACQ_ID) == 1
    assert rig.register(Register.RESULT_CODE) == 2 and rig.changes >= 2


async def test_level_seen_first_after_reconnect_is_a_baseline() -> None:
    rig = Rig()
    rig.enable()
    rig.handshake.reset_inputs()
    rig.handshake.write_coils(0, [True, True, False, False])  # Trigger already high
    assert rig.triggers == []
    rig.handshake.write_coils(Coil.TRIGGER, [False])
    rig.handshake.write_coils(Coil.TRIGGER, [True])
    assert len(rig.triggers) == 1


async def test_trig_seq_fires_once_per_new_nonzero_value() -> None:
    rig = Rig()
    rig.enable()
    for seq in (5, 5, 0, 6):
        rig.handshake.write_controls(Control.TRIG_SEQ, [seq])
        if rig.triggers and not rig.triggers[-1][1].done():
            await rig.answer()
    assert len(rig.triggers) == 2
    assert rig.register(Register.TRIG_ACK_SEQ) == 6


async def test_not_ready_is_missed_counted_and_latched_until_clear_error() -> None:
    rig = Rig()
    rig.pulse()  # TriggerEnable is off
    rig.enable()
    rig.stream = dataclasses.replace(READY, camera=dataclasses.replace(CAMERA, connected=False))
    assert not rig.bit(Status.READY) and not rig.bit(Status.CAMERA_OK)
    rig.pulse()
    rig.stream = dataclasses.replace(READY, pending=4)  # the stream's queue is full
    rig.pulse()
    assert rig.triggers == []
    assert rig.register(Register.MISSED_TRIGGERS) == 3 and rig.bit(Status.MISSED_TRIGGER)
    rig.stream = READY
    rig.handshake.write_coils(Coil.CLEAR_ERROR, [True])
    assert rig.register(Register.MISSED_TRIGGERS) == 0 and not rig.bit(Status.MISSED_TRIGGER)


async def test_busy_trigger_is_missed_not_queued() -> None:
    rig = Rig()
    rig.enable()
    rig.pulse()
    rig.pulse()  # the first is still being inspected
    assert len(rig.triggers) == 1 and rig.bit(Status.BUSY) and rig.bit(Status.MISSED_TRIGGER)
    await rig.answer()
    assert not rig.bit(Status.BUSY)


async def test_buffered_results_wait_for_result_ack_and_overrun_is_latched() -> None:
    rig = Rig(ModbusStreamConfig(buffer=2))
    rig.enable()
    for _ in range(2):
        rig.pulse()
        await rig.answer()
    assert rig.register(Register.RESULT_ID) == 1 and rig.register(Register.PENDING) == 1
    rig.pulse()  # two held already: overrun
    assert len(rig.triggers) == 2 and rig.bit(Status.BUFFER_OVERRUN)
    rig.handshake.write_coils(Coil.RESULT_ACK, [True])
    assert not rig.bit(Status.RESULT_VALID)
    rig.handshake.write_coils(Coil.RESULT_ACK, [False])
    assert rig.bit(Status.RESULT_VALID) and rig.register(Register.RESULT_ID) == 2


async def test_recipe_and_part_id_travel_with_the_trigger_and_outputs_are_encoded() -> None:
    layout = ModbusStreamConfig(
        recipe_parameter="recipe",
        outputs=[RegisterOutput(output="area", type="uint16"), RegisterOutput(output="gone")],
    )
    rig = Rig(layout)
    rig.enable()
    rig.handshake.write_controls(Control.RECIPE, [7, 0, 1234])  # recipe, part id (u32)
    rig.pulse()
    trigger = rig.triggers[0][0]
    assert trigger.parameters == {"recipe": 7} and trigger.part_id == 1234
    await rig.answer(area=321)
    block = rig.handshake.registers(0, rig.handshake.length)
    assert block[14] == 321 and block[15:17] == [0, 0]  # a missing output is zeros
    assert block[Register.PART_ID : Register.PART_ID + 2] == [0, 1234]


async def test_heartbeat_follows_the_injected_clock() -> None:
    rig = Rig()
    seen = []
    for now in (0.1, 0.6, 1.1, 1.6):
        rig.now = now
        seen.append(rig.bit(Status.HEARTBEAT))
    assert seen == [False, True, False, True]
