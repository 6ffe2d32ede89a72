"""What every step is: a fields model validated at load time, and a `run` on resolved values."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PlainValidator
from pydantic.fields import FieldInfo

from gateway.workflow.errors import FieldError
from gateway.workflow.models import LoadedModel, ModelLoadError, ModelRegistry


def _image_or_selector(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        return value
    if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim in (2, 3):
        return value
    raise ValueError("expected an image selector such as $inputs.image")


class EngineKind:
    """Marks a field whose value the engine itself produces from a step (detections): it is
    checked at load time and not validated again on every run."""


class ImageKind(EngineKind):
    """Marks a field that takes an image (checked against the selector's kind)."""


ImageField = Annotated[Any, PlainValidator(_image_or_selector), ImageKind()]


class StepFields(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, arbitrary_types_allowed=True, populate_by_name=True
    )

    @classmethod
    def field_named(cls, raw_name: str) -> FieldInfo | None:
        """The field a definition key sets: its own name or an accepted alias (`images`)."""
        name = cls.canonical_name(raw_name)
        return None if name is None else cls.model_fields[name]

    @classmethod
    def canonical_name(cls, raw_name: str) -> str | None:
        for name, info in cls.model_fields.items():
            aliases = info.validation_alias
            choices = aliases.choices if isinstance(aliases, AliasChoices) else [aliases]
            if raw_name == name or raw_name in choices:
                return name
        return None


def image_field(*aliases: str) -> Any:
    """An image field that also accepts Roboflow's names for it (e.g. `images`)."""
    return Field(validation_alias=AliasChoices("image", *aliases))


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
    batch_outputs: ClassVar[frozenset[str]] = frozenset()
    """Outputs that hold one value per crop: a step fed one runs once per element."""
    reference_fields: ClassVar[frozenset[str]] = frozenset()
    """Fields naming other steps (`$steps.<name>` or a bare name), not reading their outputs."""

    def __init__(self, name: str, fields: FieldsT, context: StepContext) -> None:
        self.name = name
        self.fields = fields

    @property
    @abstractmethod
    def outputs(self) -> frozenset[str]:
        """Names this step produces, for `$steps.<name>.<output>` selectors."""

    def gated_steps(self) -> frozenset[str]:
        """Steps this (flow-control) step may skip: they run only when its `continue` is true."""
        return frozenset()

    @abstractmethod
    def run(self, fields: FieldsT) -> dict[str, Any]:
        """Compute the outputs from fields whose selectors are already resolved."""


def load_image_model(
    context: StepContext, path: Path, input_size: tuple[int, int] | None
) -> tuple[LoadedModel, int, int]:
    """The shared model for an image step, with the (width, height) its input takes; problems
    are raised as FieldErrors naming `model` or `input_size`."""
    try:
        model = context.models.get(context.resolve(path))
    except ModelLoadError as exc:
        raise FieldError("model", str(exc)) from None
    if len(model.input_shape) != 4:
        raise FieldError(
            "model",
            f"model input {model.input_name!r} has shape {list(model.input_shape)}; "
            "an NCHW image input is needed",
        )
    if input_size is not None:
        return model, input_size[0], input_size[1]
    hw = model.static_hw()
    if hw is None:
        raise FieldError("input_size", "the model's input size is dynamic: set it")
    return model, hw[1], hw[0]
