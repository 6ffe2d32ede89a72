"""OCR with the PP-OCR models shipped inside the `rapidocr` wheel (the optional `ocr` extra).
The engine is built once per process and shared by every OCR step."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import Field

from gateway.workflow.errors import FieldError
from gateway.workflow.steps.base import ImageField, Step, StepContext, StepFields, image_field

INSTALL_HINT = "OCR needs the optional extra: pip install 'inspection-gateway[ocr]' (rapidocr)"


class OcrFields(StepFields):
    image: ImageField = image_field("images")
    min_confidence: float = Field(0.5, ge=0.0, le=1.0, description="drop lines scored below")


def _build_engine() -> Any:
    from rapidocr import RapidOCR

    engine = RapidOCR(params={"Global.log_level": "warning"})
    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    return engine


class Ocr(Step[OcrFields]):
    """Outputs `text` (lines joined by spaces, top to bottom), `lines` [{text, confidence,
    box}] and `confidence` (the lowest line score, 0 when nothing was read)."""

    type_names = ("ocr",)
    fields_model = OcrFields

    def __init__(self, name: str, fields: OcrFields, context: StepContext) -> None:
        super().__init__(name, fields, context)
        try:
            import rapidocr  # noqa: F401
        except ImportError:
            raise FieldError("type", INSTALL_HINT) from None
        self._engine = context.models.engine("rapidocr", _build_engine)

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"text", "lines", "confidence"})

    def run(self, fields: OcrFields) -> dict[str, Any]:
        found = self._engine(fields.image)
        lines: list[dict[str, Any]] = []
        rows = zip(_seq(found.txts), _seq(found.scores), _seq(found.boxes), strict=False)
        for text, score, box in rows:
            if score >= fields.min_confidence:
                points = [[round(float(x), 1), round(float(y), 1)] for x, y in box]
                lines.append(
                    {"text": str(text), "confidence": round(float(score), 4), "box": points}
                )
        lines = reading_order(lines)
        return {
            "text": " ".join(line["text"] for line in lines),
            "lines": lines,
            "confidence": min((line["confidence"] for line in lines), default=0.0),
        }


def reading_order(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Top to bottom, and left to right within a row: boxes whose vertical middles lie within
    half a box height of each other share a row (fixed bands would split a row whose boxes sit
    a pixel apart across a band edge)."""
    rows: list[list[dict[str, Any]]] = []
    for line in sorted(lines, key=_middle_y):
        height = _height(line)
        if rows and abs(_middle_y(line) - _middle_y(rows[-1][0])) <= height / 2:
            rows[-1].append(line)
        else:
            rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda item: item["box"][0][0])]


def _middle_y(line: dict[str, Any]) -> float:
    ys = [float(y) for _, y in line["box"]]
    return (min(ys) + max(ys)) / 2


def _height(line: dict[str, Any]) -> float:
    ys = [float(y) for _, y in line["box"]]
    return max(ys) - min(ys)


def _seq(value: Any) -> Any:
    """rapidocr gives None when nothing was read, otherwise tuples or arrays."""
    return () if value is None else value
