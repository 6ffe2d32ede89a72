"""A lean install works: a fresh virtualenv with the package alone (no dev tools, no extras)
runs `gateway demo --headless --duration 10`, as `pip install` or `pipx install` users get it."""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

from tests.conftest import ROOT

DEV_ONLY = ("pytest", "mypy", "ruff", "playwright", "hypothesis", "schemathesis", "onnx")


def test_the_package_alone_runs_the_demo(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(ROOT)],
        check=True, timeout=600, capture_output=True, text=True,
    )  # fmt: skip
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"],
        check=True, timeout=60, capture_output=True, text=True,
    )  # fmt: skip
    installed = {entry["name"].lower() for entry in json.loads(listed.stdout)}
    assert not installed & set(DEV_ONLY), installed & set(DEV_ONLY)
    done = subprocess.run(
        [str(env_dir / "bin" / "gateway"), "demo", "--headless", "--duration", "10",
         "--port", "0", "--modbus-port", "0", "--opcua-port", "0"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.rsplit("demo summary: ", 1)[1])
    assert summary["plc"]["parts"] >= 3 and summary["plc"]["accuracy"] == 1.0
