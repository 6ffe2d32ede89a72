"""ONNX object detection for Ultralytics exports: YOLOv5 (`[1, N, 5+nc]`, objectness) and
YOLOv8/YOLO11 (`[1, 4+nc, N]`) layouts, letterboxed input, class-aware NMS, boxes mapped back
to the original image."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import Field

from gateway.workflow.detections import make_detections
from gateway.workflow.errors import FieldError
from gateway.workflow.preprocess import TensorSpec, letterbox, to_tensor
from gateway.workflow.steps.base import (
    ImageField,
    Step,
    StepContext,
    StepFields,
    image_field,
    load_image_model,
)

Layout = Literal["auto", "v5", "v8"]


class DetectionFields(StepFields):
    image: ImageField = image_field("images")
    model: Path
    layout: Layout = Field("auto", description="v5: [1,N,5+nc]; v8 (also v11): [1,4+nc,N]")
    confidence: float = Field(0.25, ge=0.0, le=1.0)
    iou_threshold: float = Field(0.45, gt=0.0, le=1.0)
    class_filter: list[str] | None = Field(None, description="keep only these classes")
    class_agnostic_nms: bool = False
    max_detections: int = Field(300, ge=1)
    class_names: list[str] | None = Field(None, description="default: the model's `names`")
    input_size: tuple[int, int] | None = Field(None, description="(width, height) if dynamic")


def decode(
    output: npt.NDArray[Any], layout: Layout, confidence: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.intp]]:
    """Raw head output to (cx, cy, w, h) boxes in input pixels, scores and class ids above
    `confidence`, before NMS."""
    rows = output[0]
    if layout == "auto":
        layout = "v8" if rows.shape[0] < rows.shape[1] else "v5"
    if layout == "v8":
        rows = rows.T
        class_scores = rows[:, 4:]
    else:
        class_scores = rows[:, 5:] * rows[:, 4:5]
    class_ids = np.argmax(class_scores, axis=1)
    scores = class_scores[np.arange(len(class_ids)), class_ids]
    keep = scores > confidence
    return rows[keep, :4].astype(np.float32), scores[keep].astype(np.float32), class_ids[keep]


class OnnxObjectDetection(Step[DetectionFields]):
    """Outputs `predictions` (detections, see gateway.workflow.detections) and `count`."""

    type_names = ("onnx_object_detection", "yolo_detection")
    fields_model = DetectionFields

    def __init__(self, name: str, fields: DetectionFields, context: StepContext) -> None:
        super().__init__(name, fields, context)
        self.model, self._width, self._height = load_image_model(
            context, fields.model, fields.input_size
        )
        output_shape = self.model.session.get_outputs()[0].shape
        if len(output_shape) != 3:
            raise FieldError(
                "model",
                f"output has shape {output_shape}; expected an Ultralytics detection head "
                "[1, 4+classes, N] (v8/v11) or [1, N, 5+classes] (v5)",
            )
        self._names = fields.class_names or self.model.class_names
        self._allowed: frozenset[int] | None = None
        if fields.class_filter is not None:
            if self._names is None:
                raise FieldError("class_filter", "the model has no class names: set class_names")
            unknown = [c for c in fields.class_filter if c not in self._names]
            if unknown:
                raise FieldError("class_filter", f"unknown classes {unknown}")
            self._allowed = frozenset(self._names.index(c) for c in fields.class_filter)
        self.spec = TensorSpec(width=self._width, height=self._height, dtype=self.model.input_dtype)

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"predictions", "count"})

    def run(self, fields: DetectionFields) -> dict[str, Any]:
        image = fields.image
        height, width = image.shape[:2]
        padded, scale, (pad_x, pad_y) = letterbox(image, self._width, self._height)
        (raw,) = self.model.run(to_tensor(padded, self.spec), [self.model.output_names[0]])
        boxes, scores, class_ids = decode(raw, fields.layout, fields.confidence)
        if self._allowed is not None:
            keep = np.isin(class_ids, list(self._allowed))
            boxes, scores, class_ids = boxes[keep], scores[keep], class_ids[keep]
        corner = boxes.copy()
        corner[:, :2] -= boxes[:, 2:] / 2.0
        nms_classes = np.zeros_like(class_ids) if fields.class_agnostic_nms else class_ids
        kept = cv2.dnn.NMSBoxesBatched(
            corner.tolist(),
            scores.tolist(),
            nms_classes.tolist(),
            fields.confidence,
            fields.iou_threshold,
        )
        order = sorted(np.asarray(kept, dtype=np.intp).reshape(-1), key=lambda i: -scores[i])
        order = order[: fields.max_detections]
        xyxy = np.empty((len(order), 4), np.float64)
        for row, index in enumerate(order):
            x, y, w, h = corner[index]
            xyxy[row] = (x, y, x + w, y + h)
        xyxy[:, [0, 2]] = np.clip((xyxy[:, [0, 2]] - pad_x) / scale, 0, width)
        xyxy[:, [1, 3]] = np.clip((xyxy[:, [1, 3]] - pad_y) / scale, 0, height)
        detections = make_detections(
            width,
            height,
            xyxy,
            (float(scores[i]) for i in order),
            (int(class_ids[i]) for i in order),
            self._names,
        )
        return {"predictions": detections, "count": len(order)}
