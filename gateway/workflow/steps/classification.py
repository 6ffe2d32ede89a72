"""ONNX image classification: any model taking one NCHW image, scores per class out."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from gateway.workflow.errors import FieldError
from gateway.workflow.preprocess import TensorSpec, to_tensor
from gateway.workflow.steps.base import (
    ImageField,
    Step,
    StepContext,
    StepFields,
    load_image_model,
)


class ClassificationFields(StepFields):
    image: ImageField
    model: Path
    input_size: tuple[int, int] | None = Field(
        None, description="(width, height); default: the model's fixed input size"
    )
    resize: Literal["stretch", "crop"] = "stretch"
    interpolation: Literal["linear", "area", "nearest", "cubic"] = "linear"
    resize_to: tuple[int, int] | None = Field(
        None, description="`crop`: resize to (width, height) first, then centre-crop input_size"
    )
    color_order: Literal["RGB", "BGR"] = "RGB"
    scale: float = Field(1.0 / 255.0, gt=0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    output: str | None = Field(None, description="output tensor with the scores; default: first")
    class_names: list[str] | None = None
    softmax: bool = Field(False, description="apply softmax (for models that output logits)")
    confidence: float = Field(0.0, ge=0.0, le=1.0, description="predictions below are dropped")
    top_k: int = Field(5, ge=1)

    @model_validator(mode="after")
    def _crop_size(self) -> ClassificationFields:
        if self.resize_to is not None and self.resize != "crop":
            raise ValueError("resize_to is only used with resize: crop")
        return self


class OnnxClassification(Step[ClassificationFields]):
    """Outputs `predictions` [{class, class_id, confidence}], `top`, `confidence`, `class_id`."""

    type_names = ("onnx_classification",)
    fields_model = ClassificationFields

    def __init__(self, name: str, fields: ClassificationFields, context: StepContext) -> None:
        super().__init__(name, fields, context)
        self.model, width, height = load_image_model(context, fields.model, fields.input_size)
        if fields.output is not None and fields.output not in self.model.output_names:
            raise FieldError(
                "output",
                f"model has no output {fields.output!r} (outputs: {list(self.model.output_names)})",
            )
        self._output = fields.output or self._first_numeric_output()
        self.spec = TensorSpec(
            width=width,
            height=height,
            color_order=fields.color_order,
            resize=fields.resize,
            interpolation=fields.interpolation,
            resize_to=fields.resize_to,
            scale=fields.scale,
            mean=fields.mean,
            std=fields.std,
            dtype=self.model.input_dtype,
        )
        self._names = fields.class_names or self.model.class_names

    def _first_numeric_output(self) -> str:
        for output in self.model.session.get_outputs():
            if output.type.startswith("tensor(float") or output.type == "tensor(double)":
                return str(output.name)
        raise FieldError("model", "the model has no floating-point output to read scores from")

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"predictions", "top", "confidence", "class_id"})

    def run(self, fields: ClassificationFields) -> dict[str, Any]:
        tensor = to_tensor(fields.image, self.spec)
        (raw,) = self.model.run(tensor, [self._output])
        scores = np.asarray(raw).reshape(-1)
        if fields.softmax:
            exp = np.exp(scores - scores.max())
            scores = exp / exp.sum()
        top_k = min(fields.top_k, scores.size)
        if top_k == 1:
            order = np.array([int(scores.argmax())])
        else:
            best_k = np.argpartition(scores, scores.size - top_k)[-top_k:]
            order = best_k[np.argsort(-scores[best_k])]
        predictions = [
            {
                "class": self._class_name(int(index)),
                "class_id": int(index),
                "confidence": round(float(scores[index]), 4),
            }
            for index in order
            if scores[index] >= fields.confidence
        ]
        best = int(order[0])
        return {
            "predictions": predictions,
            "top": self._class_name(best),
            "confidence": round(float(scores[best]), 4),
            "class_id": best,
        }

    def _class_name(self, index: int) -> str:
        if self._names is not None and index < len(self._names):
            return self._names[index]
        return str(index)
