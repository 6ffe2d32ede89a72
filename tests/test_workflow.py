"""The workflow engine: golden outputs on real models; definition errors name step and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from gateway.sources.scene import BODY_BGR, WRONG_BODY_BGR
from gateway.workflow import (
    ModelRegistry,
    ParameterError,
    StepFailed,
    Workflow,
    WorkflowDefinitionError,
)
from tests.conftest import ROOT

DEMO_MODEL = ROOT / "gateway" / "defaults" / "part_classifier.onnx"


def spec(
    steps: list[dict[str, Any]],
    outputs: list[dict[str, Any]] | None = None,
    inputs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "version": "1.0",
        "inputs": inputs
        or [
            {"type": "WorkflowImage", "name": "image"},
            {"type": "WorkflowParameter", "name": "threshold", "default_value": 0.5},
        ],
        "steps": steps,
        "outputs": outputs or [{"type": "JsonField", "name": "out", "selector": "$steps.a.result"}],
    }


def classify(name: str = "cls", **fields: Any) -> dict[str, Any]:
    return {
        "type": "onnx_classification",
        "name": name,
        "image": "$inputs.image",
        "model": str(DEMO_MODEL),
        **fields,
    }


def expression(name: str, text: str, **variables: Any) -> dict[str, Any]:
    return {"type": "expression", "name": name, "expression": text, "variables": variables}


def problems_of(definition: dict[str, Any]) -> list[str]:
    with pytest.raises(WorkflowDefinitionError) as caught:
        Workflow.from_specification(definition)
    return [str(problem) for problem in caught.value.problems]


def test_pcb_classifier_golden_outputs(shared_models: Path) -> None:
    workflow = Workflow.from_specification(
        spec(
            [
                classify(
                    "pcb",
                    model=str(shared_models / "pcb-aoi" / "pcb-aoi.onnx"),
                    resize="crop",
                    resize_to=[256, 256],
                    color_order="BGR",
                    scale=1.0,
                    output="loss.1",
                    class_names=["Defective", "Normal"],
                )
            ],
            [{"type": "JsonField", "name": "top", "selector": "$steps.pcb.*"}],
        )
    )
    golden = {
        "Defective_02": ("Defective", 0.997),
        "Defective_25": ("Defective", 1.000),
        "Normal_33": ("Normal", 0.934),
        "Normal_35": ("Normal", 0.870),
    }
    for board, (label, confidence) in golden.items():
        result = workflow.run(image=shared_models / "pcb-aoi" / f"{board}.png")
        top = result["outputs"]["top"]
        assert top["top"] == label
        assert top["confidence"] == pytest.approx(confidence, abs=0.03)
        assert top["predictions"][0]["class"] == label


def test_squeezenet_golden_outputs(shared_models: Path) -> None:
    folder = shared_models / "squeezenet-imagenet"
    labels = [
        line.split(",", 1)[1].strip()
        for line in (folder / "Labels.txt").read_text().splitlines()
        if line.strip()
    ]
    workflow = Workflow.from_specification(
        spec(
            [
                classify(
                    "net",
                    model=str(folder / "squeezenet1.1_fp32.onnx"),
                    color_order="BGR",
                    scale=1.0,
                    mean=[104, 117, 123],
                    class_names=labels,
                )
            ],
            [
                {"type": "JsonField", "name": "top", "selector": "$steps.net.top"},
                {"type": "JsonField", "name": "confidence", "selector": "$steps.net.confidence"},
            ],
        )
    )
    images = shared_models / "images"
    for image, (label, confidence) in {
        "winml_dog.jpg": ("golden retriever", 0.99),
        "winml_hummingbird.jpg": ("hummingbird", 0.99),
        "winml_cat.jpg": ("Egyptian cat", 0.73),
    }.items():
        outputs = workflow.run(image=images / image)["outputs"]
        assert label in outputs["top"]
        assert outputs["confidence"] == pytest.approx(confidence, abs=0.03)


def test_parameters_default_override_and_reject_wrong_types() -> None:
    workflow = Workflow.from_specification(
        spec(
            [expression("a", "x > threshold", x=0.7, threshold="$inputs.threshold")],
        )
    )
    image = np.zeros((48, 64, 3), np.uint8)
    assert workflow.run(image=image)["outputs"]["out"] is True
    assert workflow.run(image=image, threshold=0.9)["outputs"]["out"] is False
    assert workflow.run(image=image, threshold=1)["outputs"]["out"] is False  # int for a float
    with pytest.raises(ParameterError, match="parameter 'threshold': expects a number, got str"):
        workflow.run(image=image, threshold="high")
    with pytest.raises(ParameterError, match="parameter 'thresold': unknown parameter"):
        workflow.run(image=image, thresold=0.2)


def test_pass_output_sets_the_verdict_and_timings_are_per_step() -> None:
    workflow = Workflow.from_specification(
        spec(
            [classify(), expression("a", "top == 'part'", top="$steps.cls.top")],
            [
                {"type": "JsonField", "name": "pass", "selector": "$steps.a.result"},
                {"type": "JsonField", "name": "class", "selector": "$steps.cls.top"},
            ],
        )
    )
    image = np.full((48, 64, 3), BODY_BGR, np.uint8)  # a (steel-blue) part fills the view
    result = workflow.run(image=image)
    assert result["outputs"]["class"] == "part"
    assert result["pass"] is True
    assert list(result["steps_ms"]) == ["cls", "a"]  # dependency order


def test_step_failure_names_the_step() -> None:
    workflow = Workflow.from_specification(spec([expression("a", "1 / zero", zero=0)]))
    with pytest.raises(StepFailed, match="step 'a' failed: ZeroDivisionError"):
        workflow.run(image=np.zeros((8, 8, 3), np.uint8))


def test_model_is_loaded_once_for_all_users() -> None:
    models = ModelRegistry()
    for _ in range(3):
        Workflow.from_specification(
            spec(
                [classify()], [{"type": "JsonField", "name": "out", "selector": "$steps.cls.top"}]
            ),
            models=models,
        )
    assert len(models) == 1


@pytest.mark.parametrize(
    ("steps", "outputs", "expected"),
    [
        (
            [{"type": "nonsense", "name": "a"}],
            None,
            "step 'a' field 'type': unknown step type 'nonsense' (known: barcode, color_area, ",
        ),
        (
            [expression("a", "x > 1", x="$inputs.nothing")],
            None,
            "step 'a' field 'variables': $inputs.nothing: no input named 'nothing'",
        ),
        (
            [expression("a", "x > 1", x="$steps.ghost.result")],
            None,
            "step 'a' field 'variables': $steps.ghost.result: no step named 'ghost'",
        ),
        (
            [expression("a", "x > 1", x="$steps..oops")],
            None,
            "step 'a' field 'variables': not a valid selector: '$steps..oops'",
        ),
        (
            [classify(), expression("a", "x", x="$steps.cls.colour")],
            None,
            "step 'a' field 'variables': $steps.cls.colour: step 'cls' has no output 'colour' "
            "(outputs: class_id, confidence, predictions, top)",
        ),
        (
            [classify(image="$inputs.threshold")],
            None,
            "step 'cls' field 'image': $inputs.threshold is a parameter, this field takes an image",
        ),
        (
            [expression("a", "x", x="$inputs.image")],
            None,
            "step 'a' field 'variables': $inputs.image is an image, this field takes a value",
        ),
        ([classify(model="missing.onnx")], None, "step 'cls' field 'model': model file not found"),
        ([classify(scale="big")], None, "step 'cls' field 'scale': Input should be a valid number"),
        (
            [classify(colour="RGB")],
            None,
            "step 'cls' field 'colour': Extra inputs are not permitted",
        ),
        (
            [classify(output="nope")],
            None,
            "step 'cls' field 'output': model has no output 'nope' (outputs: ['probabilities'])",
        ),
        ([expression("a", "x >", x=1)], None, "step 'a' field 'expression': Value error, invalid"),
        (
            [expression("a", "y > 1", x=1)],
            None,
            "step 'a' field 'expression': unknown name 'y' in expression (variables: x)",
        ),
        (
            [expression("a", "__import__('os').system('true')")],
            None,
            "step 'a' field 'expression': unknown function '__import__'",
        ),
        (
            [expression("a", "b", b="$steps.b.result"), expression("b", "a", a="$steps.a.result")],
            None,
            "steps form a cycle",
        ),
        ([expression("a", "1"), expression("a", "2")], None, "step 'a' field 'name': duplicate"),
        (
            [expression("a", "1")],
            [{"type": "JsonField", "name": "o", "selector": "$steps.zz.result"}],
            "field 'outputs.o.selector': no step named 'zz'",
        ),
        (
            [expression("a", "1")],
            [{"type": "JsonField", "name": "o", "selector": "$steps.a.res"}],
            "field 'outputs.o.selector': $steps.a.res: step 'a' has no output 'res'",
        ),
        (
            [expression("a", "1")],
            [{"type": "JsonField", "name": "o", "selector": "steps.a"}],
            "field 'outputs.o.selector': not a selector: 'steps.a'",
        ),
    ],
)
def test_definition_errors_name_step_and_field(
    steps: list[dict[str, Any]], outputs: list[dict[str, Any]] | None, expected: str
) -> None:
    found = problems_of(spec(steps, outputs))
    assert any(expected in problem for problem in found), found


def test_envelope_errors_name_the_step() -> None:
    found = problems_of(spec([{"type": "expression", "name": "bad name!", "expression": "1"}]))
    assert any("field 'steps.0.name'" in p and "should match pattern" in p for p in found), found
    missing_outputs = problems_of({"inputs": [], "steps": []})
    assert any("field 'outputs'" in p for p in missing_outputs), missing_outputs


def test_expression_cannot_reach_python_internals() -> None:
    workflow = Workflow.from_specification(spec([expression("a", "x.__class__", x=1)]))
    with pytest.raises(StepFailed):
        workflow.run(image=np.zeros((8, 8, 3), np.uint8))


def test_image_input_accepts_paths_and_arrays(tmp_path: Path) -> None:
    workflow = Workflow.from_specification(
        spec([classify()], [{"type": "JsonField", "name": "top", "selector": "$steps.cls.top"}])
    )
    image = np.full((48, 64, 3), WRONG_BODY_BGR, np.uint8)  # an orange part: wrong material
    path = tmp_path / "part.png"
    cv2.imwrite(str(path), image)
    assert workflow.run(image=path)["outputs"] == workflow.run(image=image)["outputs"]
    assert workflow.run(image=image)["outputs"]["top"] == "wrong_colour"
    with pytest.raises(ValueError, match="cannot read image"):
        workflow.run(image=tmp_path / "absent.png")
