"""Requests checked against the Modbus application protocol before pymodbus decodes them.

pymodbus answers a request it cannot decode with exception 1 under function code 0 (`80 01`),
and answers every function code it knows (diagnostics, report server id, ...). A PLC expects
the spec (Modbus Application Protocol v1.1b3, section 7): a function code the gateway does not
serve gets exception 1 (ILLEGAL FUNCTION) under its own code, a quantity out of range or a
malformed request gets exception 3 (ILLEGAL DATA VALUE). Malformed frames are counted, not
logged one by one (a scanner must not flood the log).
"""

from __future__ import annotations

import struct
from typing import Any, Final

from pymodbus.constants import ExcCodes
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU

SERVED: Final = frozenset({1, 2, 3, 4, 5, 6, 15, 16, 22, 23})
"""Bits and registers: read coils/discrete/holding/input, write single/multiple, mask, r/w."""
MAX_BITS: Final = 2000
MAX_READ_REGISTERS: Final = 125
MAX_WRITE_BITS: Final = 1968
MAX_WRITE_REGISTERS: Final = 123
MAX_RW_WRITE_REGISTERS: Final = 121


def request_problem(function_code: int, body: bytes) -> int | None:
    """The exception code the spec gives this request, or None when it is well formed."""
    if function_code not in SERVED:
        return ExcCodes.ILLEGAL_FUNCTION
    try:
        return ExcCodes.ILLEGAL_VALUE if not _well_formed(function_code, body) else None
    except struct.error:
        return ExcCodes.ILLEGAL_VALUE


def _well_formed(function_code: int, body: bytes) -> bool:
    if function_code in (1, 2, 3, 4):
        count = _ints(">HH", body)[1]
        limit = MAX_BITS if function_code in (1, 2) else MAX_READ_REGISTERS
        return len(body) == 4 and 1 <= count <= limit
    if function_code == 5:
        value = _ints(">HH", body)[1]
        return len(body) == 4 and value in (0x0000, 0xFF00)
    if function_code == 6:
        return len(body) == 4
    if function_code in (15, 16):
        count, size = _ints(">HHB", body)[1:]
        if function_code == 15:
            return 1 <= count <= MAX_WRITE_BITS and size == (count + 7) // 8 == len(body) - 5
        return 1 <= count <= MAX_WRITE_REGISTERS and size == 2 * count == len(body) - 5
    if function_code == 22:
        return len(body) == 6
    reads, writes, size = (_ints(">HHHHB", body)[i] for i in (1, 3, 4))  # 23: read/write
    return (
        1 <= reads <= MAX_READ_REGISTERS
        and 1 <= writes <= MAX_RW_WRITE_REGISTERS
        and size == 2 * writes == len(body) - 9
    )


def _ints(layout: str, body: bytes) -> tuple[int, ...]:
    return tuple(int(value) for value in struct.unpack(layout, body[: struct.calcsize(layout)]))


class Refusal(ModbusPDU):
    """A request answered with an exception and nothing else (it never reaches the data)."""

    def __init__(self, function_code: int, exception_code: int) -> None:
        super().__init__()
        self.function_code = function_code
        self.exception_code = exception_code

    async def datastore_update(self, context: Any, device_id: int) -> ModbusPDU:
        return ExceptionResponse(self.function_code, self.exception_code)


class StrictDecoder(DecodePDU):
    """The server's decoder: requests the spec refuses become `Refusal`s, counted."""

    def __init__(self) -> None:
        super().__init__(is_server=True)
        self.refused: dict[int, int] = {}
        """Refused requests by exception code (1: function, 3: data value)."""

    def decode(self, frame: bytes) -> ModbusPDU | None:
        if not frame:
            return None
        function_code = frame[0]
        problem = None if function_code & 0x80 else request_problem(function_code, frame[1:])
        if problem is None:
            return super().decode(frame)
        self.refused[problem] = self.refused.get(problem, 0) + 1
        return Refusal(function_code & 0x7F, problem)
