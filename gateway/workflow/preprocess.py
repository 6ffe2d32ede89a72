"""Image to tensor: resize, colour order, scaling and normalisation, as a model expects."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

import cv2
import numpy as np
import numpy.typing as npt

ColorOrder = Literal["RGB", "BGR"]
ResizeMode = Literal["stretch", "crop"]
Interpolation = Literal["linear", "area", "nearest", "cubic"]
INTERPOLATION: Final = MappingProxyType(
    {
        "linear": cv2.INTER_LINEAR,
        "area": cv2.INTER_AREA,
        "nearest": cv2.INTER_NEAREST,
        "cubic": cv2.INTER_CUBIC,
    }
)


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


def letterbox(
    image: npt.NDArray[np.uint8], width: int, height: int, pad_value: int = 114
) -> tuple[npt.NDArray[np.uint8], float, tuple[float, float]]:
    """Resize keeping the aspect ratio and pad to `width`x`height`, centred, as Ultralytics
    does; returns the image, the scale and the (x, y) padding to map boxes back."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = round(w * scale), round(h * scale)
    pad_x, pad_y = (width - new_w) / 2.0, (height - new_h) / 2.0
    resized = image
    if (new_w, new_h) != (w, h):
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)  # type: ignore[assignment]
    top, bottom = round(pad_y - 0.1), round(pad_y + 0.1)
    left, right = round(pad_x - 0.1), round(pad_x + 0.1)
    padded = cv2.copyMakeBorder(
        resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pad_value,) * 3
    )
    return padded, scale, (float(left), float(top))  # type: ignore[return-value]


def to_tensor(image: np.ndarray[Any, Any], spec: TensorSpec) -> npt.NDArray[Any]:
    """A BGR or grey HxW(x3) uint8 image as a 1x3xHxW tensor: (pixel * scale - mean) / std."""
    resized: npt.NDArray[Any] = image
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if spec.resize == "crop":
        pre_w, pre_h = spec.resize_to or (spec.width, spec.height)
        resized = cv2.resize(image, (pre_w, pre_h), interpolation=INTERPOLATION[spec.interpolation])
        x0, y0 = (pre_w - spec.width) // 2, (pre_h - spec.height) // 2
        resized = resized[y0 : y0 + spec.height, x0 : x0 + spec.width]
    elif image.shape[:2] != (spec.height, spec.width):
        resized = cv2.resize(
            image, (spec.width, spec.height), interpolation=INTERPOLATION[spec.interpolation]
        )
    else:
        resized = image
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
