"""Hostile OPC UA clients (issue: exactly one result under hostile input): arrays and nulls
where scalars belong, and Trigger method calls with missing, extra or ill-typed arguments."""

from __future__ import annotations

import orjson
import pytest
from asyncua import ua
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaStatusCodeError

from simulators.opcua_client import OpcuaTriggerClient
from tests.conftest import first_frame, running_gateway
from tests.test_opcua import endpoint, opcua_config


async def test_arrays_and_nulls_on_scalar_control_nodes_are_refused_and_serving_goes_on() -> None:
    async with running_gateway(opcua_config()) as (gateway, _, _published):
        await first_frame(gateway)
        async with OpcuaTriggerClient(endpoint(gateway), "cam") as client:
            rank = await client.node("Control.TriggerCount").read_attribute(AttributeIds.ValueRank)
            assert rank.Value is not None and rank.Value.Value == -1  # browsed as scalar
            writes = [
                ("Control.TriggerCount", ua.Variant([7, 8], ua.VariantType.UInt32)),
                ("Control.Trigger", ua.Variant([True, True], ua.VariantType.Boolean)),
                ("Control.PartId", ua.Variant(None, ua.VariantType.Null)),
            ]
            for path, variant in writes:
                with pytest.raises(UaStatusCodeError) as refused:
                    await client.node(path).write_value(ua.DataValue(variant))
                assert refused.value.code == StatusCodes.BadTypeMismatch, path
            count = await client.node("Control.TriggerCount").read_value()
            assert count == 0  # the refused write left the node as it was
            before = await client.node("Result.ResultCounter").read_value()
            for how in ("write", "count", "method"):
                assert (await client.trigger(how))["pass"] is True, how
            assert await client.node("Result.ResultCounter").read_value() >= before + 2


async def test_method_arguments_missing_extra_null_or_wrong_type() -> None:
    async with running_gateway(opcua_config()) as (gateway, _, published):
        await first_frame(gateway)
        async with OpcuaTriggerClient(endpoint(gateway), "cam") as client:
            parent = client.client.get_node(f"ns={client.ns};s=Streams.cam")
            method = client.client.get_node(f"ns={client.ns};s=Streams.cam.Trigger").nodeid
            calls = [
                ((), StatusCodes.BadArgumentsMissing),
                (
                    (ua.Variant("{}", ua.VariantType.String),) * 2,
                    StatusCodes.BadTooManyArguments,
                ),
                ((ua.Variant(None, ua.VariantType.Null),), StatusCodes.BadInvalidArgument),
                ((ua.Variant(b"{}", ua.VariantType.ByteString),), StatusCodes.BadInvalidArgument),
                ((ua.Variant(["{}"], ua.VariantType.String),), StatusCodes.BadInvalidArgument),
            ]
            for arguments, expected in calls:
                with pytest.raises(UaStatusCodeError) as refused:
                    await parent.call_method(method, *arguments)
                assert refused.value.code == expected, arguments
            assert published == []  # nothing was triggered by a malformed call
            nested = "[" * 100 + "]" * 100
            for text, message in (
                ('{"threshold": null}', "unknown parameter"),
                ("{" + '"a": {' * 40 + "}" * 41, "nested deeper"),
                ('{"x": NaN}', "not JSON"),
                (nested, "JSON object"),
            ):
                code, passed, body = await parent.call_method(
                    method, ua.Variant(text, ua.VariantType.String)
                )
                answer = orjson.loads(body)
                assert code == -7 and passed is False and message in answer["error"]["message"]
            ok = await parent.call_method(method, ua.Variant("", ua.VariantType.String))
            assert ok[0] in (1, 2, 0)
