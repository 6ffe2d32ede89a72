"""Classical measurements with OpenCV: colour-range area, contour sizes, template match."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field

from gateway.workflow.errors import FieldError
from gateway.workflow.steps.base import ImageField, Step, StepContext, StepFields, image_field


class ColorAreaFields(StepFields):
    image: ImageField = image_field("images")
    lower: tuple[int, int, int] = Field(description="HSV lower bound (OpenCV: H 0-179, S/V 0-255)")
    upper: tuple[int, int, int] = Field(description="HSV upper bound")


class ColorArea(Step[ColorAreaFields]):
    """Pixels inside an HSV range: `area_px` and `fraction` of the image."""

    type_names = ("color_area",)
    fields_model = ColorAreaFields

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"area_px", "fraction"})

    def run(self, fields: ColorAreaFields) -> dict[str, Any]:
        image = fields.image
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        mask = cv2.inRange(hsv, np.array(fields.lower), np.array(fields.upper))
        area = int(cv2.countNonZero(mask))
        return {"area_px": area, "fraction": round(area / mask.size, 6)}


class ContoursFields(StepFields):
    image: ImageField = image_field("images")
    threshold: int | Literal["otsu"] = Field("otsu", description="grey level, or Otsu's choice")
    invert: bool = Field(False, description="objects are darker than the background")
    min_area: float = Field(0.0, ge=0.0, description="ignore contours smaller than this (px²)")


class Contours(Step[ContoursFields]):
    """Outer contours of a thresholded image: `count`, `areas` (largest first), and the
    largest one's `largest_area`, `largest_width`, `largest_height` (rotated bounding box)."""

    type_names = ("contours",)
    fields_model = ContoursFields

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"count", "areas", "largest_area", "largest_width", "largest_height"})

    def run(self, fields: ContoursFields) -> dict[str, Any]:
        image = fields.image
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        mode = cv2.THRESH_BINARY_INV if fields.invert else cv2.THRESH_BINARY
        if fields.threshold == "otsu":
            _, binary = cv2.threshold(grey, 0, 255, mode | cv2.THRESH_OTSU)
        else:
            _, binary = cv2.threshold(grey, fields.threshold, 255, mode)
        found, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        sized = sorted(
            ((cv2.contourArea(c), c) for c in found if cv2.contourArea(c) >= fields.min_area),
            key=lambda pair: -pair[0],
        )
        width = height = 0.0
        if sized:
            (_, _), (w, h), _ = cv2.minAreaRect(sized[0][1])
            width, height = max(w, h), min(w, h)
        return {
            "count": len(sized),
            "areas": [round(area, 1) for area, _ in sized],
            "largest_area": round(sized[0][0], 1) if sized else 0.0,
            "largest_width": round(width, 1),
            "largest_height": round(height, 1),
        }


class TemplateMatchFields(StepFields):
    image: ImageField = image_field("images")
    template: Path = Field(description="image file of what to find")
    threshold: float = Field(0.8, ge=-1.0, le=1.0, description="`found` when score >= this")


class TemplateMatch(Step[TemplateMatchFields]):
    """Normalised cross-correlation: best `score`, `found`, and the match's centre `x`, `y`."""

    type_names = ("template_match",)
    fields_model = TemplateMatchFields

    def __init__(self, name: str, fields: TemplateMatchFields, context: StepContext) -> None:
        super().__init__(name, fields, context)
        path = context.resolve(fields.template)
        template = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if template is None:
            raise FieldError("template", f"cannot read image {path}")
        self._template = template

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"score", "found", "x", "y"})

    def run(self, fields: TemplateMatchFields) -> dict[str, Any]:
        image = fields.image
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        th, tw = self._template.shape[:2]
        if grey.shape[0] < th or grey.shape[1] < tw:
            raise ValueError(f"image {grey.shape[1]}x{grey.shape[0]} is smaller than the template")
        scores = cv2.matchTemplate(grey, self._template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (x, y) = cv2.minMaxLoc(scores)
        return {
            "score": round(float(best), 4),
            "found": bool(best >= fields.threshold),
            "x": x + tw / 2.0,
            "y": y + th / 2.0,
        }
