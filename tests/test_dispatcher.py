"""The dispatcher and the result bus: every trigger becomes one result on the bus, the unknown
stream and the unreadable body included; snapshots and control by stream id."""

from __future__ import annotations

import pytest

from gateway.bus import ResultBus
from gateway.dispatcher import Dispatcher
from gateway.model import ErrorCode, GatewayError, InspectionResult, Origin, Trigger
from gateway.snapshot import StreamState
from tests.conftest import first_frame, make_config, running_gateway


async def test_unknown_stream_is_one_result_on_the_bus() -> None:
    bus = ResultBus()
    seen: list[InspectionResult] = []
    bus.subscribe(seen.append)
    dispatcher = Dispatcher({}, bus)
    result = await dispatcher.submit(Trigger("nope", Origin.PYTHON, "t-1"))
    assert result.error_code is ErrorCode.UNKNOWN_STREAM and "'nope'" in result.error.message  # type: ignore[union-attr]
    refused = await dispatcher.reject(
        Trigger("nope", Origin.MQTT, "t-2"), ErrorCode.BAD_REQUEST, "x"
    )
    assert refused.error_code is ErrorCode.UNKNOWN_STREAM  # the unknown stream comes first
    assert [r.trigger_id for r in seen] == ["t-1", "t-2"]
    with pytest.raises(GatewayError) as unknown:
        dispatcher.snapshot("nope")
    assert unknown.value.error.code is ErrorCode.UNKNOWN_STREAM


def test_a_failing_sink_does_not_stop_the_others() -> None:
    bus = ResultBus()
    seen: list[str] = []

    def broken(result: InspectionResult) -> None:
        raise RuntimeError("sink bug")

    bus.subscribe(broken)
    unsubscribe = bus.subscribe(lambda result: seen.append(result.trigger_id))
    result = InspectionResult("cam", "t", 1, Origin.PYTHON, 0.0)
    bus.publish(result)
    unsubscribe()
    bus.publish(result)
    assert seen == ["t"] and bus.sink_count == 1


async def test_reject_numbers_and_publishes_like_any_result_and_control_by_id() -> None:
    async with running_gateway(make_config()) as (gateway, _, published):
        await first_frame(gateway)
        dispatcher = gateway.dispatcher
        first = await dispatcher.inspect(Trigger("cam", Origin.PYTHON, "ok"))
        refused = await dispatcher.reject(
            Trigger("cam", Origin.HTTP, "bad"), ErrorCode.BAD_REQUEST, "body: nonsense"
        )
        assert refused.result_id == first.result_id + 1
        assert [r.trigger_id for r in published] == ["ok", "bad"]
        assert dispatcher.snapshot("cam").counters["rejected"] == 1
        dispatcher.pause("cam")
        assert dispatcher.snapshot("cam").state is StreamState.PAUSED
        paused = await dispatcher.inspect(Trigger("cam", Origin.PYTHON))
        assert paused.error_code is ErrorCode.STREAM_NOT_RUNNING
        await dispatcher.resume("cam")
        snapshot = dispatcher.snapshot("cam")
        assert snapshot.running and snapshot.ready and snapshot.activity == "ready"
        assert dispatcher.stream_ids == ("cam",)
