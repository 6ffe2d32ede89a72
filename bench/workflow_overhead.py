"""What the workflow engine adds to a model call, and the batch CLI's throughput.

1. Overhead, one process, interleaved: a one-step workflow (onnx_classification on SqueezeNet
   from ../shared/models) run through `CompiledWorkflow.run` vs the same pre-processing
   (`to_tensor`) plus `InferenceSession.run` called directly on the same image. The difference
   is the engine's own cost (selectors, field validation, timings, output mapping). The model
   alone (session.run on the prepared tensor) is reported too.
2. Batch: `gateway workflow run` over a folder of 200 images (a subprocess, as a user runs it,
   so interpreter start-up and model load are included) vs a bare loop of imread +
   pre-processing + session.run over the same files.

    python -m bench.workflow_overhead [--runs 1000] [--images 200]

Writes bench/results/workflow_overhead.json and .md. Run by hand, not in tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from bench.report import summary, write_report
from gateway.workflow import Workflow
from gateway.workflow.preprocess import to_tensor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"
MODEL = SHARED / "squeezenet-imagenet" / "squeezenet1.1_fp32.onnx"
IMAGE = SHARED / "images" / "winml_dog.jpg"


def one_step_workflow() -> dict[str, Any]:
    return {
        "inputs": [{"type": "WorkflowImage", "name": "image"}],
        "steps": [
            {
                "type": "onnx_classification",
                "name": "cls",
                "image": "$inputs.image",
                "model": str(MODEL),
                "color_order": "BGR",
                "scale": 1.0,
                "mean": [104, 117, 123],
                "top_k": 1,
            }
        ],
        "outputs": [{"type": "JsonField", "name": "top", "selector": "$steps.cls.top"}],
    }


def measure_overhead(runs: int) -> dict[str, Any]:
    workflow = Workflow.from_specification(one_step_workflow())
    step = workflow.compiled.step("cls")  # the same session and tensor spec the engine uses
    session: ort.InferenceSession = step.model.session  # type: ignore[attr-defined]
    spec = step.spec  # type: ignore[attr-defined]
    input_name = session.get_inputs()[0].name
    image = cv2.imread(str(IMAGE))
    assert image is not None
    prepared = to_tensor(image, spec)
    images = {"image": image}
    parameters = workflow.compiled.bind({})

    def engine() -> None:
        workflow.compiled.run(images, parameters)

    def direct() -> None:
        session.run(None, {input_name: to_tensor(image, spec)})

    def model_only() -> None:
        session.run(None, {input_name: prepared})

    cases = {"engine": engine, "direct": direct, "model": model_only}
    for fn in cases.values():
        for _ in range(50):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for _ in range(runs):
        random.shuffle(order)
        for name in order:
            started = time.perf_counter()
            cases[name]()
            samples[name].append((time.perf_counter() - started) * 1000.0)
    paired = [e - d for e, d in zip(samples["engine"], samples["direct"], strict=True)]
    return {name: summary(values) for name, values in samples.items()} | {
        "paired_difference": summary(paired)
    }


def measure_batch(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        base = cv2.imread(str(IMAGE))
        assert base is not None
        rng = np.random.default_rng(1)
        for index in range(count):
            noisy = np.clip(base + rng.integers(0, 8, base.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"img_{index:04d}.jpg"), noisy)
        spec_path = Path(tmp) / "wf.yaml"
        spec_path.write_text(json.dumps(one_step_workflow()))

        workflow = Workflow.from_specification(one_step_workflow())
        step = workflow.compiled.step("cls")
        session = step.model.session  # type: ignore[attr-defined]
        spec = step.spec  # type: ignore[attr-defined]
        input_name = session.get_inputs()[0].name
        started = time.perf_counter()
        for path in sorted(folder.iterdir()):
            image = cv2.imread(str(path))
            assert image is not None
            session.run(None, {input_name: to_tensor(image, spec)})
        bare_s = time.perf_counter() - started

        results: dict[str, Any] = {"images": count, "bare_loop_s": bare_s}
        for threads in (1, 2):
            out = Path(tmp) / f"out{threads}"
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", "from gateway.cli import main; main()", "workflow", "run",
                 str(spec_path), str(folder), "-o", str(out), "--threads", str(threads)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(done.stderr)
            results[f"cli_threads_{threads}_s"] = elapsed
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    if not MODEL.is_file():
        sys.exit(f"needs the real models at {SHARED} (see shared/models/README.md)")
    overhead = measure_overhead(args.runs)
    batch = measure_batch(args.images)
    n = batch["images"]
    rate = {key: n / value for key, value in batch.items() if key.endswith("_s")}
    report = {
        "machine": platform.platform(),
        "onnxruntime": ort.__version__,
        "overhead": overhead,
        "batch": batch,
        "images_per_s": rate,
    }
    e, d, m = overhead["engine"], overhead["direct"], overhead["model"]
    lines = [
        f"# Workflow engine overhead (SqueezeNet 1.1, one step, {args.runs} interleaved runs)",
        "",
        "| | p50 ms | p99 ms |",
        "|---|---|---|",
        f"| model alone: session.run, prepared tensor | {m['p50_ms']:.3f} | {m['p99_ms']:.3f} |",
        f"| floor: to_tensor + session.run | {d['p50_ms']:.3f} | {d['p99_ms']:.3f} |",
        f"| engine: CompiledWorkflow.run | {e['p50_ms']:.3f} | {e['p99_ms']:.3f} |",
        f"| added by the engine (p50 of paired differences) | "
        f"{overhead['paired_difference']['p50_ms']:.3f} | "
        f"{overhead['paired_difference']['p99_ms']:.3f} |",
        "",
        f"Engine / floor p50: {e['p50_ms'] / d['p50_ms']:.3f}x",
        "",
        f"# Batch over {n} images (JPEG, 768x576)",
        "",
        "| | seconds | images/s |",
        "|---|---|---|",
        f"| bare loop: imread + to_tensor + session.run | {batch['bare_loop_s']:.2f} | "
        f"{rate['bare_loop_s']:.1f} |",
        f"| gateway workflow run --threads 1 (incl. start-up) | "
        f"{batch['cli_threads_1_s']:.2f} | {rate['cli_threads_1_s']:.1f} |",
        f"| gateway workflow run --threads 2 (incl. start-up) | "
        f"{batch['cli_threads_2_s']:.2f} | {rate['cli_threads_2_s']:.1f} |",
    ]
    write_report("workflow_overhead", report, lines)


if __name__ == "__main__":
    main()
