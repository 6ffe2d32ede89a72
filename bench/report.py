"""What every benchmark shares: the trivial workflow, server processes, percentiles, reports."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

TRIVIAL_WORKFLOW: dict[str, Any] = {
    "inputs": [{"type": "WorkflowImage", "name": "image"}],
    "steps": [{"type": "expression", "name": "rule", "expression": "1 == 1"}],
    "outputs": [{"type": "JsonField", "name": "pass", "selector": "$steps.rule.result"}],
}
"""One step that costs microseconds: the figure is the gateway's own cost."""


def summary(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    return {
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "n": len(ordered),
    }


def write_report(name: str, report: dict[str, Any], lines: list[str]) -> None:
    """bench/results/<name>.json and .md, and the table on stdout."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2))
    table = "\n".join(lines)
    (RESULTS / f"{name}.md").write_text(table + "\n")
    print(table)


def start_child(module: str, *args: str) -> subprocess.Popen[str]:
    """`python -m <module> <args>`, returned once it prints READY; it stops when stdin closes.
    Its result history goes to a directory of its own, never the user's."""
    data_dir = tempfile.mkdtemp(prefix="gateway-bench-")
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "GATEWAY_DATA_DIR": data_dir},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    while line and line.strip() != "READY":
        line = process.stdout.readline()
    return process


def stop_child(process: subprocess.Popen[str]) -> None:
    if process.stdin is not None:
        process.stdin.close()
    process.wait(timeout=20)
