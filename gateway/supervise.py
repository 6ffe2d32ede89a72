"""Keeping connections alive: capped exponential backoff, a reconnect loop, and task teardown.

Cameras, a PLC polled over Modbus and a PLC's OPC UA server all go away and come back. Each
retries with the same capped backoff (reset after a good connection), and every background task
is stopped the same way: cancelled, then awaited so its `finally` blocks run before we go on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol


class BackoffSettings(Protocol):
    """What a `reconnect:` config section gives (see gateway.config.ReconnectConfig)."""

    @property
    def initial_s(self) -> float: ...

    @property
    def max_s(self) -> float: ...

    @property
    def factor(self) -> float: ...


class Backoff:
    """Delays `initial_s`, `initial_s * factor`, ... capped at `max_s`; `reset` starts again."""

    def __init__(self, settings: BackoffSettings) -> None:
        self._settings = settings
        self.delay = settings.initial_s

    def reset(self) -> None:
        self.delay = self._settings.initial_s

    def next_delay(self) -> float:
        """The delay to wait now; the following one grows by `factor` up to `max_s`."""
        delay = self.delay
        self.delay = min(delay * self._settings.factor, self._settings.max_s)
        return delay


async def reconnect_forever(
    session: Callable[[Backoff], Awaitable[None]],
    backoff: Backoff,
    *,
    stopping: Callable[[], bool],
    retry_on: tuple[type[BaseException], ...],
    on_failure: Callable[[BaseException, float], None],
) -> None:
    """Run `session` until `stopping()`; after it ends or fails with `retry_on`, wait the next
    backoff delay and run it again. A session calls `backoff.reset()` once it is connected."""
    while not stopping():
        try:
            await session(backoff)
        except retry_on as exc:
            delay = backoff.next_delay()
            on_failure(exc, delay)
        else:
            delay = backoff.next_delay()
        if not stopping():
            await asyncio.sleep(delay)


async def cancel_and_wait(*tasks: asyncio.Task[object] | asyncio.Task[None] | None) -> None:
    """Cancel the tasks and wait until each has finished (its cleanup included)."""
    live = [task for task in tasks if task is not None]
    for task in live:
        task.cancel()
    for task in live:
        with contextlib.suppress(asyncio.CancelledError):
            await task
