"""The step library on real models and on images the tests draw themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from gateway.workflow import ModelRegistry, Workflow, WorkflowDefinitionError
from gateway.workflow.steps.detection import decode

IMAGE = {"type": "WorkflowImage", "name": "image"}


def run(steps: list[Any], image: Any, **outputs: str) -> dict[str, Any]:
    workflow = Workflow.from_specification(
        {
            "inputs": [IMAGE],
            "steps": steps,
            "outputs": [
                {"type": "JsonField", "name": name, "selector": selector}
                for name, selector in outputs.items()
            ],
        }
    )
    return workflow.run(image=image)


def boxes(detections: dict[str, Any]) -> dict[str, tuple[float, list[float]]]:
    found = {}
    for p in detections["predictions"]:
        x1, y1 = p["x"] - p["width"] / 2, p["y"] - p["height"] / 2
        found[p["class"]] = (p["confidence"], [x1, y1, x1 + p["width"], y1 + p["height"]])
    return found


GOLDEN = {
    "yolov8n-coco-int8/yolov8n_int8.onnx": {
        "dog": (0.96, [131, 219, 307, 539]),
        "bicycle": (0.88, [132, 137, 568, 420]),
        "car": (0.59, [467, 74, 692, 170]),
    },
    "yolo11n-coco-int8-320/yolo11n_int8_320.onnx": {
        "dog": (0.81, [131, 201, 311, 541]),
        "bicycle": (0.70, [133, 137, 563, 425]),
        "car": (0.68, [463, 78, 696, 169]),
    },
}


@pytest.mark.parametrize("model", sorted(GOLDEN))
def test_yolo_golden_outputs(shared_models: Path, model: str) -> None:
    detect = {
        "type": "onnx_object_detection",
        "name": "det",
        "image": "$inputs.image",
        "model": str(shared_models / model),
        "confidence": 0.25,
        "iou_threshold": 0.45,
        "class_agnostic_nms": True,
    }
    result = run([detect], shared_models / "images" / "yolox_dog.jpg", d="$steps.det.predictions")
    detections = result["outputs"]["d"]
    assert detections["image"] == {"width": 768, "height": 576}
    found = boxes(detections)
    assert set(found) == set(GOLDEN[model])
    for name, (score, box) in GOLDEN[model].items():
        assert found[name][0] == pytest.approx(score, abs=0.03), name
        assert found[name][1] == pytest.approx(box, abs=4), name
    first = detections["predictions"][0]
    assert set(first) == {"x", "y", "width", "height", "confidence", "class", "class_id",
                          "detection_id"}  # fmt: skip
    assert first["class"] == "dog" and first["class_id"] == 16


def test_yolo_class_filter_and_class_aware_nms(shared_models: Path) -> None:
    detect = {
        "type": "yolo_detection",
        "name": "det",
        "image": "$inputs.image",
        "model": str(shared_models / "yolo11n-coco-int8-320" / "yolo11n_int8_320.onnx"),
    }
    image = shared_models / "images" / "yolox_dog.jpg"
    aware = boxes(run([detect], image, d="$steps.det.predictions")["outputs"]["d"])
    assert {"dog", "bicycle", "car", "truck"} <= set(aware)  # truck overlaps car, another class
    only = run([{**detect, "class_filter": ["dog", "car"]}], image, n="$steps.det.count")
    assert only["outputs"]["n"] == 2


def test_a_parameter_drives_a_typed_field_and_is_type_checked_at_load(shared_models: Path) -> None:
    definition: dict[str, Any] = {
        "inputs": [
            IMAGE,
            {"type": "WorkflowParameter", "name": "confidence", "default_value": 0.3},
        ],
        "steps": [
            {
                "type": "onnx_object_detection",
                "name": "det",
                "image": "$inputs.image",
                "model": str(shared_models / "yolo11n-coco-int8-320" / "yolo11n_int8_320.onnx"),
                "confidence": "$inputs.confidence",
            }
        ],
        "outputs": [{"type": "JsonField", "name": "n", "selector": "$steps.det.count"}],
    }
    workflow = Workflow.from_specification(definition)
    image = shared_models / "images" / "yolox_dog.jpg"
    assert workflow.run(image=image)["outputs"]["n"] == 4  # dog, bicycle, car, truck
    assert workflow.run(image=image, confidence=0.75)["outputs"]["n"] == 1  # the dog
    definition["inputs"][1]["default_value"] = 1.5
    with pytest.raises(
        WorkflowDefinitionError, match="step 'det' field 'confidence': Input should"
    ):
        Workflow.from_specification(definition)


def test_v5_layout_decodes_like_v8(shared_models: Path) -> None:
    """A v5 head is [1, N, 5+nc] with objectness; the same boxes in that layout decode alike."""
    models = ModelRegistry()
    model = models.get(shared_models / "yolo11n-coco-int8-320" / "yolo11n_int8_320.onnx")
    image = cv2.imread(str(shared_models / "images" / "yolox_dog.jpg"))
    assert image is not None
    tensor = cv2.dnn.blobFromImage(image, 1 / 255.0, (320, 320), swapRB=True)
    (raw,) = model.run(tensor)
    rows = raw[0].T  # [N, 84]
    objectness = np.full((rows.shape[0], 1), 0.5, np.float32)
    v5 = np.concatenate([rows[:, :4], objectness, rows[:, 4:] * 2.0], axis=1)[np.newaxis]
    boxes_v8, scores_v8, ids_v8 = decode(raw, "auto", 0.25)
    boxes_v5, scores_v5, ids_v5 = decode(v5, "auto", 0.25)
    assert len(ids_v8) > 0
    np.testing.assert_array_equal(ids_v5, ids_v8)
    np.testing.assert_allclose(scores_v5, scores_v8, rtol=1e-6)
    np.testing.assert_allclose(boxes_v5, boxes_v8)


def qr_image(*texts: str) -> np.ndarray[Any, Any]:
    tiles = []
    for text in texts:
        code = cv2.QRCodeEncoder.create().encode(text)
        code = cv2.resize(code, None, fx=6, fy=6, interpolation=cv2.INTER_NEAREST)
        tiles.append(cv2.copyMakeBorder(code, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=255))
    height = max(t.shape[0] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, height - t.shape[0], 0, 0, cv2.BORDER_CONSTANT, value=255)
             for t in tiles]  # fmt: skip
    return cv2.cvtColor(np.hstack(tiles), cv2.COLOR_GRAY2BGR)


EAN_L = ["0001101", "0011001", "0010011", "0111101", "0100011",
         "0110001", "0101111", "0111011", "0110111", "0001011"]  # fmt: skip
EAN_PARITY = ["LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG",
              "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL"]  # fmt: skip


def ean13_image(first12: str) -> tuple[np.ndarray[Any, Any], str]:
    """An EAN-13 barcode drawn from the standard's encoding tables."""
    digits = [int(d) for d in first12]
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    digits.append(check)
    right = ["".join("1" if b == "0" else "0" for b in code) for code in EAN_L]
    bits = "101"
    for digit, parity in zip(digits[1:7], EAN_PARITY[digits[0]], strict=True):
        bits += EAN_L[digit] if parity == "L" else right[digit][::-1]
    bits += "01010" + "".join(right[d] for d in digits[7:]) + "101"
    row = np.array([0 if b == "1" else 255 for b in bits], np.uint8)
    bars = np.repeat(np.tile(row, (120, 1)), 2, axis=1)  # OpenCV reads 2 px modules best
    image = cv2.copyMakeBorder(bars, 30, 30, 40, 40, cv2.BORDER_CONSTANT, value=255)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), "".join(map(str, digits))


def test_qr_code_and_barcode_are_read() -> None:
    result = run(
        [{"type": "roboflow_core/qr_code_detector@v1", "name": "qr", "images": "$inputs.image"}],
        qr_image("SN-000123"),
        value="$steps.qr.value",
        predictions="$steps.qr.predictions",
    )
    assert result["outputs"]["value"] == "SN-000123"
    (prediction,) = result["outputs"]["predictions"]["predictions"]
    assert prediction["data"] == "SN-000123" and prediction["class"] == "qr_code"
    assert prediction["x"] == pytest.approx(40 + 21 * 6 / 2 + 12, abs=15)  # v1 QR: 21 modules

    image, number = ean13_image("400638133393")
    found = run([{"type": "barcode", "name": "bc", "image": "$inputs.image"}], image,
                value="$steps.bc.value", types="$steps.bc.types")["outputs"]  # fmt: skip
    assert found["value"] == number == "4006381333931"
    assert found["types"] == ["EAN_13"]

    blank = np.full((200, 200, 3), 255, np.uint8)
    nothing = run([{"type": "qr_code", "name": "qr", "image": "$inputs.image"}], blank,
                  value="$steps.qr.value", values="$steps.qr.values")["outputs"]  # fmt: skip
    assert nothing == {"value": None, "values": []}


def test_steps_on_dynamic_crops_run_once_per_crop() -> None:
    image = qr_image("LEFT-1", "RIGHT-2")
    steps = [
        {"type": "qr_code", "name": "find", "image": "$inputs.image"},
        {"type": "dynamic_crop", "name": "crop", "image": "$inputs.image",
         "predictions": "$steps.find.predictions", "padding": 20},
        {"type": "qr_code", "name": "read", "image": "$steps.crop.crops"},
        {"type": "color_area", "name": "dark", "image": "$steps.crop.crops",
         "lower": [0, 0, 0], "upper": [179, 255, 60]},
        {"type": "expression", "name": "verdict",
         "expression": "len(values) == 2 and all(v for v in values)",
         "variables": {"values": "$steps.read.value"}},
    ]  # fmt: skip
    outputs = run(steps, image, values="$steps.read.value", dark="$steps.dark.fraction",
                  crops="$steps.crop.crops", ok="$steps.verdict.result")["outputs"]  # fmt: skip
    assert sorted(outputs["values"]) == ["LEFT-1", "RIGHT-2"]
    assert len(outputs["crops"]) == 2 and all(c.ndim == 3 for c in outputs["crops"])
    assert all(0.2 < fraction < 0.8 for fraction in outputs["dark"])
    assert outputs["ok"] is True


def test_detections_filter_by_class_area_and_zone(shared_models: Path) -> None:
    detect = {
        "type": "onnx_object_detection",
        "name": "det",
        "image": "$inputs.image",
        "model": str(shared_models / "yolo11n-coco-int8-320" / "yolo11n_int8_320.onnx"),
        "class_agnostic_nms": True,
    }
    image = shared_models / "images" / "yolox_dog.jpg"

    def kept(**fields: Any) -> list[str]:
        keep = {"type": "detections_filter", "name": "keep",
                "predictions": "$steps.det.predictions", **fields}  # fmt: skip
        outputs = run([detect, keep], image, d="$steps.keep.predictions", n="$steps.keep.count")
        names = sorted(p["class"] for p in outputs["outputs"]["d"]["predictions"])
        assert outputs["outputs"]["n"] == len(names)
        return names

    assert kept() == ["bicycle", "car", "dog"]
    assert kept(classes=["dog"]) == ["dog"]
    assert kept(confidence=0.75) == ["dog"]
    assert kept(min_area=100_000) == ["bicycle"]
    assert kept(max_area=30_000) == ["car"]
    assert kept(zone=[[400, 0], [768, 0], [768, 200], [400, 200]]) == ["car"]


def test_continue_if_skips_the_gated_steps_and_their_readers() -> None:
    steps = [
        {"type": "qr_code", "name": "qr", "image": "$inputs.image"},
        {"type": "continue_if", "name": "gate", "expression": "value is not None",
         "variables": {"value": "$steps.qr.value"}, "next_steps": ["measure"]},
        {"type": "color_area", "name": "measure", "image": "$inputs.image",
         "lower": [0, 0, 0], "upper": [179, 255, 60]},
        {"type": "expression", "name": "verdict", "expression": "fraction > 0.1",
         "variables": {"fraction": "$steps.measure.fraction"}},
    ]  # fmt: skip
    outputs = {"pass": "$steps.verdict.result", "fraction": "$steps.measure.fraction"}
    seen = run(steps, qr_image("PART-9"), **outputs)
    assert seen["pass"] is True and seen["outputs"]["fraction"] > 0.1
    assert set(seen["steps_ms"]) == {"qr", "gate", "measure", "verdict"}
    blank = run(steps, np.full((120, 120, 3), 255, np.uint8), **outputs)
    assert blank["outputs"] == {"pass": None, "fraction": None} and blank["pass"] is None
    assert set(blank["steps_ms"]) == {"qr", "gate"}


def test_measurements_on_drawn_shapes(tmp_path: Path) -> None:
    image = np.full((300, 400, 3), 255, np.uint8)
    cv2.rectangle(image, (10, 10), (109, 59), (0, 0, 255), -1)  # red, 100 x 50
    cv2.circle(image, (250, 150), 40, (0, 0, 0), -1)
    cv2.rectangle(image, (300, 220), (379, 259), (0, 0, 0), -1)  # 80 x 40, black
    template = image[200:280, 280:400].copy()
    cv2.imwrite(str(tmp_path / "template.png"), template)
    steps = [
        {"type": "color_area", "name": "red", "image": "$inputs.image",
         "lower": [0, 120, 120], "upper": [10, 255, 255]},
        {"type": "contours", "name": "shapes", "image": "$inputs.image", "invert": True,
         "min_area": 100},
        {"type": "template_match", "name": "find", "image": "$inputs.image",
         "template": str(tmp_path / "template.png"), "threshold": 0.9},
    ]  # fmt: skip
    out = run(steps, image, red="$steps.red.*", shapes="$steps.shapes.*",
              find="$steps.find.*")["outputs"]  # fmt: skip
    assert out["red"]["area_px"] == 100 * 50
    assert out["red"]["fraction"] == pytest.approx(5000 / 120000, abs=1e-6)
    assert out["shapes"]["count"] == 3  # the red box is dark in grey too
    assert out["shapes"]["areas"][0] == pytest.approx(np.pi * 40**2, rel=0.03)
    assert out["shapes"]["largest_width"] == pytest.approx(80, abs=2)
    assert out["find"]["found"] is True and out["find"]["score"] > 0.99
    assert (out["find"]["x"], out["find"]["y"]) == (340.0, 240.0)


def test_visualize_draws_boxes_and_verdict() -> None:
    image = qr_image("BOXED")
    steps = [
        {"type": "qr_code", "name": "qr", "image": "$inputs.image"},
        {"type": "visualize", "name": "viz", "image": "$inputs.image",
         "predictions": "$steps.qr.predictions", "passed": False},
    ]  # fmt: skip
    drawn = run(steps, image, drawn="$steps.viz.image")["outputs"]["drawn"]
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert not np.array_equal(drawn, image)
    assert tuple(drawn[5, 5]) == (54, 67, 244)  # the FAIL banner's colour, top left
    (prediction,) = run(steps[:1], image, p="$steps.qr.predictions")["outputs"]["p"]["predictions"]
    x1 = round(prediction["x"] - prediction["width"] / 2)
    y_mid = round(prediction["y"])
    assert tuple(drawn[y_mid, x1]) != tuple(image[y_mid, x1])  # a box edge was drawn


def test_ocr_reads_a_printed_lot_code() -> None:
    pytest.importorskip("rapidocr", reason="the ocr extra is not installed")
    label = np.full((140, 560, 3), 255, np.uint8)
    cv2.putText(label, "LOT A113-2024", (20, 90), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 3,
                cv2.LINE_AA)  # fmt: skip
    steps = [
        {"type": "ocr", "name": "ocr", "image": "$inputs.image"},
        {"type": "expression", "name": "lot", "expression": "'A113-2024' in text",
         "variables": {"text": "$steps.ocr.text"}},
    ]  # fmt: skip
    out = run(steps, label, text="$steps.ocr.text", lines="$steps.ocr.lines",
              found="$steps.lot.result")["outputs"]  # fmt: skip
    assert out["text"].replace(" ", "") == "LOTA113-2024"
    assert out["found"] is True
    assert all(line["confidence"] > 0.8 for line in out["lines"])


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({"type": "onnx_object_detection", "name": "det", "image": "$inputs.image",
          "model": "missing.onnx"}, "step 'det' field 'model': model file not found"),
        ({"type": "onnx_object_detection", "name": "det", "image": "$inputs.image",
          "model": "MODEL", "class_filter": ["unicorn"]},
         "step 'det' field 'class_filter': unknown classes ['unicorn']"),
        ({"type": "onnx_object_detection", "name": "det", "image": "$inputs.threshold",
          "model": "MODEL"}, "step 'det' field 'image': $inputs.threshold is a parameter"),
        ({"type": "continue_if", "name": "gate", "expression": "True", "next_steps": ["ghost"]},
         "step 'gate' field 'next_steps': no step named 'ghost'"),
        ({"type": "detections_filter", "name": "f", "predictions": "$steps.gate.predictions",
          "zone": [[0, 0], [1, 1]]}, "step 'f' field 'zone': Value error, a zone needs at least 3"),
        ({"type": "template_match", "name": "t", "image": "$inputs.image",
          "template": "nowhere.png"}, "step 't' field 'template': cannot read image"),
        ({"type": "static_crop", "name": "c", "image": "$inputs.image", "x_center": 1,
          "y_center": 1, "width": 0, "height": 1}, "step 'c' field 'width': Input should be"),
        ({"type": "ocr", "name": "o", "image": "$inputs.image", "language": "fr"},
         "step 'o' field 'language': Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_step_definition_errors(shared_models: Path, step: dict[str, Any], expected: str) -> None:
    model = str(shared_models / "yolo11n-coco-int8-320" / "yolo11n_int8_320.onnx")
    step = {key: model if value == "MODEL" else value for key, value in step.items()}
    definition: dict[str, Any] = {
        "inputs": [IMAGE, {"type": "WorkflowParameter", "name": "threshold", "default_value": 0.5}],
        "steps": [step],
        "outputs": [{"type": "JsonField", "name": "x", "selector": f"$steps.{step['name']}.*"}],
    }
    with pytest.raises(WorkflowDefinitionError) as caught:
        Workflow.from_specification(definition)
    assert any(str(problem).startswith(expected) for problem in caught.value.problems), [
        str(p) for p in caught.value.problems
    ]


def test_ocr_reading_order_keeps_a_row_together_across_any_band_edge() -> None:
    from gateway.workflow.steps.ocr import reading_order

    def line(text: str, x: float, y: float) -> dict[str, Any]:
        return {"text": text, "box": [[x, y], [x + 40, y], [x + 40, y + 20], [x, y + 20]]}

    found = [line("2024", 120, 49.8), line("LOT", 10, 50.3), line("next", 10, 90)]
    assert [entry["text"] for entry in reading_order(found)] == ["LOT", "2024", "next"]
