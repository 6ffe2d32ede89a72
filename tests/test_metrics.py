"""/metrics in Prometheus format, read back with prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import first_frame, make_config, running_gateway


async def test_metrics_count_triggers_latency_and_camera() -> None:
    async with running_gateway(make_config()) as (gateway, client, published):
        await first_frame(gateway)
        for _ in range(3):
            assert (await client.post("/streams/cam/trigger")).status_code == 200
        rejected = await client.post("/streams/cam/trigger", json={"parameters": {"x": 1}})
        assert rejected.status_code == 422
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

        def value(name: str, **labels: str) -> float:
            return samples[(name, tuple(sorted(labels.items())))]

        outcomes = {"pass": 0, "fail": 0, "done": 0}
        for result in published[:3]:
            outcomes[{True: "pass", False: "fail", None: "done"}[result.passed]] += 1
        for name, count in outcomes.items():
            if count:
                assert value("gateway_triggers_total", stream="cam", source="http",
                             outcome=name) == count  # fmt: skip
        assert value("gateway_triggers_total", stream="cam", source="http",
                     outcome="bad_request") == 1  # fmt: skip
        assert value("gateway_result_latency_seconds_count", stream="cam", source="http") == 3
        assert value("gateway_frame_age_seconds_count", stream="cam") == 3
        assert value("gateway_queue_depth", stream="cam") == 0
        assert value("gateway_camera_connected", stream="cam") == 1
        assert value("gateway_camera_frames_total", stream="cam") >= 1
        assert value("gateway_results_dropped_total", sink="history") == 0
