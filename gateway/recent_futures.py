"""A bounded, expiring map from a key to the future of its result.

Used wherever a repeated request must be answered once: HTTP `Idempotency-Key`, async HTTP jobs,
MQTT `trigger_id` redelivery. Bounded in count and age, so it never grows without limit.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class RecentFutures(Generic[T]):
    def __init__(
        self, max_items: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._items: OrderedDict[str, tuple[float, asyncio.Future[T]]] = OrderedDict()
        self._max_items = max_items
        self._ttl_s = ttl_s
        self._clock = clock

    def get(self, key: str) -> asyncio.Future[T] | None:
        self._expire()
        entry = self._items.get(key)
        return None if entry is None else entry[1]

    def put(self, key: str, future: asyncio.Future[T]) -> None:
        self._expire()
        self._items[key] = (self._clock(), future)
        self._items.move_to_end(key)
        while len(self._items) > self._max_items:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def _expire(self) -> None:
        cutoff = self._clock() - self._ttl_s
        while self._items:
            key, (stored, _) = next(iter(self._items.items()))
            if stored >= cutoff:
                break
            del self._items[key]
