"""Definition -> execution plan, once at start. Every problem is found here, not on a trigger:
unknown step types, bad fields, selectors that point nowhere or at the wrong kind, cycles.

`compile_workflow` runs the passes of a `_Compilation` in order: read the definition, collect
its inputs, build each step, wire flow control, check the step outputs selectors name, check the
workflow's outputs, then order the steps. Each pass adds what it finds to one problem list, so a
definition's every problem is reported at once.
"""

from __future__ import annotations

import graphlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.workflow.definition import (
    ImageInput,
    ParameterInput,
    Selector,
    StepDefinition,
    WorkflowDefinition,
)
from gateway.workflow.errors import DefinitionProblem, FieldError, WorkflowDefinitionError
from gateway.workflow.models import ModelRegistry
from gateway.workflow.plan import CompiledWorkflow, PlannedStep, find_selectors
from gateway.workflow.steps import step_types
from gateway.workflow.steps.base import EngineKind, ImageKind, Step, StepContext


def compile_workflow(
    specification: Mapping[str, Any] | WorkflowDefinition,
    *,
    models: ModelRegistry,
    base_dir: Path,
    label: str | None = None,
) -> CompiledWorkflow:
    """Validate and build a workflow; raise WorkflowDefinitionError listing every problem."""
    compilation = _Compilation(StepContext(models=models, base_dir=base_dir))
    definition = compilation.read(specification)
    if definition is not None:
        compilation.collect_inputs(definition)
        for step_def in definition.steps:
            compilation.build_step(definition, step_def)
        compilation.wire_flow_control()
        compilation.check_step_selectors(definition)
        compilation.check_outputs(definition)
        order = compilation.order()
    if definition is None or compilation.problems:
        raise WorkflowDefinitionError(compilation.problems, label)
    return compilation.compiled(definition, order)


class _Compilation:
    """What the passes share: the problems found and the steps built so far."""

    def __init__(self, context: StepContext) -> None:
        self.context = context
        self.problems: list[DefinitionProblem] = []
        self.known_types = step_types()
        self.image_inputs: list[str] = []
        self.parameters: dict[str, Any] = {}
        self.input_names: set[str] = set()
        self.step_names: list[str] = []
        self.built: dict[str, Step[Any]] = {}
        self.dependencies: dict[str, set[str]] = {}
        self.planned: dict[str, PlannedStep] = {}

    def problem(self, message: str, step: str | None, where: str | None) -> None:
        self.problems.append(DefinitionProblem(message, step, where))

    def read(
        self, specification: Mapping[str, Any] | WorkflowDefinition
    ) -> WorkflowDefinition | None:
        if isinstance(specification, WorkflowDefinition):
            definition = specification
        else:
            try:
                definition = WorkflowDefinition.model_validate(specification)
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    loc = error["loc"]
                    self.problem(error["msg"], _raw_step_name(specification, loc), _loc(loc))
                return None
        self.step_names = [step.name for step in definition.steps]
        return definition

    def collect_inputs(self, definition: WorkflowDefinition) -> None:
        for item in definition.inputs:
            if item.name in self.input_names:
                self.problem(f"duplicate input name {item.name!r}", None, "inputs")
            self.input_names.add(item.name)
            if isinstance(item, ImageInput):
                self.image_inputs.append(item.name)
            elif isinstance(item, ParameterInput):
                self.parameters[item.name] = item.default_value

    def build_step(self, definition: WorkflowDefinition, step_def: StepDefinition) -> None:
        name = step_def.name
        if self.step_names.count(name) > 1 and name in self.dependencies:
            self.problem("duplicate step name", name, "name")
            return
        self.dependencies[name] = set()
        step_cls = self.known_types.get(step_def.type)
        if step_cls is None:
            known = ", ".join(sorted({cls.type_names[0] for cls in self.known_types.values()}))
            self.problem(f"unknown step type {step_def.type!r} (known: {known})", name, "type")
            return
        raw_fields = step_def.fields()
        dynamic, selectors_ok = self._dynamic_fields(definition, name, step_cls, raw_fields)
        try:
            fields = step_cls.fields_model.model_validate(
                _load_time_fields(step_cls, raw_fields, dynamic, self.parameters)
            )
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                self.problem(error["msg"], name, _loc(error["loc"]))
            return
        if not selectors_ok:
            return
        try:
            step = step_cls(name, fields, self.context)
        except FieldError as exc:
            self.problem(str(exc), name, exc.field)
            return
        except Exception as exc:
            self.problem(f"{type(exc).__name__}: {exc}", name, None)
            return
        self.built[name] = step
        trusted = _trusted_fields(step_cls, dynamic)
        self.planned[name] = PlannedStep(step, raw_fields, fields, dynamic, trusted)

    def _dynamic_fields(
        self,
        definition: WorkflowDefinition,
        name: str,
        step_cls: type[Step[Any]],
        raw_fields: Mapping[str, Any],
    ) -> tuple[dict[str, Any], bool]:
        """The fields holding selectors (checked here), and whether every selector is valid."""
        dynamic: dict[str, Any] = {}
        selectors_ok = True
        for field_name, value in raw_fields.items():
            if field_name in step_cls.reference_fields:
                continue
            selectors = find_selectors(value)
            if selectors:
                dynamic[field_name] = value
            wants_image = _kind_check(step_cls, field_name)
            for text in selectors:
                problem = _check_selector(text, name, self, wants_image, definition)
                if problem is not None:
                    self.problem(problem, name, field_name)
                    selectors_ok = False
                    continue
                selector = Selector.parse(text)
                if selector is not None and selector.scope == "steps":
                    self.dependencies[name].add(selector.name)
        return dynamic, selectors_ok

    def wire_flow_control(self) -> None:
        """A flow-control step runs before the steps it gates."""
        for name, step in self.built.items():
            for gated in step.gated_steps():
                if gated not in self.dependencies:
                    self.problem(f"no step named {gated!r}", name, "next_steps")
                elif gated == name:
                    self.problem("a step cannot gate itself", name, "next_steps")
                else:
                    self.dependencies[gated].add(name)

    def check_step_selectors(self, definition: WorkflowDefinition) -> None:
        """Step outputs named by selectors must exist (known only once steps are built)."""
        for step_def in definition.steps:
            built = self.built.get(step_def.name)
            for field_name, value in step_def.fields().items():
                if built is not None and field_name in built.reference_fields:
                    continue
                for text in find_selectors(value):
                    problem = _check_output_name(text, self.built)
                    if problem is not None:
                        self.problem(problem, step_def.name, field_name)

    def check_outputs(self, definition: WorkflowDefinition) -> None:
        for output in definition.outputs:
            selector = Selector.parse(output.selector)
            where = f"outputs.{output.name}.selector"
            if selector is None:
                self.problem(f"not a selector: {output.selector!r}", None, where)
            elif selector.scope == "inputs" and selector.name not in self.input_names:
                self.problem(f"no input named {selector.name!r}", None, where)
            elif selector.scope == "steps":
                if selector.name not in self.step_names:
                    self.problem(f"no step named {selector.name!r}", None, where)
                elif selector.output is None:
                    self.problem("name an output: $steps.<step>.<output> or .*", None, where)
                else:
                    problem = _check_output_name(output.selector, self.built)
                    if problem is not None:
                        self.problem(problem, None, where)

    def order(self) -> list[str]:
        try:
            return list(graphlib.TopologicalSorter(self.dependencies).static_order())
        except graphlib.CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            self.problem(f"steps form a cycle: {cycle}", exc.args[1][0], None)
            return []

    def compiled(self, definition: WorkflowDefinition, order: list[str]) -> CompiledWorkflow:
        plan = [self.planned[name] for name in order]
        for planned_step in plan:
            read = [
                Selector.parse(t) for v in planned_step.dynamic.values() for t in find_selectors(v)
            ]
            planned_step.depends = frozenset(
                sel.name for sel in read if sel is not None and sel.scope == "steps"
            )
        return CompiledWorkflow(definition, plan, tuple(self.image_inputs), self.parameters)


def _raw_step_name(specification: Mapping[str, Any], loc: tuple[int | str, ...]) -> str | None:
    """The name of the step a validation error points into, read from the raw definition."""
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        raw_steps = specification.get("steps") or []
        raw = raw_steps[loc[1]] if loc[1] < len(raw_steps) else {}
        return raw.get("name") if isinstance(raw, dict) else None
    return None


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


def _check_selector(
    text: str,
    step_name: str,
    compilation: _Compilation,
    wants_image: bool,
    definition: WorkflowDefinition,
) -> str | None:
    image_inputs, parameters = compilation.image_inputs, compilation.parameters
    step_names, known_types = compilation.step_names, compilation.known_types
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
