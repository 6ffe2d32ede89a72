"""Prometheus metrics on a registry of the gateway's own (no global state): triggers by source
and outcome and latency histograms from the result bus; queue depth, camera and drop figures
read from the parts when scraped."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.model import InspectionResult
from gateway.stream import Stream

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def outcome(result: InspectionResult) -> str:
    if result.error is not None:
        return result.error.code.name.lower()
    return {True: "pass", False: "fail", None: "done"}[result.passed]


class _LiveFigures(Collector):
    """Read at scrape time: nothing to keep in step."""

    def __init__(
        self, streams: Mapping[str, Stream], drops: Callable[[], Mapping[str, int]]
    ) -> None:
        self._streams = streams
        self._drops = drops

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
        for stream_id, stream in self._streams.items():
            health = stream.capture.health()
            depth.add_metric([stream_id], stream.pending)
            connected.add_metric([stream_id], 1.0 if health.connected else 0.0)
            fps.add_metric([stream_id], health.fps)
            if health.last_frame_age_ms is not None:
                age.add_metric([stream_id], health.last_frame_age_ms / 1000.0)
            reconnects.add_metric([stream_id], health.reconnects)
            frames.add_metric([stream_id], health.frames)
        dropped = CounterMetricFamily(
            "gateway_results_dropped", "results not delivered to a sink", labels=["sink"]
        )
        for sink, count in self._drops().items():
            dropped.add_metric([sink], count)
        yield from (depth, connected, fps, age, reconnects, frames, dropped)


class GatewayMetrics:
    def __init__(
        self, streams: Mapping[str, Stream], drops: Callable[[], Mapping[str, int]]
    ) -> None:
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
        self.registry.register(_LiveFigures(streams, drops))

    def observe(self, result: InspectionResult) -> None:
        """A result-bus sink."""
        source = result.origin.value
        self.triggers.labels(result.stream, source, outcome(result)).inc()
        if result.error is None:
            self.latency.labels(result.stream, source).observe(result.timings.total_ms / 1000.0)
        if result.frame_age_ms is not None:
            self.frame_age.labels(result.stream).observe(max(result.frame_age_ms, 0.0) / 1000.0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
