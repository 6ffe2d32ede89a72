"""Backoff, the reconnect loop and task teardown shared by cameras and PLC clients."""

from __future__ import annotations

import asyncio

import pytest

from gateway.config import ReconnectConfig
from gateway.supervise import Backoff, cancel_and_wait, reconnect_forever


def test_backoff_grows_to_its_cap_and_resets() -> None:
    backoff = Backoff(ReconnectConfig(initial_s=0.5, max_s=3.0, factor=2.0))
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


async def test_reconnect_forever_retries_failures_resets_after_success_and_stops() -> None:
    delays: list[float] = []
    attempts = 0

    async def session(backoff: Backoff) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 3:
            backoff.reset()  # connected this time; the connection then drops
        raise ConnectionError(f"attempt {attempts}")

    await reconnect_forever(
        session,
        Backoff(ReconnectConfig(initial_s=0.001, max_s=0.004, factor=2.0)),
        stopping=lambda: attempts >= 5,
        retry_on=(ConnectionError,),
        on_failure=lambda exc, delay: delays.append(delay),
    )
    assert attempts == 5
    assert delays == [0.001, 0.002, 0.001, 0.002, 0.004]


async def test_reconnect_forever_lets_other_errors_through() -> None:
    async def session(backoff: Backoff) -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        await reconnect_forever(
            session,
            Backoff(ReconnectConfig()),
            stopping=lambda: False,
            retry_on=(ConnectionError,),
            on_failure=lambda exc, delay: None,
        )


async def test_cancel_and_wait_runs_cleanup_and_ignores_none() -> None:
    cleaned = asyncio.Event()

    async def worker() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            cleaned.set()

    task = asyncio.create_task(worker())
    await asyncio.sleep(0)
    await cancel_and_wait(task, None)
    assert task.cancelled() and cleaned.is_set()
