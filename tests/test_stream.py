"""Streams and the dispatcher: exactly one result per trigger, whatever happens to it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import httpx

from gateway.app import Gateway
from gateway.config import SourceConfig
from gateway.frame_source import FrameSource
from gateway.model import ErrorCode, InspectionResult, Origin, Trigger
from tests.conftest import ROOT, first_frame, make_config
from tests.test_http_errors import StalledCamera


def gateway_without_http(
    config_streams: dict[str, object], camera: FrameSource | None = None
) -> Gateway:
    config = make_config(streams=config_streams, http={"enabled": False})

    def factory(stream_id: str, source: SourceConfig) -> FrameSource:
        assert camera is not None
        return camera

    if camera is None:
        return Gateway(config, config_dir=ROOT)
    return Gateway(config, config_dir=ROOT, source_factory=factory)


def next_frame_stream(workflow: str, timeout_ms: float, **limits: int) -> dict[str, object]:
    """One synthetic camera `cam` with policy `next`, as the tests here vary it."""
    policy = {"type": "next", "timeout_ms": timeout_ms}
    return {
        "cam": {
            "source": {"type": "synthetic"},
            "workflow": workflow,
            "frame_policy": policy,
            **limits,
        }
    }


async def test_timeout_gives_one_result_even_when_the_inspection_finishes_later() -> None:
    camera = StalledCamera()
    gateway = gateway_without_http(next_frame_stream("demo", 5000, trigger_timeout_ms=200), camera)
    published: list[InspectionResult] = []
    gateway.bus.subscribe(published.append)
    async with gateway:
        result = await gateway.dispatcher.inspect(Trigger("cam", Origin.PYTHON, trigger_id="t"))
        assert result.error_code is ErrorCode.TIMEOUT
        # the trigger timeout fired, not the 5 s frame wait (which says "no frame captured")
        assert "trigger_timeout_ms 200" in result.error.message  # type: ignore[union-attr]
        camera.release()  # the frame arrives: the inspection completes, but is not sent again
        await first_frame(gateway)
        await asyncio.sleep(0.2)
        follow_up = await gateway.dispatcher.inspect(Trigger("cam", Origin.PYTHON, trigger_id="u"))
        assert follow_up.ok
    assert [r.trigger_id for r in published] == ["t", "u"]
    assert [r.result_id for r in published] == [1, 2]


async def test_stopping_answers_every_queued_trigger() -> None:
    camera = StalledCamera()
    gateway = gateway_without_http(
        next_frame_stream("demo", 10000, queue_size=3, trigger_timeout_ms=20000), camera
    )
    async with gateway:
        futures = [
            gateway.dispatcher.submit(Trigger("cam", Origin.PYTHON, trigger_id=str(i)))
            for i in range(3)
        ]
        await asyncio.sleep(0.1)
        await gateway.streams["cam"].stop()
        results = await asyncio.wait_for(asyncio.gather(*futures), 5.0)
    # the one in progress and the queued ones: each answered, none left hanging
    assert [r.error_code for r in results] == [ErrorCode.STREAM_NOT_RUNNING] * 3
    assert all(r.error is not None and r.error.message == "stream stopped" for r in results)


async def test_hundreds_of_rapid_triggers_each_answered_once() -> None:
    gateway = gateway_without_http(
        {
            "a": {
                "source": {"type": "synthetic", "width": 160, "height": 120},
                "workflow": "demo",
                "queue_size": 50,
            },
            "b": {
                "source": {"type": "synthetic", "width": 160, "height": 120},
                "workflow": "demo",
                "queue_size": 50,
            },
        }
    )
    published: list[InspectionResult] = []
    gateway.bus.subscribe(published.append)
    async with gateway:
        await first_frame(gateway, "a")
        await first_frame(gateway, "b")
        futures = []
        for i in range(300):
            futures.append(gateway.dispatcher.submit(Trigger("ab"[i % 2], Origin.PYTHON, str(i))))
            if i % 40 == 39:
                await asyncio.sleep(0.005)
        results = await asyncio.wait_for(asyncio.gather(*futures), 30.0)
    assert sorted(int(r.trigger_id) for r in results) == list(range(300))
    assert Counter(r.trigger_id for r in published) == Counter(str(i) for i in range(300))
    assert {r.error_code for r in results} <= {ErrorCode.OK, ErrorCode.BUSY}
    for stream in ("a", "b"):
        ids = [r.result_id for r in published if r.stream == stream]
        assert ids == list(range(1, 151))  # monotonic per stream, no gaps, no repeats


async def test_next_gives_each_queued_trigger_the_frame_exposed_right_after_it() -> None:
    """A burst of triggers waits its turn behind a real workflow; each is still inspected on
    the first frame after it, not on the frame current when its turn came (only 4 are kept)."""
    gateway = gateway_without_http(
        next_frame_stream("inspection", 1000, queue_size=20, trigger_timeout_ms=30000)
    )
    async with gateway:
        await first_frame(gateway)
        futures = [
            gateway.dispatcher.submit(Trigger("cam", Origin.PYTHON, trigger_id=str(i)))
            for i in range(20)
        ]
        results = await asyncio.wait_for(asyncio.gather(*futures), 30.0)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    inspecting_ms = sum(sum(r.timings.steps_ms.values()) for r in results)
    frame_ids = {r.frame_id for r in results}
    # submitted within one frame interval: one frame, or two if one arrived meanwhile
    assert len(frame_ids) <= 2, (frame_ids, inspecting_ms)
    assert max(r.frame_age_ms or 0.0 for r in results) < 0.0  # every frame after its trigger


async def test_unknown_stream_gets_an_error_result_on_the_bus() -> None:
    gateway = gateway_without_http({"cam": {"source": {"type": "synthetic"}, "workflow": "demo"}})
    published: list[InspectionResult] = []
    gateway.bus.subscribe(published.append)
    async with gateway:
        result = await gateway.dispatcher.inspect(Trigger("nope", Origin.PYTHON))
    assert result.error_code is ErrorCode.UNKNOWN_STREAM
    assert published == [result]


def test_gateway_run_serves_and_stops_cleanly_on_sigterm() -> None:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "GATEWAY_MODBUS_PORT": "0",
        "GATEWAY_OPCUA_PORT": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", "from gateway.cli import main; main()", "run", "--port", "0"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            match = re.search(r"serving http://127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        assert port is not None, "gateway did not report its port"
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):  # bounded: until the first frame is in
            body = httpx.post(f"{base}/streams/conveyor/trigger", timeout=5).json()
            if body["success"]:
                break
            time.sleep(0.05)
        assert body["success"] is True
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()
