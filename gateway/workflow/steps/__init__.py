"""The step library: one module per family of steps."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from gateway.workflow.steps.base import Step
from gateway.workflow.steps.classification import OnnxClassification
from gateway.workflow.steps.expression import Expression

STEP_CLASSES: tuple[type[Step[Any]], ...] = (OnnxClassification, Expression)


def step_types() -> Mapping[str, type[Step[Any]]]:
    """Every accepted type name (ours and aliases) to its step class."""
    return MappingProxyType({name: cls for cls in STEP_CLASSES for name in cls.type_names})
