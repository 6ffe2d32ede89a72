"""The Modbus register map, in one place: what each stream's block of 100 addresses holds.

From a stream's base B: coils B+0..3 and holding registers B+0..3 the PLC writes (`Coil`,
`Control`); the result block in input registers B+0..49 (`Register`, workflow outputs from
B+14), mirrored read-only in holding registers B+50..99; STATUS bits also as discrete inputs
(`Status`). The README's Modbus section draws the same map.
"""

from __future__ import annotations

from enum import IntEnum
from types import MappingProxyType
from typing import Final

MODBUS_BLOCK_SPAN: Final = 100
"""Addresses each stream owns from its base: results at B+0..49, their holding mirror at B+50.."""
MODBUS_RESULT_HEADER: Final = 14
"""Registers before the first workflow output in a result block (README, Modbus map)."""
MODBUS_RESULT_SPAN: Final = 50
REGISTER_WIDTH: Final = MappingProxyType(
    {
        "bool": 1,
        "int16": 1,
        "uint16": 1,
        "int32": 2,
        "uint32": 2,
        "float32": 2,
    }
)


class Coil(IntEnum):
    """Coils the PLC writes, at base + value."""

    TRIGGER_ENABLE = 0
    TRIGGER = 1
    RESULT_ACK = 2
    CLEAR_ERROR = 3


class Control(IntEnum):
    """Holding registers the PLC writes, at base + value."""

    TRIG_SEQ = 0
    RECIPE = 1
    PART_ID = 2  # u32, two registers


class Status(IntEnum):
    """Bits of the STATUS register, also discrete inputs at base + value."""

    READY = 0
    TRIGGER_ACK = 1
    BUSY = 2
    RESULT_VALID = 3
    PASS = 4
    FAIL = 5
    ERROR = 6
    MISSED_TRIGGER = 7
    BUFFER_OVERRUN = 8
    INSPECTION_TOGGLE = 9
    HEARTBEAT = 10
    CAMERA_OK = 11


class Register(IntEnum):
    """The result block: input registers at base + value, mirrored in holding at base + 50."""

    STATUS = 0
    TRIG_ACK_SEQ = 1
    ACQ_ID = 2
    RESULT_ID = 3
    RESULT_ACQ_ID = 4
    RESULT_CODE = 5
    ERROR_CODE = 6
    PENDING = 7
    MISSED_TRIGGERS = 8
    PROC_TIME_MS = 9
    FRAME_AGE_US = 10  # u32
    PART_ID = 12  # u32


COILS: Final = len(Coil)
CONTROLS: Final = 4
STATUS_BITS: Final = len(Status)
HEADER: Final = Register.RESULT_ID + 1
"""STATUS..RESULT_ID: what changes on every handshake step; the rest changes with a result."""
RESULT_PASS, RESULT_FAIL = 1, 2  # RESULT_CODE, see InspectionResult.result_code
