"""Trigger-to-result latency per source over the last minutes, for the dashboard's chart.

Prometheus histograms (gateway/metrics.py) are for scraping; this keeps the raw figures of the
last `window_s` seconds so the dashboard can show exact p50/p99 per protocol without a
Prometheus server. Bounded in age and count.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from gateway.model import InspectionResult

KEPT_S = 600.0
"""How far back the window reaches (the dashboard shows the last five minutes)."""


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (not empty)."""
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


class LatencyWindow:
    def __init__(
        self,
        window_s: float = KEPT_S,
        max_samples: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, str, float]] = deque(maxlen=max_samples)
        self._clock = clock

    def observe(self, result: InspectionResult) -> None:
        """A result-bus sink: answered triggers only (an error's latency is not the line's)."""
        if result.error is None:
            self._samples.append((self._clock(), result.origin.value, result.timings.total_ms))

    def summary(self, window_s: float, buckets: int = 10) -> dict[str, Any]:
        """p50/p99 per source over the last `window_s`, overall and in `buckets` time slices."""
        now = self._clock()
        window_s = min(window_s, self.window_s)
        start = now - window_s
        while self._samples and self._samples[0][0] < now - self.window_s:
            self._samples.popleft()
        width = window_s / buckets
        per_source: dict[str, list[list[float]]] = {}
        for at, source, ms in self._samples:
            if at >= start:
                slices = per_source.setdefault(source, [[] for _ in range(buckets)])
                slices[min(int((at - start) / width), buckets - 1)].append(ms)
        sources: dict[str, Any] = {}
        for source, slices in sorted(per_source.items()):
            everything = sorted(ms for chunk in slices for ms in chunk)
            sources[source] = {
                "count": len(everything),
                "p50_ms": round(percentile(everything, 0.5), 3),
                "p99_ms": round(percentile(everything, 0.99), 3),
                "series": [
                    None
                    if not chunk
                    else {
                        "p50_ms": round(percentile(sorted(chunk), 0.5), 3),
                        "p99_ms": round(percentile(sorted(chunk), 0.99), 3),
                        "count": len(chunk),
                    }
                    for chunk in slices
                ],
            }
        return {"window_s": window_s, "bucket_s": width, "sources": sources}
