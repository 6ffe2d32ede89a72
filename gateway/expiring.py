"""A bounded, expiring map: what a repeated request needs to be answered once.

Used for HTTP `Idempotency-Key` and async jobs (the result's future, then its serialised body)
and MQTT `trigger_id` redelivery (only that the id was seen). Bounded in count and age, so it
never grows without limit; callers keep small values in it, never frames.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class ExpiringMap(Generic[V]):
    def __init__(
        self, max_items: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._max_items = max_items
        self._ttl_s = ttl_s
        self._clock = clock

    def get(self, key: str) -> V | None:
        self._expire()
        entry = self._items.get(key)
        return None if entry is None else entry[1]

    def put(self, key: str, value: V) -> None:
        self._expire()
        self._items[key] = (self._clock(), value)
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
