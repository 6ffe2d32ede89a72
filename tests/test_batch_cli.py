"""`gateway workflow run` over a generated folder and a generated video, as a user runs it."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tests.conftest import run_cli

SPEC = {
    "version": "1.0",
    "inputs": [
        {"type": "WorkflowImage", "name": "image"},
        {"type": "WorkflowParameter", "name": "prefix", "default_value": "SN-"},
    ],
    "steps": [
        {"type": "qr_code", "name": "qr", "image": "$inputs.image"},
        {"type": "expression", "name": "verdict",
         "expression": "serial is not None and serial.startswith(prefix)",
         "variables": {"serial": "$steps.qr.value", "prefix": "$inputs.prefix"}},
        {"type": "visualize", "name": "viz", "image": "$inputs.image",
         "predictions": "$steps.qr.predictions"},
    ],
    "outputs": [
        {"type": "JsonField", "name": "serial", "selector": "$steps.qr.value"},
        {"type": "JsonField", "name": "pass", "selector": "$steps.verdict.result"},
        {"type": "JsonField", "name": "drawn", "selector": "$steps.viz.image"},
    ],
}  # fmt: skip


def qr_frame(text: str | None, size: int = 320) -> np.ndarray[Any, Any]:
    frame = np.full((size, size, 3), 255, np.uint8)
    if text is not None:
        code = cv2.QRCodeEncoder.create().encode(text)
        code = cv2.resize(code, None, fx=5, fy=5, interpolation=cv2.INTER_NEAREST)
        h, w = code.shape
        frame[40 : 40 + h, 40 : 40 + w] = cv2.cvtColor(code, cv2.COLOR_GRAY2BGR)
    return frame


def make_inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    spec = tmp_path / "inspect.json"
    spec.write_text(json.dumps(SPEC))
    shots = tmp_path / "shots"
    (shots / "line2").mkdir(parents=True)
    for index in range(5):
        cv2.imwrite(str(shots / f"part_{index}.png"), qr_frame(f"SN-{index:03d}"))
    cv2.imwrite(str(shots / "line2" / "empty.png"), qr_frame(None))
    cv2.imwrite(str(shots / "line2" / "wrong.jpg"), qr_frame("XX-9"))
    video = tmp_path / "line.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (320, 320))
    for index in range(25):
        writer.write(qr_frame(f"SN-V{index:02d}"))
    writer.release()
    return spec, shots, video


def test_folder_and_video_give_results_and_an_aggregated_csv(tmp_path: Path) -> None:
    spec, shots, video = make_inputs(tmp_path)
    out = tmp_path / "out"
    done = run_cli("workflow", "run", str(spec), str(shots), str(video), "--every", "10",
                       "--threads", "2", "-o", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "10 processed, 0 already done, 0 failed, of 10" in done.stderr
    first = json.loads((out / "shots" / "part_0" / "results.json").read_text())
    assert first["outputs"]["serial"] == "SN-000" and first["pass"] is True
    assert first["outputs"]["drawn"] == "drawn.jpg"  # written beside, not inlined
    drawn = cv2.imread(str(out / "shots" / "part_0" / "drawn.jpg"))
    assert drawn is not None and drawn.shape == (320, 320, 3)
    frames = sorted(p.parent.name for p in (out / "line.avi").glob("*/results.json"))
    assert frames == ["frame_000000", "frame_000010", "frame_000020"]
    with (out / "aggregated_results.csv").open() as handle:
        header = next(csv.reader(handle))
        handle.seek(0)
        rows = list(csv.DictReader(handle))
    assert header == ["input", "frame", "pass", "serial", "drawn"]  # one `pass`: the verdict
    assert [r["serial"] for r in rows] == [
        "", "XX-9", "SN-000", "SN-001", "SN-002", "SN-003", "SN-004", "SN-V00", "SN-V10", "SN-V20"
    ]  # fmt: skip
    assert [r["pass"] for r in rows][:3] == ["False", "False", "True"]
    assert rows[-1]["frame"] == "20" and rows[0]["input"].endswith("line2/empty.png")
    lines = (out / "aggregated_results.jsonl").read_text().splitlines()
    assert len(lines) == 10 and json.loads(lines[2])["outputs"]["serial"] == "SN-000"
    assert not (out / "failures.jsonl").exists()


def test_resume_after_an_interruption_processes_only_the_rest(tmp_path: Path) -> None:
    spec, shots, _ = make_inputs(tmp_path)
    out = tmp_path / "out"
    assert run_cli("workflow", "run", str(spec), str(shots), "-o", str(out)).returncode == 0
    # as if the run had been killed after the first four: the rest never got a results.json
    results = sorted(out.glob("shots/**/results.json"))
    assert len(results) == 7
    kept = {path: path.stat().st_mtime_ns for path in results[:4]}
    for path in results[4:]:
        path.unlink()
    again = run_cli("workflow", "run", str(spec), str(shots), "-o", str(out), "-p", "prefix=XX")
    assert again.returncode == 0, again.stderr
    assert "3 processed, 4 already done, 0 failed, of 7" in again.stderr
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in kept.items())
    with (out / "aggregated_results.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 7


def test_unreadable_inputs_are_listed_and_exit_nonzero(tmp_path: Path) -> None:
    spec, shots, _ = make_inputs(tmp_path)
    (shots / "broken.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "out"
    failed = run_cli("workflow", "run", str(spec), str(shots), "-o", str(out))
    assert failed.returncode == 1
    assert "7 processed, 0 already done, 1 failed, of 8" in failed.stderr
    assert "broken.png: cannot read image" in failed.stderr
    (failure,) = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert failure["input"].endswith("broken.png") and failure["error"] == "cannot read image"
    bad_param = run_cli("workflow", "run", str(spec), str(shots), "-o", str(out), "-p", "x=1")
    assert bad_param.returncode == 1
    assert "parameter 'x': unknown parameter (known: prefix)" in bad_param.stderr
    missing = run_cli("workflow", "run", str(spec), str(tmp_path / "nowhere"), "-o", str(out))
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr


def test_help_explains_the_command() -> None:
    shown = run_cli("workflow", "run", "--help")
    assert shown.returncode == 0
    assert "aggregated_results.csv" in shown.stdout and "--every" in shown.stdout
