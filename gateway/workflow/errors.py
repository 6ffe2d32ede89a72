"""Workflow errors: definition problems found at load time, failures at run time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DefinitionProblem:
    message: str
    step: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = []
        if self.step is not None:
            where.append(f"step {self.step!r}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{' '.join(where)}: {self.message}" if where else self.message


class WorkflowDefinitionError(Exception):
    """The definition cannot run; each problem names the step and field."""

    def __init__(self, problems: Sequence[DefinitionProblem], label: str | None = None) -> None:
        self.problems = list(problems)
        self.label = label
        prefix = f"{label}: " if label else ""
        super().__init__("\n".join(f"{prefix}{problem}" for problem in self.problems))


class ParameterError(ValueError):
    """A trigger's parameter override is unknown or of the wrong type (BAD_REQUEST)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"parameter {name!r}: {message}")
        self.name = name


class StepFailed(Exception):
    """A step raised while running (WORKFLOW_ERROR); names the step."""

    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f"step {step!r} failed: {type(cause).__name__}: {cause}")
        self.step = step


class FieldError(ValueError):
    """Raised by a step's constructor to name the field a problem is in."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
