"""QR codes and barcodes read with OpenCV's detectors (no extra dependency)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from gateway.workflow.detections import make_detections
from gateway.workflow.steps.base import ImageField, Step, StepContext, StepFields, image_field


class CodeFields(StepFields):
    image: ImageField = image_field("images")


def _boxes(corners: Any) -> npt.NDArray[np.float64]:
    points = np.asarray(corners, dtype=np.float64).reshape(-1, 4, 2)
    return np.concatenate([points.min(axis=1), points.max(axis=1)], axis=1)


def _outputs(image: Any, values: list[str], corners: Any, kind: str) -> dict[str, Any]:
    boxes = _boxes(corners) if values else np.empty((0, 4))
    height, width = image.shape[:2]
    detections = make_detections(
        width,
        height,
        boxes,
        [1.0] * len(values),
        [0] * len(values),
        [kind],
        extra=[{"data": value} for value in values],
    )
    return {"predictions": detections, "values": values, "value": values[0] if values else None}


class QrCode(Step[CodeFields]):
    """Outputs `value` (the first decoded text or None), `values`, `predictions` (with `data`).

    OpenCV's ArUco-based QR detector finds codes the classic one misses in busy frames (a
    labelled part in a whole camera frame); the classic detector is tried when it finds none.
    """

    type_names = ("qr_code", "roboflow_core/qr_code_detector@v1", "QRCodeDetector")
    fields_model = CodeFields

    def __init__(self, name: str, fields: CodeFields, context: StepContext) -> None:
        super().__init__(name, fields, context)
        self._detectors = (cv2.QRCodeDetectorAruco(), cv2.QRCodeDetector())

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"predictions", "values", "value"})

    def run(self, fields: CodeFields) -> dict[str, Any]:
        pairs: list[tuple[str, Any]] = []
        for detector in self._detectors:
            found, texts, corners, _ = detector.detectAndDecodeMulti(fields.image)
            pairs = [(t, c) for t, c in zip(texts, corners, strict=False) if t] if found else []
            if pairs:
                break
        return _outputs(fields.image, [t for t, _ in pairs], [c for _, c in pairs], "qr_code")


class Barcode(Step[CodeFields]):
    """1D barcodes (EAN-8/13, UPC-A/E, Code 39/93/128...); outputs as `qr_code`, plus `types`."""

    type_names = ("barcode", "roboflow_core/barcode_detector@v1", "BarcodeDetector")
    fields_model = CodeFields

    def __init__(self, name: str, fields: CodeFields, context: StepContext) -> None:
        super().__init__(name, fields, context)
        self._detector = cv2.barcode.BarcodeDetector()

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"predictions", "values", "value", "types"})

    def run(self, fields: CodeFields) -> dict[str, Any]:
        found, texts, types, corners = self._detector.detectAndDecodeWithType(fields.image)
        rows = [(t, k, c) for t, k, c in zip(texts, types, corners, strict=False)] if found else []
        rows = [row for row in rows if row[0]]
        produced = _outputs(fields.image, [r[0] for r in rows], [r[2] for r in rows], "barcode")
        produced["types"] = [r[1] for r in rows]
        return produced
