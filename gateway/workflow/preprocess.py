"""Image to tensor: resize, colour order, scaling and normalisation, as a model expects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

ColorOrder = Literal["RGB", "BGR"]
ResizeMode = Literal["stretch", "crop"]
Interpolation = Literal["linear", "area", "nearest", "cubic"]
INTERPOLATION = {
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "nearest": cv2.INTER_NEAREST,
    "cubic": cv2.INTER_CUBIC,
}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    width: int
    height: int
    color_order: ColorOrder = "RGB"
    resize: ResizeMode = "stretch"
    interpolation: Interpolation = "linear"
    resize_to: tuple[int, int] | None = None
    """`crop`: resize to this (w, h) first, then take the centre `width`x`height`."""
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    dtype: type = np.float32


def to_tensor(image: npt.NDArray[np.uint8], spec: TensorSpec) -> npt.NDArray[Any]:
    """A BGR or grey HxW(x3) uint8 image as a 1x3xHxW tensor: (pixel * scale - mean) / std."""
    resized: npt.NDArray[Any] = image
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)  # type: ignore[assignment]
    if spec.resize == "crop":
        pre_w, pre_h = spec.resize_to or (spec.width, spec.height)
        resized = cv2.resize(image, (pre_w, pre_h), interpolation=INTERPOLATION[spec.interpolation])
        x0, y0 = (pre_w - spec.width) // 2, (pre_h - spec.height) // 2
        resized = resized[y0 : y0 + spec.height, x0 : x0 + spec.width]
    else:
        resized = cv2.resize(
            image, (spec.width, spec.height), interpolation=INTERPOLATION[spec.interpolation]
        )
    if spec.color_order == "RGB":
        resized = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
    tensor: npt.NDArray[Any] = resized.astype(np.float32)
    if spec.scale != 1.0:
        tensor *= spec.scale
    if any(spec.mean):
        tensor -= np.asarray(spec.mean, np.float32)
    if any(s != 1.0 for s in spec.std):
        tensor /= np.asarray(spec.std, np.float32)
    chw = np.ascontiguousarray(tensor.transpose(2, 0, 1)[np.newaxis])
    return chw if spec.dtype is np.float32 else chw.astype(spec.dtype)
