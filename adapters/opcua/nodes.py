"""The server's address space, per stream: which nodes exist, their types and initial values,
and workflow outputs converted to a node's type."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

import orjson
from asyncua import ua
from asyncua.common.node import Node
from asyncua.ua.uatypes import Int16, String

from gateway.config import OpcuaOutput, OpcuaStreamConfig

VARIANT: Final = MappingProxyType(
    {
        "Boolean": ua.VariantType.Boolean,
        "Int32": ua.VariantType.Int32,
        "UInt32": ua.VariantType.UInt32,
        "Int64": ua.VariantType.Int64,
        "Float": ua.VariantType.Float,
        "Double": ua.VariantType.Double,
        "String": ua.VariantType.String,
    }
)
INTEGER_RANGE: Final = MappingProxyType(
    {
        "Int32": (-(2**31), 2**31 - 1),
        "UInt32": (0, 2**32 - 1),
        "Int64": (-(2**63), 2**63 - 1),
    }
)
CONTROL: Final = MappingProxyType({"Trigger": False, "TriggerCount": 0, "PartId": 0, "Recipe": 0})
STATUS: Final[MappingProxyType[str, Any]] = MappingProxyType(
    {
        "State": "stopped",
        "Ready": False,
        "Busy": False,
        "Error": False,
        "ErrorCode": 0,
        "CameraConnected": False,
        "Heartbeat": False,
    }
)
RESULT: Final[MappingProxyType[str, tuple[Any, ua.VariantType]]] = MappingProxyType(
    {
        "TriggerCount": (0, ua.VariantType.UInt32),
        "ResultId": (0, ua.VariantType.UInt32),
        "Pass": (False, ua.VariantType.Boolean),
        "ResultCode": (0, ua.VariantType.Int32),
        "ErrorCode": (0, ua.VariantType.Int32),
        "ProcessingTimeMs": (0.0, ua.VariantType.Double),
        "FrameTimestamp": (datetime.fromtimestamp(0, UTC), ua.VariantType.DateTime),
        "Json": ("", ua.VariantType.String),
    }
)

SCALAR_RANK: Final = ua.DataValue(ua.Variant(-1, ua.VariantType.Int32))
"""ValueRank -1: a scalar (control nodes say so; clients see it when they browse)."""


def string_node_id(text: str, namespace: int) -> ua.NodeId:
    """ns=<namespace>;s=<text>: ids a PLC programmer can type."""
    return ua.NodeId(String(text), Int16(namespace))


def typed_value(value: Any, type_name: str) -> Any:
    """A workflow output as the node's type; ValueError when it cannot be one (or is missing)."""
    if value is None:
        raise ValueError("missing from the result")
    if type_name == "String":
        return value if isinstance(value, str) else orjson.dumps(value).decode()
    if not isinstance(value, bool | int | float):
        raise ValueError(f"{type(value).__name__} is not a number")
    if type_name == "Boolean":
        return bool(value)
    if type_name in ("Float", "Double"):
        return float(value)
    if not math.isfinite(value):
        raise ValueError(f"{value} is not an integer")
    low, high = INTEGER_RANGE[type_name]
    return min(max(round(value), low), high)


@dataclass
class StreamNodes:
    stream_id: str
    layout: OpcuaStreamConfig
    control: dict[str, Node] = field(default_factory=dict)
    status: dict[str, Node] = field(default_factory=dict)
    result: dict[str, Node] = field(default_factory=dict)
    outputs: list[tuple[OpcuaOutput, Node]] = field(default_factory=list)
    counter_node: Node | None = None
    controls: dict[str, Any] = field(default_factory=lambda: dict(CONTROL))
    shown: dict[str, Any] = field(default_factory=dict)
    result_counter: int = 0
    last_error: int = 0
    counters: dict[str, int] = field(
        default_factory=lambda: {"triggers": 0, "method_calls": 0, "results": 0}
    )
