"""Draw detections (boxes and labels) on the image; the result is an image output, sent as
JPEG over HTTP and written as JPEG by the batch runner."""

from __future__ import annotations

from typing import Any, Final

import cv2
import numpy as np
from pydantic import Field

from gateway.workflow.detections import DetectionsField, box_xyxy
from gateway.workflow.steps.base import ImageField, Step, StepFields, image_field

PASS_COLOUR = (80, 175, 76)
FAIL_COLOUR = (54, 67, 244)
PALETTE: Final = ((255, 144, 30), (0, 215, 255), (180, 105, 255), (255, 255, 0), (0, 165, 255))


class VisualizeFields(StepFields):
    image: ImageField = image_field("images")
    predictions: DetectionsField | None = None
    labels: bool = Field(True, description="draw class and confidence above each box")
    passed: bool | None = Field(None, description="draws a PASS/FAIL banner when set")
    thickness: int = Field(2, ge=1, le=20)


class Visualize(Step[VisualizeFields]):
    """Outputs `image`: a copy of the input with boxes, labels and an optional verdict."""

    type_names = ("visualize", "roboflow_core/bounding_box_visualization@v1")
    fields_model = VisualizeFields
    image_outputs = frozenset({"image"})

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"image"})

    def run(self, fields: VisualizeFields) -> dict[str, Any]:
        canvas = fields.image.copy()
        if canvas.ndim == 2:
            canvas = cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)
        font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.4, canvas.shape[1] / 1600)
        for prediction in (fields.predictions or {}).get("predictions", []):
            colour = PALETTE[int(prediction.get("class_id", 0)) % len(PALETTE)]
            x1, y1, x2, y2 = (round(v) for v in box_xyxy(prediction))
            cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, fields.thickness)
            if fields.labels:
                # a decoded code is labelled with its text, a detection with class and score
                text = prediction.get("data") or (
                    f"{prediction['class']} {prediction['confidence']:.2f}"
                )
                (tw, th), base = cv2.getTextSize(text, font, scale, 1)
                top = max(y1 - th - base - 2, 0)
                cv2.rectangle(canvas, (x1, top), (x1 + tw + 4, top + th + base + 2), colour, -1)
                cv2.putText(canvas, text, (x1 + 2, top + th + 1), font, scale, (0, 0, 0), 1)
        if fields.passed is not None:
            text = "PASS" if fields.passed else "FAIL"
            colour = PASS_COLOUR if fields.passed else FAIL_COLOUR
            big = scale * 2.5
            (tw, th), base = cv2.getTextSize(text, font, big, 3)
            cv2.rectangle(canvas, (0, 0), (tw + 16, th + base + 12), colour, -1)
            cv2.putText(canvas, text, (8, th + 6), font, big, (255, 255, 255), 3)
        return {"image": np.ascontiguousarray(canvas)}
