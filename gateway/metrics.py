"""Prometheus metrics on a registry of the gateway's own (no global state): triggers by source
and outcome and latency histograms from the result bus; queue depth, camera and drop figures
read from the parts when scraped."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.model import InspectionResult
from gateway.snapshot import StreamSnapshot

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def outcome(result: InspectionResult) -> str:
    if result.error is not None:
        return result.error.code.name.lower()
    return {True: "pass", False: "fail", None: "done"}[result.passed]


class _LiveFigures(Collector):
    """Read at scrape time: nothing to keep in step."""

    def __init__(
        self,
        snapshots: Callable[[], Sequence[StreamSnapshot]],
        drops: Callable[[], Mapping[str, int]],
        queued: Callable[[], Mapping[str, int]],
        refused: Callable[[], Mapping[int, int]],
    ) -> None:
        self._snapshots = snapshots
        self._drops = drops
        self._queued = queued
        self._refused = refused

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "gateway_queue_depth", "triggers waiting or running", labels=["stream"]
        )
        connected = GaugeMetricFamily(
            "gateway_camera_connected", "1 when the camera delivers", labels=["stream"]
        )
        fps = GaugeMetricFamily(
            "gateway_camera_fps", "frames per second received", labels=["stream"]
        )
        age = GaugeMetricFamily(
            "gateway_camera_frame_age_seconds", "age of the newest frame", labels=["stream"]
        )
        reconnects = CounterMetricFamily(
            "gateway_camera_reconnects", "camera reconnections", labels=["stream"]
        )
        frames = CounterMetricFamily("gateway_camera_frames", "frames received", labels=["stream"])
        damaged = CounterMetricFamily(
            "gateway_camera_damaged_frames",
            "frames skipped as damaged (decoder errors, to the next clean keyframe)",
            labels=["stream"],
        )
        for snapshot in self._snapshots():
            stream_id, health = snapshot.id, snapshot.camera
            depth.add_metric([stream_id], snapshot.pending)
            connected.add_metric([stream_id], 1.0 if health.connected else 0.0)
            fps.add_metric([stream_id], health.fps)
            if health.last_frame_age_ms is not None:
                age.add_metric([stream_id], health.last_frame_age_ms / 1000.0)
            reconnects.add_metric([stream_id], health.reconnects)
            frames.add_metric([stream_id], health.frames)
            damaged.add_metric([stream_id], health.damaged_frames)
        dropped = CounterMetricFamily(
            "gateway_results_dropped", "results not delivered to a sink", labels=["sink"]
        )
        queued = GaugeMetricFamily(
            "gateway_results_queued", "results waiting for a sink (MQTT outbox)", labels=["sink"]
        )
        for sink, count in self._drops().items():
            dropped.add_metric([sink], count)
        for sink, count in self._queued().items():
            queued.add_metric([sink], count)
        refused = CounterMetricFamily(
            "gateway_modbus_requests_refused",
            "Modbus requests answered with an exception before reaching the data",
            labels=["exception"],
        )
        for exception, count in self._refused().items():
            refused.add_metric([str(exception)], count)
        yield from (
            depth,
            connected,
            fps,
            age,
            reconnects,
            frames,
            damaged,
            dropped,
            queued,
            refused,
        )


UNKNOWN_STREAM_LABEL = "_unknown"
"""The `stream` label of triggers for streams that do not exist: names from the wire never
become label values (a client could otherwise grow the registry without bound)."""
RUNTIME_STREAM_LABEL = "_runtime"
"""The `stream` label of streams added at run time: their ids are new UUIDs each time, so they
share one label instead of growing the registry."""


class GatewayMetrics:
    def __init__(
        self,
        stream_ids: Collection[str],
        snapshots: Callable[[], Sequence[StreamSnapshot]],
        drops: Callable[[], Mapping[str, int]],
        queued: Callable[[], Mapping[str, int]] = dict,
        refused: Callable[[], Mapping[int, int]] = dict,
        runtime_ids: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        self._stream_ids = frozenset(stream_ids)
        self._runtime_ids = runtime_ids
        self.registry = CollectorRegistry(auto_describe=True)
        self.triggers = Counter(
            "gateway_triggers", "results by stream, source and outcome",
            ["stream", "source", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "gateway_result_latency_seconds", "trigger received to result ready",
            ["stream", "source"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.frame_age = Histogram(
            "gateway_frame_age_seconds", "trigger time minus capture time of the frame used",
            ["stream"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.registry.register(_LiveFigures(snapshots, drops, queued, refused))

    def _label(self, stream_id: str) -> str:
        if stream_id in self._stream_ids:
            return stream_id
        return RUNTIME_STREAM_LABEL if stream_id in self._runtime_ids() else UNKNOWN_STREAM_LABEL

    def observe(self, result: InspectionResult) -> None:
        """A result-bus sink."""
        source = result.origin.value
        stream = self._label(result.stream)
        self.triggers.labels(stream, source, outcome(result)).inc()
        if result.error is None:
            self.latency.labels(stream, source).observe(result.timings.total_ms / 1000.0)
        if result.frame_age_ms is not None:
            self.frame_age.labels(stream).observe(max(result.frame_age_ms, 0.0) / 1000.0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
