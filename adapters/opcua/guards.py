"""What OPC UA clients may send: scalar values to scalar nodes, and the Trigger method's one
String argument. Anything else is refused with the status code the spec gives."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from asyncua import ua
from asyncua.server.server import Server
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uatypes import UInt32


def _status(code: int) -> ua.StatusCode:
    return ua.StatusCode(UInt32(code))


def argument_problem(arguments: tuple[Any, ...]) -> ua.StatusCode | ua.CallMethodResult | None:
    """The status OPC UA prescribes for a call with the wrong arguments, else None: one
    String (JSON text, empty for none); not null, not a ByteString, not an array."""
    if not arguments:
        return _status(StatusCodes.BadArgumentsMissing)
    if len(arguments) > 1:
        return _status(StatusCodes.BadTooManyArguments)
    argument = arguments[0]
    if (
        isinstance(argument, ua.Variant)
        and argument.VariantType == ua.VariantType.String
        and isinstance(argument.Value, str)
        and not argument.is_array
    ):
        return None
    return ua.CallMethodResult(
        StatusCode=_status(StatusCodes.BadInvalidArgument),
        InputArgumentResults=[_status(StatusCodes.BadTypeMismatch)],
    )


def guard_scalar_writes(server: Server, scalar_nodes: Collection[ua.NodeId]) -> None:
    """Refuse (BadTypeMismatch) writes of arrays, nulls or bad-status values to scalar nodes.

    asyncua checks a write's type but not its rank: `UInt32[] [7, 8]` on TriggerCount would be
    accepted and leave the node unusable. Checked before asyncua writes; PostWrite then sees the
    refusal's status and ignores it."""
    service = server.iserver.attribute_service
    original = service.write
    guarded = frozenset(scalar_nodes)

    async def write(params: ua.WriteParameters, *args: Any, **kwargs: Any) -> list[ua.StatusCode]:
        refused = {
            index: _status(StatusCodes.BadTypeMismatch)
            for index, item in enumerate(params.NodesToWrite)
            if item.NodeId in guarded
            and item.AttributeId == AttributeIds.Value
            and not _scalar(item.Value)
        }
        if not refused:
            return await original(params, *args, **kwargs)
        kept = [item for i, item in enumerate(params.NodesToWrite) if i not in refused]
        done = (
            await original(ua.WriteParameters(NodesToWrite=kept), *args, **kwargs) if kept else []
        )
        answers = iter(done)
        return [refused.get(i) or next(answers) for i in range(len(params.NodesToWrite))]

    service.write = write  # type: ignore[method-assign]


def _scalar(value: ua.DataValue | None) -> bool:
    if value is None or (value.StatusCode is not None and value.StatusCode.is_bad()):
        return False
    variant = value.Value
    return (
        variant is not None
        and variant.Value is not None
        and not variant.is_array
        and not isinstance(variant.Value, list | tuple)
    )
