"""The bounded, expiring memories: expiring maps (idempotency, jobs, MQTT duplicates) and the
latency window, on an injected clock."""

from __future__ import annotations

import asyncio

from gateway.expiring import ExpiringMap
from gateway.latency import LatencyWindow, percentile
from gateway.model import ErrorCode, InspectionError, InspectionResult, Origin, Timings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_recent_futures_expire_by_age_and_drop_the_oldest_past_the_cap() -> None:
    clock = Clock()
    recent: ExpiringMap[asyncio.Future[int]] = ExpiringMap(max_items=3, ttl_s=10.0, clock=clock)
    loop = asyncio.get_running_loop()
    futures = {key: loop.create_future() for key in "abcd"}
    for key in "abc":
        recent.put(key, futures[key])
        clock.now += 1.0
    assert recent.get("a") is futures["a"]
    recent.put("d", futures["d"])  # the fourth: "a", the oldest stored, goes
    assert recent.get("a") is None and len(recent) == 3
    clock.now += 8.5  # "b" is 10.5 s old now, "c" 9.5 s
    assert recent.get("b") is None and recent.get("c") is futures["c"]
    clock.now += 100.0
    assert recent.get("d") is None and len(recent) == 0


async def test_a_key_put_again_is_refreshed() -> None:
    clock = Clock()
    recent: ExpiringMap[asyncio.Future[int]] = ExpiringMap(max_items=2, ttl_s=10.0, clock=clock)
    loop = asyncio.get_running_loop()
    first, second, third = loop.create_future(), loop.create_future(), loop.create_future()
    recent.put("a", first)
    recent.put("b", second)
    recent.put("a", third)  # moves to the end
    recent.put("c", loop.create_future())
    assert recent.get("b") is None and recent.get("a") is third


def _result(origin: Origin, total_ms: float, error: bool = False) -> InspectionResult:
    return InspectionResult(
        stream="cam",
        trigger_id="t",
        result_id=1,
        origin=origin,
        received_at=0.0,
        timings=Timings(total_ms=total_ms),
        error=InspectionError(ErrorCode.BUSY, "busy") if error else None,
    )


def test_latency_window_per_origin_percentiles_slices_and_expiry() -> None:
    clock = Clock()
    window = LatencyWindow(window_s=60.0, max_samples=1000, clock=clock)
    for ms in range(1, 101):  # 100 HTTP results over 50 s
        window.observe(_result(Origin.HTTP, float(ms)))
        clock.now += 0.5
    window.observe(_result(Origin.MQTT, 7.0))
    window.observe(_result(Origin.MQTT, 999.0, error=True))  # errors are not the line's latency
    summary = window.summary(60.0, buckets=2)
    http, mqtt = summary["sources"]["http"], summary["sources"]["mqtt"]
    assert (http["count"], http["p50_ms"], http["p99_ms"]) == (100, 50.0, 99.0)
    assert mqtt == {
        "count": 1,
        "p50_ms": 7.0,
        "p99_ms": 7.0,
        "series": [None, {"p50_ms": 7.0, "p99_ms": 7.0, "count": 1}],
    }
    assert sum(chunk["count"] for chunk in http["series"] if chunk) == 100
    clock.now += 61.0
    assert window.summary(60.0)["sources"] == {}


def test_latency_window_is_bounded_in_count() -> None:
    clock = Clock()
    window = LatencyWindow(window_s=60.0, max_samples=10, clock=clock)
    for ms in range(50):
        window.observe(_result(Origin.HTTP, float(ms)))
    assert window.summary(60.0)["sources"]["http"]["count"] == 10


def test_percentile_is_nearest_rank() -> None:
    ordered = [float(x) for x in range(1, 11)]
    assert (percentile(ordered, 0.5), percentile(ordered, 0.99), percentile([3.0], 0.99)) == (
        5.0,
        10.0,
        3.0,
    )
