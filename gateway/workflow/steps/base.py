"""What every step is: a fields model validated at load time, and a `run` on resolved values."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, PlainValidator

from gateway.workflow.models import ModelRegistry


def _image_or_selector(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        return value
    if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim in (2, 3):
        return value
    raise ValueError("expected an image selector such as $inputs.image")


class ImageKind:
    """Marks a field that takes an image (checked against the selector's kind)."""


ImageField = Annotated[Any, PlainValidator(_image_or_selector), ImageKind()]


class StepFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


@dataclass(frozen=True, slots=True)
class StepContext:
    """What a step may use while it is built: the shared model registry, the definition's folder."""

    models: ModelRegistry
    base_dir: Path

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path).resolve()


FieldsT = TypeVar("FieldsT", bound=StepFields)


class Step(ABC, Generic[FieldsT]):
    """A workflow step. Built once at compile time; `run` is called for every inspection."""

    type_names: ClassVar[tuple[str, ...]]
    """Our type name first, then accepted aliases (e.g. a Roboflow block's name)."""
    fields_model: ClassVar[type[StepFields]]
    image_outputs: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, name: str, fields: FieldsT, context: StepContext) -> None:
        self.name = name
        self.fields = fields

    @property
    @abstractmethod
    def outputs(self) -> frozenset[str]:
        """Names this step produces, for `$steps.<name>.<output>` selectors."""

    @abstractmethod
    def run(self, fields: FieldsT) -> dict[str, Any]:
        """Compute the outputs from fields whose selectors are already resolved."""
