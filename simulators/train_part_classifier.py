"""Train the demo's part classifier on the synthetic conveyor and export it as a tiny ONNX model.

The model looks at the inspection window in the middle of the image and says `empty`, `part` or
`wrong_colour` (a part of the wrong material): the mean colour of the window, then a softmax
regression trained here with numpy on frames whose ground truth the scene knows. It is the
project's own model (no download), small
(well under 1 KB), and deterministic: running this script again writes the same file.

    python -m simulators.train_part_classifier [--output gateway/defaults/part_classifier.onnx]

Needs the `onnx` package (dev extra) to write the file; the gateway needs only onnxruntime.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gateway.sources.scene import ConveyorScene
from gateway.workflow.preprocess import TensorSpec, to_tensor

CLASSES = ("empty", "part", "wrong_colour")
INPUT_W, INPUT_H = 64, 48
# The inspection window, in model-input pixels: the centre quarter of the image.
WINDOW_ROWS = (18, 30)
WINDOW_COLS = (24, 40)
SPEC = TensorSpec(width=INPUT_W, height=INPUT_H, color_order="RGB", scale=1.0 / 255.0)
DEFAULT_OUTPUT = (
    Path(__file__).resolve().parent.parent / "gateway" / "defaults" / "part_classifier.onnx"
)


def window_label(scene: ConveyorScene, frame_index: int) -> int:
    """Ground truth: what covers at least half the window (a part, of which colour), else empty."""
    x0 = scene.width * WINDOW_COLS[0] / INPUT_W
    x1 = scene.width * WINDOW_COLS[1] / INPUT_W
    half = scene.part_size / 2
    for part in scene.parts(frame_index):
        overlap = min(x1, part.center_x + half) - max(x0, part.center_x - half)
        if overlap >= 0.5 * (x1 - x0):
            return 2 if part.defect == "wrong_colour" else 1
    return 0


def features(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Exactly what the ONNX graph computes before its linear layer."""
    tensor = to_tensor(image, SPEC)[0]
    window = tensor[:, WINDOW_ROWS[0] : WINDOW_ROWS[1], WINDOW_COLS[0] : WINDOW_COLS[1]]
    means: npt.NDArray[np.float64] = window.mean(axis=(1, 2)).astype(np.float64)
    return means


def dataset(
    scene: ConveyorScene, frames: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    x = np.stack([features(scene.render(i)) for i in range(frames)])
    y = np.array([window_label(scene, i) for i in range(frames)], dtype=np.int64)
    return x, y


def train(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.int64], steps: int = 3000, lr: float = 2.0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Softmax regression by full-batch gradient descent (deterministic)."""
    n, d = x.shape
    k = len(CLASSES)
    weights = np.zeros((d, k))
    bias = np.zeros(k)
    onehot = np.eye(k)[y]
    class_weight = n / (k * np.maximum(np.bincount(y, minlength=k), 1))
    sample_weight = class_weight[y][:, None]
    for _ in range(steps):
        logits = x @ weights + bias
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        grad = (probs - onehot) * sample_weight / n
        weights -= lr * (x.T @ grad)
        bias -= lr * grad.sum(axis=0)
    return weights, bias


def accuracy(
    weights: npt.NDArray[np.float64],
    bias: npt.NDArray[np.float64],
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.int64],
) -> float:
    return float(np.mean(np.argmax(x @ weights + bias, axis=1) == y))


def export(weights: npt.NDArray[np.float64], bias: npt.NDArray[np.float64], output: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, values: list[int]) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(values, dtype=np.int64), name)

    nodes = [
        helper.make_node(
            "Slice", ["image", "starts", "ends", "axes"], ["window"], name="inspection_window"
        ),
        helper.make_node("ReduceMean", ["window"], ["mean_rgb"], axes=[2, 3], keepdims=0),
        helper.make_node("Gemm", ["mean_rgb", "W", "B"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "part_classifier",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, INPUT_H, INPUT_W])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, len(CLASSES)])],
        initializer=[
            const("starts", [WINDOW_ROWS[0], WINDOW_COLS[0]]),
            const("ends", [WINDOW_ROWS[1], WINDOW_COLS[1]]),
            const("axes", [2, 3]),
            numpy_helper.from_array(weights.astype(np.float32), "W"),
            numpy_helper.from_array(bias.astype(np.float32), "B"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="inspection-gateway"
    )
    model.ir_version = 8
    names = "{" + ", ".join(f"{i}: '{name}'" for i, name in enumerate(CLASSES)) + "}"
    helper.set_model_props(model, {"names": names, "imgsz": f"[{INPUT_H}, {INPUT_W}]"})
    onnx.checker.check_model(model)
    output.write_bytes(model.SerializeToString())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.train_part_classifier",
        description="Train the demo part classifier on synthetic frames and export it to ONNX.",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--frames", type=int, default=1200, help="training frames (default 1200)")
    args = parser.parse_args(argv)
    train_scene = ConveyorScene(640, 480, part_period_frames=30, defect_every=4)
    x, y = dataset(train_scene, args.frames)
    weights, bias = train(x, y)
    # Held out: another resolution and pace than the training frames.
    test_scene = ConveyorScene(800, 600, part_period_frames=24, defect_every=3)
    x_test, y_test = dataset(test_scene, 600)
    export(weights, bias, args.output)
    print(
        f"wrote {args.output} ({args.output.stat().st_size} bytes); "
        f"accuracy train {accuracy(weights, bias, x, y):.3f}, "
        f"held-out {accuracy(weights, bias, x_test, y_test):.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
