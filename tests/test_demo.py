"""`gateway demo`: the whole line on simulators, in a real subprocess, bounded in time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.conftest import ROOT


def run_demo(
    *args: str, timeout_s: float = 90, terminal: bool = False
) -> subprocess.CompletedProcess[str]:
    """The demo as a subprocess; `terminal` makes its output count as a terminal (rich's
    TTY_COMPATIBLE), as when a user runs it in one."""
    ports = ["--port", "0", "--modbus-port", "0", "--opcua-port", "0"]
    env = {**os.environ, "TTY_COMPATIBLE": "1" if terminal else "0"}
    return subprocess.run(
        [sys.executable, "-c", "from gateway.cli import main; main()", "demo", *ports, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
    )


def summary_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    summary_lines = [line for line in done.stdout.splitlines() if line.startswith("demo summary:")]
    assert len(summary_lines) == 1, done.stdout
    summary: dict[str, Any] = json.loads(summary_lines[0].removeprefix("demo summary:"))
    return summary


def test_headless_demo_inspects_every_part_and_agrees_with_the_ground_truth() -> None:
    done = run_demo("--headless", "--duration", "10", "--rate", "3")
    assert done.returncode == 0, done.stderr
    summary_lines = [line for line in done.stdout.splitlines() if line.startswith("demo summary:")]
    assert len(summary_lines) == 1, done.stdout
    summary = json.loads(summary_lines[0].removeprefix("demo summary:"))
    plc = summary["plc"]
    # One part a second on the conveyor: the PLC triggers each as the photo-eye sees it.
    assert plc["parts"] >= 7, plc
    assert plc["inspected"] == plc["parts"], plc
    assert plc["missed"] == 0 and plc["timeouts"] == 0 and plc["mismatched"] == 0, plc
    assert plc["ng"] >= 1, plc  # every 4th part is defective
    assert plc["accuracy"] >= 0.95, plc  # serial and defect both right, from the registers
    plc_lines = [line for line in done.stdout.splitlines() if line.startswith("PLC  part")]
    assert len(plc_lines) == plc["parts"], done.stdout
    for protocol, tally in summary["protocols"].items():
        assert tally["results"] >= 5, (protocol, tally)
        assert tally["errors"] == 0, (protocol, tally)
        assert tally["p50_ms"] is not None, (protocol, tally)


def test_demo_shows_a_table_of_results_per_protocol() -> None:
    done = run_demo("--duration", "3", "--rate", "3", terminal=True)
    assert done.returncode == 0, done.stderr
    assert "Recent results per protocol" in done.stdout, done.stdout
    for protocol in ("Modbus (PLC)", "OPC UA", "MQTT", "HTTP"):
        assert protocol in done.stdout
    assert "dashboard: http://127.0.0.1:" in done.stdout


def test_piped_demo_prints_a_status_line_every_few_seconds() -> None:
    """Without a terminal (a pipe, systemd) there is no live table: a line per part, and the
    table's figures in a line every 5 s."""
    done = run_demo("--duration", "7", "--rate", "3")
    assert done.returncode == 0, done.stderr
    assert "Recent results per protocol" not in done.stdout
    lines = done.stdout.splitlines()
    assert any(line.startswith("PLC  part ") for line in lines)  # a line per part
    (status,) = [line for line in lines if line.startswith("PLC ") and " | " in line]
    for protocol in ("Modbus (PLC)", "OPC UA", "MQTT", "HTTP"):
        assert f"| {protocol} " in status
    assert "stopping…" in done.stdout
    assert "Requested session timeout" not in done.stdout + done.stderr  # asyncua's notices


def test_demo_on_an_rtsp_camera_inspects_every_part(rtsp_ready: None) -> None:
    """`--camera rtsp`: the conveyor as H.264 from GStreamer's RTSP server, read as a real
    camera with its delay; `next` with exposure stamps still shows each part it triggers on."""
    done = run_demo("--camera", "rtsp", "--headless", "--duration", "10", "--rate", "2")
    assert "camera: rtsp://127.0.0.1:" in done.stdout, done.stdout
    plc = summary_of(done)["plc"]
    assert plc["parts"] >= 7 and plc["inspected"] == plc["parts"], plc
    assert plc["missed"] == 0 and plc["timeouts"] == 0 and plc["mismatched"] == 0, plc
    wrong = [line for line in done.stdout.splitlines() if "(truth: " in line]
    assert plc["accuracy"] >= 0.95, (plc, wrong)
