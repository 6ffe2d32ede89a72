"""A compiled workflow: its execution plan, and running it (thread-safe, once per trigger).

Built by `gateway.workflow.compiler`; fields holding selectors are resolved on every run, the
rest were validated once at load time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.workflow.definition import WorkflowDefinition, looks_like_selector
from gateway.workflow.errors import ParameterError, StepFailed
from gateway.workflow.steps.base import Step, StepFields


@dataclass(frozen=True, slots=True)
class WorkflowRun:
    outputs: dict[str, Any]
    passed: bool | None
    steps_ms: dict[str, float]


@dataclass(slots=True)
class PlannedStep:
    step: Step[Any]
    raw_fields: dict[str, Any]
    loaded: StepFields
    """The fields validated at load time (all of them, when nothing is dynamic)."""
    dynamic: dict[str, Any]
    """Fields holding selectors, resolved on every run."""
    trusted: dict[str, str] | None
    """When every dynamic field takes an engine-made value (an image, a step's detections):
    definition key -> field name, set on `loaded` per run without validating again."""
    depends: frozenset[str] = frozenset()
    """Steps whose outputs this step reads: when one is skipped, so is this one."""

    def fields(self, resolved: Mapping[str, Any]) -> StepFields:
        if self.trusted is not None:
            update = {self.trusted[key]: value for key, value in resolved.items()}
            return self.loaded.model_copy(update=update)
        return self.step.fields_model.model_validate({**self.raw_fields, **resolved})


def find_selectors(value: Any) -> list[str]:
    if looks_like_selector(value):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in find_selectors(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in find_selectors(item)]
    return []


def _resolve(value: Any, lookup: Mapping[str, Any]) -> Any:
    if isinstance(value, str) and value in lookup:
        return lookup[value]
    if isinstance(value, dict):
        return {key: _resolve(item, lookup) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, lookup) for item in value]
    return value


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def parameter_type_error(name: str, default: Any, value: Any) -> str | None:
    """A message when `value` cannot stand in for a parameter whose default is `default`:
    the wrong type, null where the default is not, or a number no float or int64 can hold."""
    wanted = _wanted(default)
    if wanted is None:
        return None
    kind, ok = wanted
    if value is None:
        return f"expects {kind}, got null"
    if not ok(value):
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:40]}..."
        return f"expects {kind}, got {type(value).__name__} {shown}"
    if isinstance(value, int) and not isinstance(value, bool):
        if isinstance(default, float) and not _fits_float(value):
            return f"expects {kind}, got an integer of {len(str(abs(value)))} digits"
        if isinstance(default, int) and not INT64_MIN <= value <= INT64_MAX:
            return f"expects {kind} within 64 bits, got one of {len(str(abs(value)))} digits"
    if isinstance(value, float) and not math.isfinite(value):
        return f"expects {kind}, got {value}"
    return None


def _fits_float(value: int) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _wanted(default: Any) -> tuple[str, Callable[[Any], bool]] | None:
    """What a parameter with this default accepts: its name, and a check."""
    if default is None:
        return None
    if isinstance(default, bool):
        return "a boolean", lambda v: isinstance(v, bool)
    if isinstance(default, int):
        return "an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)
    if isinstance(default, float):
        return "a number", lambda v: isinstance(v, int | float) and not isinstance(v, bool)
    if isinstance(default, str):
        return "a string", lambda v: isinstance(v, str)
    if isinstance(default, list):
        return "a list", lambda v: isinstance(v, list)
    if isinstance(default, dict):
        return "an object", lambda v: isinstance(v, dict)
    return None


class CompiledWorkflow:
    """A validated, ready-to-run workflow. `run` is thread-safe; build one per stream or share."""

    def __init__(
        self,
        definition: WorkflowDefinition,
        plan: list[PlannedStep],
        image_inputs: tuple[str, ...],
        parameters: dict[str, Any],
    ) -> None:
        self.definition = definition
        self._plan = plan
        self.image_inputs = image_inputs
        self.parameters = parameters
        self.output_selectors = [(output.name, output.selector) for output in definition.outputs]

    def step(self, name: str) -> Step[Any]:
        """A built step by name (its model, its tensor spec: for tools and benchmarks)."""
        for planned in self._plan:
            if planned.step.name == name:
                return planned.step
        raise KeyError(name)

    def bind(self, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults with `overrides` applied; unknown names and wrong types raise ParameterError."""
        values = dict(self.parameters)
        for name, value in (overrides or {}).items():
            if name not in self.parameters:
                known = ", ".join(sorted(self.parameters)) or "none"
                raise ParameterError(name, f"unknown parameter (known: {known})")
            problem = parameter_type_error(name, self.parameters[name], value)
            if problem is not None:
                raise ParameterError(name, problem)
            values[name] = float(value) if isinstance(self.parameters[name], float) else value
        return values

    def run(self, images: Mapping[str, Any], parameters: Mapping[str, Any]) -> WorkflowRun:
        """Run on `images` (name -> BGR uint8 array) with bound `parameters` (see `bind`).

        A step whose field reads a per-crop output runs once per crop and its outputs become
        lists; a step a flow-control step turned off, or one reading a skipped step, is skipped
        and its outputs are None."""
        lookup: dict[str, Any] = {f"$inputs.{name}": value for name, value in parameters.items()}
        for name in self.image_inputs:
            if name not in images:
                raise ValueError(f"missing image input {name!r}")
            lookup[f"$inputs.{name}"] = images[name]
        batched: set[str] = set()
        skipped: set[str] = set()
        steps_ms: dict[str, float] = {}
        for planned in self._plan:
            step = planned.step
            prefix = f"$steps.{step.name}"
            if step.name in skipped or planned.depends & skipped:
                skipped.add(step.name)
                lookup[f"{prefix}.*"] = None
                lookup.update({f"{prefix}.{key}": None for key in step.outputs})
                continue
            started = time.perf_counter()
            try:
                produced, per_crop = self._run_step(planned, lookup, batched)
            except Exception as exc:
                raise StepFailed(step.name, exc) from exc
            steps_ms[step.name] = (time.perf_counter() - started) * 1000.0
            lookup[f"{prefix}.*"] = produced
            for key, value in produced.items():
                lookup[f"{prefix}.{key}"] = value
                if per_crop or key in step.batch_outputs:
                    batched.add(f"{prefix}.{key}")
            if step.gated_steps() and not produced.get("continue", True):
                skipped |= step.gated_steps()
        outputs = {name: lookup[selector] for name, selector in self.output_selectors}
        verdict = outputs.get("pass")
        passed = None if verdict is None else bool(verdict)
        return WorkflowRun(outputs=outputs, passed=passed, steps_ms=steps_ms)

    @staticmethod
    def _run_step(
        planned: PlannedStep, lookup: Mapping[str, Any], batched: set[str]
    ) -> tuple[dict[str, Any], bool]:
        """The step's outputs, and whether it ran once per crop."""
        step = planned.step
        if not planned.dynamic:
            return step.run(planned.loaded), False
        per_crop = [
            key
            for key, value in planned.dynamic.items()
            if isinstance(value, str) and value in batched
        ]
        resolved = {key: _resolve(value, lookup) for key, value in planned.dynamic.items()}
        if not per_crop:
            return step.run(planned.fields(resolved)), False
        counts = {len(resolved[key]) for key in per_crop}
        if len(counts) > 1:
            raise ValueError(f"per-crop fields {per_crop} have different lengths {sorted(counts)}")
        results = []
        for index in range(counts.pop()):
            item = {**resolved, **{key: resolved[key][index] for key in per_crop}}
            results.append(step.run(planned.fields(item)))
        return {key: [result[key] for result in results] for key in step.outputs}, True
