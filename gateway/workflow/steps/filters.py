"""Keep the detections that matter: by class, confidence, box area and zone; count them."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from pydantic import Field, field_validator

from gateway.workflow.detections import DetectionsField
from gateway.workflow.steps.base import Step, StepFields


class DetectionsFilterFields(StepFields):
    predictions: DetectionsField
    classes: list[str] | None = Field(None, description="keep these classes")
    confidence: float = Field(0.0, ge=0.0, le=1.0, description="keep at or above")
    min_area: float = Field(0.0, ge=0.0, description="box area in pixels²")
    max_area: float | None = Field(None, gt=0.0)
    zone: list[tuple[float, float]] | None = Field(
        None, description="polygon [[x, y], ...] in image pixels; keeps boxes whose centre is in it"
    )

    @field_validator("zone")
    @classmethod
    def _polygon(cls, zone: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        if zone is not None and len(zone) < 3:
            raise ValueError("a zone needs at least 3 points")
        return zone


class DetectionsFilter(Step[DetectionsFilterFields]):
    """Outputs the kept `predictions` (same shape as its input) and their `count`."""

    type_names = ("detections_filter",)
    fields_model = DetectionsFilterFields

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"predictions", "count"})

    def run(self, fields: DetectionsFilterFields) -> dict[str, Any]:
        zone = (
            None if fields.zone is None else np.asarray(fields.zone, np.float32).reshape(-1, 1, 2)
        )
        kept = []
        for prediction in fields.predictions["predictions"]:
            area = prediction["width"] * prediction["height"]
            if fields.classes is not None and prediction["class"] not in fields.classes:
                continue
            if prediction["confidence"] < fields.confidence or area < fields.min_area:
                continue
            if fields.max_area is not None and area > fields.max_area:
                continue
            centre = (float(prediction["x"]), float(prediction["y"]))
            if zone is not None and cv2.pointPolygonTest(zone, centre, False) < 0:
                continue
            kept.append(prediction)
        return {"predictions": {**fields.predictions, "predictions": kept}, "count": len(kept)}
