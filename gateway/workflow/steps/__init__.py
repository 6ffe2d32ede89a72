"""The step library: one module per family of steps."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from gateway.workflow.steps.base import Step
from gateway.workflow.steps.classification import OnnxClassification
from gateway.workflow.steps.codes import Barcode, QrCode
from gateway.workflow.steps.crops import DynamicCrop, StaticCrop
from gateway.workflow.steps.detection import OnnxObjectDetection
from gateway.workflow.steps.expression import Expression
from gateway.workflow.steps.filters import DetectionsFilter
from gateway.workflow.steps.flow import ContinueIf
from gateway.workflow.steps.measurement import ColorArea, Contours, TemplateMatch
from gateway.workflow.steps.ocr import Ocr
from gateway.workflow.steps.visualization import Visualize

STEP_CLASSES: tuple[type[Step[Any]], ...] = (
    OnnxClassification,
    OnnxObjectDetection,
    Ocr,
    QrCode,
    Barcode,
    StaticCrop,
    DynamicCrop,
    DetectionsFilter,
    ColorArea,
    Contours,
    TemplateMatch,
    Expression,
    ContinueIf,
    Visualize,
)


def step_types() -> Mapping[str, type[Step[Any]]]:
    """Every accepted type name (ours and aliases) to its step class."""
    return MappingProxyType({name: cls for cls in STEP_CLASSES for name in cls.type_names})
