"""Definition -> execution plan, once at start. Every problem is found here, not on a trigger:
unknown step types, bad fields, selectors that point nowhere or at the wrong kind, cycles."""

from __future__ import annotations

import graphlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.workflow.definition import (
    ImageInput,
    ParameterInput,
    Selector,
    WorkflowDefinition,
    looks_like_selector,
)
from gateway.workflow.errors import (
    DefinitionProblem,
    FieldError,
    ParameterError,
    StepFailed,
    WorkflowDefinitionError,
)
from gateway.workflow.models import ModelRegistry
from gateway.workflow.steps import step_types
from gateway.workflow.steps.base import EngineKind, ImageKind, Step, StepContext, StepFields


@dataclass(frozen=True, slots=True)
class WorkflowRun:
    outputs: dict[str, Any]
    passed: bool | None
    steps_ms: dict[str, float]


@dataclass(slots=True)
class _PlannedStep:
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


def _find_selectors(value: Any) -> list[str]:
    if looks_like_selector(value):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _find_selectors(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _find_selectors(item)]
    return []


def _resolve(value: Any, lookup: Mapping[str, Any]) -> Any:
    if isinstance(value, str) and value in lookup:
        return lookup[value]
    if isinstance(value, dict):
        return {key: _resolve(item, lookup) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, lookup) for item in value]
    return value


def _load_time_fields(
    step_cls: type[Step[Any]],
    raw_fields: Mapping[str, Any],
    dynamic: Mapping[str, Any],
    parameters: Mapping[str, Any],
) -> dict[str, Any]:
    """The fields to validate at load time: a field reading a parameter gets the parameter's
    default (so its type is checked now), one reading a step output gets the field's own
    default, and a required one keeps its selector (image and detections fields accept it)."""
    values = dict(raw_fields)
    for key, value in dynamic.items():
        selector = Selector.parse(value) if isinstance(value, str) else None
        info = step_cls.fields_model.field_named(key)
        if selector is None or info is None or _kind_check(step_cls, key):
            continue
        if selector.scope == "inputs" and parameters.get(selector.name) is not None:
            values[key] = parameters[selector.name]
        elif not info.is_required():
            del values[key]
    return values


def _trusted_fields(step_cls: type[Step[Any]], dynamic: Mapping[str, Any]) -> dict[str, str] | None:
    """Key -> field name when every dynamic field is an image, or detections from a step."""
    names: dict[str, str] = {}
    for key, value in dynamic.items():
        name = step_cls.fields_model.canonical_name(key)
        if name is None or not isinstance(value, str):
            return None
        metadata = step_cls.fields_model.model_fields[name].metadata
        kinds = [m for m in metadata if isinstance(m, EngineKind)]
        selector = Selector.parse(value)
        if not kinds or selector is None:
            return None
        if not isinstance(kinds[0], ImageKind) and selector.scope != "steps":
            return None
        names[key] = name
    return names


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc).replace(".[", "[") or "(fields)"


def _kind_check(step_cls: type[Step[Any]], field_name: str) -> bool:
    info = step_cls.fields_model.field_named(field_name)
    return info is not None and any(isinstance(m, ImageKind) for m in info.metadata)


def _parameter_type_error(name: str, default: Any, value: Any) -> str | None:
    """A message when `value` cannot stand in for a parameter whose default is `default`."""
    if default is None or value is None:
        return None
    if isinstance(default, bool):
        ok, wanted = isinstance(value, bool), "a boolean"
    elif isinstance(default, int):
        ok, wanted = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok, wanted = isinstance(value, int | float) and not isinstance(value, bool), "a number"
    elif isinstance(default, str):
        ok, wanted = isinstance(value, str), "a string"
    elif isinstance(default, list):
        ok, wanted = isinstance(value, list), "a list"
    elif isinstance(default, dict):
        ok, wanted = isinstance(value, dict), "an object"
    else:
        return None
    return None if ok else f"expects {wanted}, got {type(value).__name__} {value!r}"


class CompiledWorkflow:
    """A validated, ready-to-run workflow. `run` is thread-safe; build one per stream or share."""

    def __init__(
        self,
        definition: WorkflowDefinition,
        plan: list[_PlannedStep],
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
            problem = _parameter_type_error(name, self.parameters[name], value)
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
        planned: _PlannedStep, lookup: Mapping[str, Any], batched: set[str]
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


def compile_workflow(
    specification: Mapping[str, Any] | WorkflowDefinition,
    *,
    models: ModelRegistry,
    base_dir: Path,
    label: str | None = None,
) -> CompiledWorkflow:
    """Validate and build a workflow; raise WorkflowDefinitionError listing every problem."""
    problems: list[DefinitionProblem] = []

    def fail() -> WorkflowDefinitionError:
        return WorkflowDefinitionError(problems, label)

    if isinstance(specification, WorkflowDefinition):
        definition = specification
    else:
        try:
            definition = WorkflowDefinition.model_validate(specification)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                loc = error["loc"]
                step_name = None
                if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
                    raw_steps = specification.get("steps") or []
                    raw = raw_steps[loc[1]] if loc[1] < len(raw_steps) else {}
                    step_name = raw.get("name") if isinstance(raw, dict) else None
                problems.append(DefinitionProblem(error["msg"], step_name, _loc(loc)))
            raise fail() from None

    image_inputs: list[str] = []
    parameters: dict[str, Any] = {}
    seen_inputs: set[str] = set()
    for item in definition.inputs:
        if item.name in seen_inputs:
            problems.append(
                DefinitionProblem(f"duplicate input name {item.name!r}", None, "inputs")
            )
        seen_inputs.add(item.name)
        if isinstance(item, ImageInput):
            image_inputs.append(item.name)
        elif isinstance(item, ParameterInput):
            parameters[item.name] = item.default_value

    known_types = step_types()
    step_names = [step.name for step in definition.steps]
    built: dict[str, Step[Any]] = {}
    dependencies: dict[str, set[str]] = {}
    planned: dict[str, _PlannedStep] = {}
    context = StepContext(models=models, base_dir=base_dir)

    for step_def in definition.steps:
        name = step_def.name
        if step_names.count(name) > 1 and name in dependencies:
            problems.append(DefinitionProblem("duplicate step name", name, "name"))
            continue
        dependencies[name] = set()
        step_cls = known_types.get(step_def.type)
        if step_cls is None:
            known = ", ".join(sorted({cls.type_names[0] for cls in known_types.values()}))
            problems.append(
                DefinitionProblem(
                    f"unknown step type {step_def.type!r} (known: {known})", name, "type"
                )
            )
            continue
        raw_fields = step_def.fields()
        dynamic: dict[str, Any] = {}
        selector_ok = True
        for field_name, value in raw_fields.items():
            if field_name in step_cls.reference_fields:
                continue
            selectors = _find_selectors(value)
            if selectors:
                dynamic[field_name] = value
            wants_image = _kind_check(step_cls, field_name)
            for text in selectors:
                problem = _check_selector(
                    text,
                    name,
                    step_names,
                    image_inputs,
                    parameters,
                    wants_image,
                    known_types,
                    definition,
                )
                if problem is not None:
                    problems.append(DefinitionProblem(problem, name, field_name))
                    selector_ok = False
                    continue
                selector = Selector.parse(text)
                if selector is not None and selector.scope == "steps":
                    dependencies[name].add(selector.name)
        try:
            fields = step_cls.fields_model.model_validate(
                _load_time_fields(step_cls, raw_fields, dynamic, parameters)
            )
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                problems.append(DefinitionProblem(error["msg"], name, _loc(error["loc"])))
            continue
        if not selector_ok:
            continue
        try:
            step = step_cls(name, fields, context)
        except FieldError as exc:
            problems.append(DefinitionProblem(str(exc), name, exc.field))
            continue
        except Exception as exc:
            problems.append(DefinitionProblem(f"{type(exc).__name__}: {exc}", name, None))
            continue
        built[name] = step
        planned[name] = _PlannedStep(
            step, raw_fields, fields, dynamic, _trusted_fields(step_cls, dynamic)
        )

    # A flow-control step runs before the steps it gates.
    for name, step in built.items():
        for gated in step.gated_steps():
            if gated not in dependencies:
                problems.append(DefinitionProblem(f"no step named {gated!r}", name, "next_steps"))
            elif gated == name:
                problems.append(DefinitionProblem("a step cannot gate itself", name, "next_steps"))
            else:
                dependencies[gated].add(name)

    # Step outputs named by selectors must exist (known only once steps are built).
    for step_def in definition.steps:
        for field_name, value in step_def.fields().items():
            if step_def.name in built and field_name in built[step_def.name].reference_fields:
                continue
            for text in _find_selectors(value):
                problem = _check_output_name(text, built)
                if problem is not None:
                    problems.append(DefinitionProblem(problem, step_def.name, field_name))

    for output in definition.outputs:
        selector = Selector.parse(output.selector)
        where = f"outputs.{output.name}.selector"
        if selector is None:
            problems.append(DefinitionProblem(f"not a selector: {output.selector!r}", None, where))
        elif selector.scope == "inputs" and selector.name not in seen_inputs:
            problems.append(DefinitionProblem(f"no input named {selector.name!r}", None, where))
        elif selector.scope == "steps":
            if selector.name not in step_names:
                problems.append(DefinitionProblem(f"no step named {selector.name!r}", None, where))
            elif selector.output is None:
                problems.append(
                    DefinitionProblem("name an output: $steps.<step>.<output> or .*", None, where)
                )
            else:
                problem = _check_output_name(output.selector, built)
                if problem is not None:
                    problems.append(DefinitionProblem(problem, None, where))

    try:
        order = list(graphlib.TopologicalSorter(dependencies).static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        problems.append(DefinitionProblem(f"steps form a cycle: {cycle}", exc.args[1][0], None))
        order = []
    if problems:
        raise fail()
    plan = [planned[name] for name in order]
    for planned_step in plan:
        read = [
            Selector.parse(t) for v in planned_step.dynamic.values() for t in _find_selectors(v)
        ]
        planned_step.depends = frozenset(
            sel.name for sel in read if sel is not None and sel.scope == "steps"
        )
    return CompiledWorkflow(definition, plan, tuple(image_inputs), parameters)


def _check_selector(
    text: str,
    step_name: str,
    step_names: list[str],
    image_inputs: list[str],
    parameters: Mapping[str, Any],
    wants_image: bool,
    known_types: Mapping[str, type[Step[Any]]],
    definition: WorkflowDefinition,
) -> str | None:
    selector = Selector.parse(text)
    if selector is None:
        return f"not a valid selector: {text!r} (use $inputs.<name> or $steps.<step>.<output>)"
    if selector.scope == "inputs":
        if selector.name in image_inputs:
            return None if wants_image else f"{text} is an image, this field takes a value"
        if selector.name in parameters:
            return f"{text} is a parameter, this field takes an image" if wants_image else None
        return f"{text}: no input named {selector.name!r}"
    if selector.name == step_name:
        return f"{text}: a step cannot use its own outputs"
    if selector.name not in step_names:
        return f"{text}: no step named {selector.name!r}"
    if selector.output is None:
        return f"{text}: name an output ($steps.{selector.name}.<output>)"
    if wants_image:
        target = next(s for s in definition.steps if s.name == selector.name)
        cls = known_types.get(target.type)
        if cls is not None and selector.output not in cls.image_outputs:
            return f"{text} is not an image, this field takes an image"
    return None


def _check_output_name(text: str, built: Mapping[str, Step[Any]]) -> str | None:
    selector = Selector.parse(text)
    if selector is None or selector.scope != "steps" or selector.output in (None, "*"):
        return None
    step = built.get(selector.name)
    if step is None or selector.output in step.outputs:
        return None
    return (
        f"{text}: step {selector.name!r} has no output {selector.output!r} "
        f"(outputs: {', '.join(sorted(step.outputs))})"
    )
