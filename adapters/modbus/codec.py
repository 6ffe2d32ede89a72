"""Values to 16-bit registers and back: the data types and word orders PLCs use.

Big-endian bytes A B C D of a 32-bit value are laid into two registers in the configured order:
ABCD [AB, CD] (Modbus convention), CDAB [CD, AB] (word swap), BADC [BA, DC] (byte swap),
DCBA [DC, BA] (both); 16-bit values are never reordered.
123456.0 as float32 is 0x47F12000: ABCD [0x47F1, 0x2000].
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from types import MappingProxyType
from typing import Final

STRUCT_FORMAT: Final = MappingProxyType(
    {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f"}
)
INTEGER_RANGE: Final = MappingProxyType(
    {
        "bool": (0, 1),
        "int16": (-0x8000, 0x7FFF),
        "uint16": (0, 0xFFFF),
        "int32": (-0x8000_0000, 0x7FFF_FFFF),
        "uint32": (0, 0xFFFF_FFFF),
    }
)
BYTE_ORDER: Final = MappingProxyType(
    {
        "ABCD": (0, 1, 2, 3),
        "CDAB": (2, 3, 0, 1),
        "BADC": (1, 0, 3, 2),
        "DCBA": (3, 2, 1, 0),
    }
)


class EncodeError(ValueError):
    """The value cannot be represented in the register type (wrong kind, NaN for an integer)."""


def _reorder(raw: bytes, word_order: str) -> bytes:
    if len(raw) == 2:
        return raw  # word order concerns 32-bit values only
    return bytes(raw[i] for i in BYTE_ORDER[word_order])


def encode(value: object, type_: str, *, scale: float = 1.0, word_order: str = "ABCD") -> list[int]:
    """Registers holding `value x scale`; integers are rounded and clamped to the type's range."""
    if isinstance(value, bool):
        number: float = float(value)
    elif isinstance(value, int | float):
        number = float(value)
    else:
        raise EncodeError(f"{type(value).__name__} is not a number")
    number *= scale
    if type_ == "float32":
        raw = struct.pack(">f", number)
    else:
        if not math.isfinite(number):
            raise EncodeError(f"{number} does not fit {type_}")
        low, high = INTEGER_RANGE[type_]
        integer = min(max(round(number), low), high)
        if type_ == "bool":
            return [1 if integer else 0]
        raw = struct.pack(">" + STRUCT_FORMAT[type_], integer)
    ordered = _reorder(raw, word_order)
    return [int.from_bytes(ordered[i : i + 2], "big") for i in range(0, len(ordered), 2)]


def decode(
    registers: Sequence[int], type_: str, *, scale: float = 1.0, word_order: str = "ABCD"
) -> float:
    """The engineering value of registers written by `encode` (for simulators and tests)."""
    if type_ == "bool":
        return float(bool(registers[0]))
    raw = b"".join(int(r).to_bytes(2, "big") for r in registers)
    if len(raw) == 4:
        natural = bytearray(4)
        for target, source in enumerate(BYTE_ORDER[word_order]):
            natural[source] = raw[target]
        raw = bytes(natural)
    (value,) = struct.unpack(">" + STRUCT_FORMAT[type_], raw)
    return float(value) / scale


def u32_registers(value: int, word_order: str = "ABCD") -> list[int]:
    return encode(value, "uint32", word_order=word_order)


def u32_value(registers: Sequence[int], word_order: str = "ABCD") -> int:
    return int(decode(registers, "uint32", word_order=word_order))


def int16_register(value: int) -> int:
    """A signed value as the unsigned 16-bit word the protocol carries."""
    return value & 0xFFFF


def int16_value(register: int) -> int:
    return register - 0x10000 if register & 0x8000 else register
