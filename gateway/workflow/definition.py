"""The workflow definition format, shaped like a Roboflow Workflows definition.

Only the envelope is validated here (inputs, step names and types, outputs); each step's own
fields are validated by its step class when the definition is compiled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
SELECTOR = re.compile(
    r"^\$(inputs|steps)\.([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*|\*))?$"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageInput(_Strict):
    type: Literal["WorkflowImage", "InferenceImage"]
    name: str = Field(pattern=NAME_PATTERN)


class ParameterInput(_Strict):
    """A value a trigger may override; its type is the type of `default_value`."""

    type: Literal["WorkflowParameter", "InferenceParameter"]
    name: str = Field(pattern=NAME_PATTERN)
    default_value: Any = None
    kind: list[Any] | None = None  # accepted for Roboflow compatibility; the default's type rules


InputDefinition = Annotated[ImageInput | ParameterInput, Field(discriminator="type")]


class StepDefinition(BaseModel):
    """`type`, `name`, and the step's own fields (validated by the step class)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str = Field(min_length=1)
    name: str = Field(pattern=NAME_PATTERN)

    def fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class JsonFieldOutput(_Strict):
    type: Literal["JsonField"] = "JsonField"
    name: str = Field(min_length=1)
    selector: str
    coordinates_system: Literal["own", "parent"] | None = None


class WorkflowDefinition(_Strict):
    version: str = "1.0"
    inputs: list[InputDefinition] = Field(default_factory=list)
    steps: list[StepDefinition] = Field(default_factory=list)
    outputs: list[JsonFieldOutput] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Selector:
    """`$inputs.name`, `$steps.step.output` or `$steps.step.*`."""

    scope: Literal["inputs", "steps"]
    name: str
    output: str | None

    @classmethod
    def parse(cls, text: str) -> Selector | None:
        match = SELECTOR.match(text)
        if match is None:
            return None
        scope, name, output = match.groups()
        if scope == "inputs" and output is not None:
            return None
        return cls(scope, name, output)  # type: ignore[arg-type]

    def __str__(self) -> str:
        tail = f".{self.output}" if self.output else ""
        return f"${self.scope}.{self.name}{tail}"


def looks_like_selector(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("$")
