"""Roboflow's own CLI (`inference-cli`, pinned; installed by `make test` in a virtualenv of its
own because it pins an older pydantic) processing a folder of images through the gateway:
`inference workflows process-images-directory --api_url <gateway>`, unmodified."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, gateway_in_thread, make_config
from tests.test_http_workflows import qr_png, qr_workflows

CLI = Path(os.environ.get("ROBOFLOW_CLI", ROOT / ".venv-roboflow-cli" / "bin" / "inference"))
KEY = "cli-key-1"


@pytest.fixture
def cli() -> Path:
    if not CLI.exists():
        if os.environ.get("CI"):
            pytest.fail(f"Roboflow's CLI is missing at {CLI}: `make test` installs it")
        pytest.skip(f"Roboflow's CLI is not installed at {CLI} (`make test` installs it)")
    return CLI


def test_process_images_directory_against_the_gateway(cli: Path, tmp_path: Path) -> None:
    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    for index in range(20):
        (images / f"part_{index:02d}.png").write_bytes(qr_png(f"SN-{index:02d}"))
    config = make_config(workflows=qr_workflows("tests/part_present.yaml"), http={"api_key": KEY})
    with gateway_in_thread(config) as (_, url, _):
        done = subprocess.run(
            [
                str(cli), "workflows", "process-images-directory",
                "-i", str(images), "-o", str(out),
                "--api_url", url, "--api-key", KEY,
                "--workspace_name", "plant", "--workflow_id", "qr",
            ],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
            env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for index in range(20):
        result = json.loads((out / f"part_{index:02d}.png" / "results.json").read_text())
        assert result["serial"] == f"SN-{index:02d}" and result["pass"] is True
    with (out / "aggregated_results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["serial"] for row in rows) == [f"SN-{index:02d}" for index in range(20)]
