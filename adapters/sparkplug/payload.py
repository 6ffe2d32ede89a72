"""Sparkplug B payloads: the protobuf messages of the specification (Payload and its Metric,
the fields this gateway sends and reads), built at import from a descriptor, so no generated
code is kept. Protobuf skips fields it does not know, so payloads with the specification's
other fields (properties, datasets, templates) still decode.

Field numbers and data types are those of Sparkplug B 3.0 (Eclipse Sparkplug specification,
section 6.4, "Payload"): Payload {timestamp 1, metrics 2, seq 3, uuid 4, body 5}; Metric {name
1, alias 2, timestamp 3, datatype 4, is_historical 5, is_transient 6, is_null 7, int_value 10,
long_value 11, float_value 12, double_value 13, boolean_value 14, string_value 15, bytes_value
16}.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


class DataType(IntEnum):
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14


BY_NAME: Final = {
    "Boolean": DataType.BOOLEAN,
    "Int32": DataType.INT32,
    "Int64": DataType.INT64,
    "UInt32": DataType.UINT32,
    "UInt64": DataType.UINT64,
    "Float": DataType.FLOAT,
    "Double": DataType.DOUBLE,
    "String": DataType.STRING,
}

_METRIC_FIELDS: Final = (
    ("name", 1, _F.TYPE_STRING),
    ("alias", 2, _F.TYPE_UINT64),
    ("timestamp", 3, _F.TYPE_UINT64),
    ("datatype", 4, _F.TYPE_UINT32),
    ("is_historical", 5, _F.TYPE_BOOL),
    ("is_transient", 6, _F.TYPE_BOOL),
    ("is_null", 7, _F.TYPE_BOOL),
    ("int_value", 10, _F.TYPE_UINT32),
    ("long_value", 11, _F.TYPE_UINT64),
    ("float_value", 12, _F.TYPE_FLOAT),
    ("double_value", 13, _F.TYPE_DOUBLE),
    ("boolean_value", 14, _F.TYPE_BOOL),
    ("string_value", 15, _F.TYPE_STRING),
    ("bytes_value", 16, _F.TYPE_BYTES),
)
_VALUE_FIELD: Final = {
    **dict.fromkeys((DataType.INT8, DataType.INT16, DataType.INT32), "int_value"),
    **dict.fromkeys((DataType.UINT8, DataType.UINT16, DataType.UINT32), "int_value"),
    **dict.fromkeys((DataType.INT64, DataType.UINT64, DataType.DATETIME), "long_value"),
    DataType.FLOAT: "float_value",
    DataType.DOUBLE: "double_value",
    DataType.BOOLEAN: "boolean_value",
    DataType.STRING: "string_value",
    DataType.TEXT: "string_value",
}
_SIGNED_BITS: Final = {
    DataType.INT8: 32,
    DataType.INT16: 32,
    DataType.INT32: 32,
    DataType.INT64: 64,
}


def _build_payload_class() -> Any:
    file = descriptor_pb2.FileDescriptorProto(
        name="gateway/sparkplug_b.proto", package="gateway.sparkplug", syntax="proto2"
    )
    payload = file.message_type.add(name="Payload")
    metric = payload.nested_type.add(name="Metric")
    for name, number, kind in _METRIC_FIELDS:
        metric.field.add(name=name, number=number, type=kind, label=_F.LABEL_OPTIONAL)
    payload.field.add(name="timestamp", number=1, type=_F.TYPE_UINT64, label=_F.LABEL_OPTIONAL)
    payload.field.add(
        name="metrics",
        number=2,
        type=_F.TYPE_MESSAGE,
        label=_F.LABEL_REPEATED,
        type_name=".gateway.sparkplug.Payload.Metric",
    )
    payload.field.add(name="seq", number=3, type=_F.TYPE_UINT64, label=_F.LABEL_OPTIONAL)
    payload.field.add(name="uuid", number=4, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    payload.field.add(name="body", number=5, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("gateway.sparkplug.Payload"))


Payload: Final = _build_payload_class()


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    datatype: DataType
    value: Any
    """None is sent as is_null."""


def encode(metrics: list[Metric], seq: int | None, timestamp_ms: int | None = None) -> bytes:
    """A Payload; `seq` None for NDEATH (the one message without a sequence number)."""
    stamp = now_ms() if timestamp_ms is None else timestamp_ms
    payload = Payload(timestamp=stamp)
    if seq is not None:
        payload.seq = seq
    for metric in metrics:
        entry = payload.metrics.add(name=metric.name, timestamp=stamp, datatype=metric.datatype)
        if metric.value is None:
            entry.is_null = True
            continue
        value = metric.value
        bits = _SIGNED_BITS.get(metric.datatype)
        if bits is not None:
            value = int(value) & ((1 << bits) - 1)  # two's complement in the unsigned field
        setattr(entry, _VALUE_FIELD[metric.datatype], value)
    data: bytes = payload.SerializeToString()
    return data


def decode(
    data: bytes, known: dict[str, DataType] | None = None
) -> tuple[int | None, dict[str, Any]]:
    """A Payload's seq and its metrics by name (values, None where is_null); raises ValueError
    on bytes that are not a Payload. Commands and data usually leave the datatype out (the
    birth gave it): `known` gives it by name."""
    payload = Payload()
    try:
        payload.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError, and its C variants
        raise ValueError(f"not a Sparkplug B payload: {exc}") from None
    metrics: dict[str, Any] = {}
    for entry in payload.metrics:
        if not entry.datatype and known and entry.name in known:
            entry.datatype = known[entry.name]
        metrics[entry.name] = None if entry.is_null else _value(entry)
    return (payload.seq if payload.HasField("seq") else None), metrics


def _value(entry: Any) -> Any:
    """The metric's value by its datatype; None for types this gateway does not read."""
    field = _VALUE_FIELD.get(entry.datatype)
    if field is None:
        return None
    datatype = DataType(entry.datatype)
    value = getattr(entry, field)
    bits = _SIGNED_BITS.get(datatype)
    if bits is not None and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value
