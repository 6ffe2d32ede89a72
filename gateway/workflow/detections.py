"""Detections as plain data, serialised as Roboflow does:
`{"image": {"width", "height"}, "predictions": [{"x", "y", "width", "height", "confidence",
"class", "class_id", "detection_id"}]}` with x, y the box centre in image pixels."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
from pydantic import PlainValidator

from gateway.workflow.steps.base import EngineKind

Detections = dict[str, Any]


def _detections_or_selector(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        return value
    if is_detections(value):
        return value
    raise ValueError(
        "expected detections ({image, predictions}) such as $steps.<detector>.predictions"
    )


DetectionsField = Annotated[Detections, PlainValidator(_detections_or_selector), EngineKind()]
"""A step field taking detections; at load time it holds the selector."""


def make_detections(
    width: int,
    height: int,
    boxes_xyxy: npt.NDArray[np.floating[Any]] | Sequence[Sequence[float]],
    confidences: Iterable[float],
    class_ids: Iterable[int],
    class_names: Sequence[str] | None,
    extra: Sequence[dict[str, Any]] | None = None,
) -> Detections:
    """Boxes (x1, y1, x2, y2) in image pixels to the serialised form; `extra` adds keys per box
    (e.g. the decoded `data` of a QR code)."""
    predictions = []
    for index, (box, confidence, class_id) in enumerate(
        zip(
            np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4),
            confidences,
            class_ids,
            strict=False,
        )
    ):
        x1, y1, x2, y2 = (float(v) for v in box)
        name = (
            class_names[class_id] if class_names and class_id < len(class_names) else str(class_id)
        )
        prediction = {
            "x": round((x1 + x2) / 2.0, 1),
            "y": round((y1 + y2) / 2.0, 1),
            "width": round(x2 - x1, 1),
            "height": round(y2 - y1, 1),
            "confidence": round(float(confidence), 4),
            "class": name,
            "class_id": int(class_id),
            "detection_id": str(uuid.uuid4()),
        }
        if extra is not None:
            prediction.update(extra[index])
        predictions.append(prediction)
    return {"image": {"width": int(width), "height": int(height)}, "predictions": predictions}


def box_xyxy(prediction: dict[str, Any]) -> tuple[float, float, float, float]:
    half_w, half_h = prediction["width"] / 2.0, prediction["height"] / 2.0
    return (
        prediction["x"] - half_w,
        prediction["y"] - half_h,
        prediction["x"] + half_w,
        prediction["y"] + half_h,
    )


def is_detections(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("predictions"), list)
        and isinstance(value.get("image"), dict)
    )
