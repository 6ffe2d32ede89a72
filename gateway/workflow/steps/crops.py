"""Crops: a fixed region, or one crop per detection. A step fed `crops` from `dynamic_crop`
runs once per crop."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import Field

from gateway.workflow.detections import DetectionsField, box_xyxy
from gateway.workflow.steps.base import ImageField, Step, StepFields, image_field


def crop(image: npt.NDArray[np.uint8], x1: float, y1: float, x2: float, y2: float) -> Any:
    """The pixels inside the box, clipped to the image (at least one pixel)."""
    height, width = image.shape[:2]
    left = min(max(round(x1), 0), width - 1)
    top = min(max(round(y1), 0), height - 1)
    right = min(max(round(x2), left + 1), width)
    bottom = min(max(round(y2), top + 1), height)
    return np.ascontiguousarray(image[top:bottom, left:right])


class StaticCropFields(StepFields):
    image: ImageField = image_field("images")
    x_center: float = Field(ge=0)
    y_center: float = Field(ge=0)
    width: float = Field(gt=0)
    height: float = Field(gt=0)
    relative: bool = Field(False, description="coordinates are fractions of the image size")


class StaticCrop(Step[StaticCropFields]):
    """A fixed region (centre and size, as Roboflow's absolute/relative static crop); `crops`."""

    type_names = (
        "static_crop",
        "roboflow_core/absolute_static_crop@v1",
        "AbsoluteStaticCrop",
    )
    fields_model = StaticCropFields
    image_outputs = frozenset({"crops"})

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"crops"})

    def run(self, fields: StaticCropFields) -> dict[str, Any]:
        height, width = fields.image.shape[:2]
        sx, sy = (width, height) if fields.relative else (1, 1)
        cx, cy = fields.x_center * sx, fields.y_center * sy
        w, h = fields.width * sx, fields.height * sy
        return {"crops": crop(fields.image, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)}


class DynamicCropFields(StepFields):
    image: ImageField = image_field("images")
    predictions: DetectionsField
    padding: int = Field(0, ge=0, description="pixels added around each box")


class DynamicCrop(Step[DynamicCropFields]):
    """One crop per detection: `crops` (per crop) and `predictions` (per crop: detections
    holding that crop's box, in the parent image's pixels)."""

    type_names = ("dynamic_crop", "roboflow_core/dynamic_crop@v1", "Crop")
    fields_model = DynamicCropFields
    image_outputs = frozenset({"crops"})
    batch_outputs = frozenset({"crops", "predictions"})

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"crops", "predictions"})

    def run(self, fields: DynamicCropFields) -> dict[str, Any]:
        crops, boxes = [], []
        pad = fields.padding
        for prediction in fields.predictions["predictions"]:
            x1, y1, x2, y2 = box_xyxy(prediction)
            crops.append(crop(fields.image, x1 - pad, y1 - pad, x2 + pad, y2 + pad))
            boxes.append({**fields.predictions, "predictions": [prediction]})
        return {"crops": crops, "predictions": boxes}
