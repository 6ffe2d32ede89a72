"""Workflows: load a definition, compile it once, run it on images.

from gateway.workflow import Workflow
wf = Workflow.load("inspect.yaml")
result = wf.run(image="part.png", confidence=0.5)   # plain Python data
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from gateway.workflow.compiler import compile_workflow
from gateway.workflow.errors import (
    DefinitionProblem,
    ParameterError,
    StepFailed,
    WorkflowDefinitionError,
)
from gateway.workflow.models import ModelRegistry
from gateway.workflow.plan import CompiledWorkflow, WorkflowRun

__all__ = [
    "CompiledWorkflow",
    "ModelRegistry",
    "ParameterError",
    "StepFailed",
    "Workflow",
    "WorkflowDefinitionError",
    "WorkflowRun",
    "compile_workflow",
    "read_definition",
]


def read_definition(path: Path) -> dict[str, Any]:
    """A definition file, JSON or YAML (chosen by suffix; YAML is a superset anyway)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkflowDefinitionError(
            [DefinitionProblem(exc.strerror or str(exc))], str(path)
        ) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else YAML(typ="safe").load(text)
    except (ValueError, YAMLError) as exc:
        raise WorkflowDefinitionError(
            [DefinitionProblem(f"cannot parse: {exc}")], str(path)
        ) from None
    if not isinstance(data, dict):
        raise WorkflowDefinitionError([DefinitionProblem("must be a mapping")], str(path))
    return data


class Workflow:
    """The Python API: a compiled workflow with its own model registry."""

    def __init__(self, compiled: CompiledWorkflow) -> None:
        self.compiled = compiled

    @classmethod
    def load(cls, path: str | Path, *, models: ModelRegistry | None = None) -> Workflow:
        path = Path(path)
        return cls.from_specification(
            read_definition(path), base_dir=path.resolve().parent, models=models, label=str(path)
        )

    @classmethod
    def from_specification(
        cls,
        specification: Mapping[str, Any],
        *,
        base_dir: str | Path = ".",
        models: ModelRegistry | None = None,
        label: str | None = None,
    ) -> Workflow:
        compiled = compile_workflow(
            specification,
            models=models if models is not None else ModelRegistry(),
            base_dir=Path(base_dir).resolve(),
            label=label,
        )
        return cls(compiled)

    def run(self, **inputs: Any) -> dict[str, Any]:
        """Images as arrays (BGR) or file paths, parameters by name; returns the outputs
        plus `pass` (when the workflow defines it) and per-step timings."""
        images = {
            name: _as_image(inputs.pop(name))
            for name in self.compiled.image_inputs
            if name in inputs
        }
        run = self.compiled.run(images, self.compiled.bind(inputs))
        return {"outputs": run.outputs, "pass": run.passed, "steps_ms": run.steps_ms}


def _as_image(value: Any) -> np.ndarray[Any, Any]:
    if isinstance(value, np.ndarray):
        return value
    image = cv2.imread(str(value), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {value}")
    return image
