"""Workflow outputs as JSON-ready data: images become base64 JPEG (as Roboflow's server sends
them), or are handed to a callback that stores them and returns what to put in their place."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

ImageSink = Callable[[str, np.ndarray[Any, Any]], Any]
"""(output path such as `drawn` or `crops.1`, image) -> the JSON value standing for it."""


def encode_jpeg(image: np.ndarray[Any, Any], quality: int = 90) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return encoded.tobytes()


def base64_image(_: str, image: np.ndarray[Any, Any]) -> dict[str, Any]:
    return {"type": "base64", "value": base64.b64encode(encode_jpeg(image)).decode("ascii")}


def image_summary(_: str, image: np.ndarray[Any, Any]) -> dict[str, Any]:
    """An image output named but not carried: where the bytes would not fit (an OPC UA string a
    PLC reads, the history's JSON whose JPEG is on disk, the dashboard's event stream)."""
    return {"type": "image", "width": int(image.shape[1]), "height": int(image.shape[0])}


def is_image(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim in (2, 3)


def to_json(value: Any, on_image: ImageSink = base64_image, path: str = "") -> Any:
    """`value` with images replaced by `on_image(...)` and numpy scalars/arrays as Python."""
    if is_image(value):
        return on_image(path, value)
    if isinstance(value, dict):
        return {
            k: to_json(v, on_image, f"{path}.{k}" if path else str(k)) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [
            to_json(v, on_image, f"{path}.{i}" if path else str(i)) for i, v in enumerate(value)
        ]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def encode_output_images(outputs: Any, quality: int = 90) -> dict[str, bytes]:
    """Every image in `outputs` as JPEG, by path (`drawn`, `crops.1`): done once per result,
    on the inference thread, so no sink encodes on the event loop."""
    found: dict[str, bytes] = {}

    def keep(path: str, image: np.ndarray[Any, Any]) -> None:
        found[path] = encode_jpeg(image, quality)

    to_json(outputs, keep)
    return found
