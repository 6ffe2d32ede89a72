"""The exposure clock as a unit: presentation times mapped by the least delay seen, so a burst
of queued frames is stamped as old as it is, and the mapping follows the window."""

from __future__ import annotations

import pytest

from gateway.exposure import ExposureClock


def test_a_burst_at_connect_is_stamped_by_the_camera_time_not_the_arrival() -> None:
    clock = ExposureClock(latency_s=0.035)
    # frames exposed every 33 ms from t=0; the first four arrive together at 1.0 s (queued),
    # then each 35 ms after its exposure
    exposures = [i * 0.033 for i in range(40)]
    arrivals = [1.0, 1.0, 1.0, 1.0] + [t + 0.035 for t in exposures[4:]]
    for arrival, exposure in zip(arrivals, exposures, strict=True):
        clock.observe(arrival, exposure + 5.0)  # the camera's clock starts anywhere
    first = clock.exposed_at(arrivals[0], exposures[0] + 5.0)
    assert first == pytest.approx(0.0, abs=1e-9)  # not 1.0 - 0.035
    assert clock.exposed_at(arrivals[-1], exposures[-1] + 5.0) == pytest.approx(exposures[-1])


def test_without_presentation_times_arrival_less_latency() -> None:
    clock = ExposureClock(latency_s=0.04)
    assert clock.observe(2.0, None) is False
    assert clock.exposed_at(2.0, None) == pytest.approx(1.96)


def test_the_minimum_leaves_the_window_so_drift_is_followed() -> None:
    clock = ExposureClock(window=3)
    clock.observe(1.0, 0.9)  # offset 0.1, the least
    clock.observe(2.0, 1.8)
    clock.observe(3.0, 2.8)
    assert clock.exposed_at(3.0, 2.8) == pytest.approx(2.9)
    assert clock.observe(4.0, 3.8) is True  # 0.1 left the window: 0.2 is the least now
    assert clock.exposed_at(4.0, 3.8) == pytest.approx(4.0)


def test_sender_report_times_are_used_only_when_the_clocks_are_in_step() -> None:
    clock = ExposureClock(latency_s=0.04)
    # the camera's wall clock says 0.03 s before arrival: that, without latency_ms
    exposed, source = clock.estimate(10.0, 1000.0, 5.0, 999.97)
    assert exposed == pytest.approx(9.97) and source == "sender_report"
    # after arrival, or far before it: not believed; the RTP or arrival estimate instead
    assert clock.estimate(10.0, 1000.0, None, 1000.5)[1] == "arrival"
    assert clock.estimate(10.0, 1000.0, 5.0, 900.0)[1] == "presentation"
