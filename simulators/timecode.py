"""Reads the time code the RTSP simulator's `timecode` pattern paints into each frame: the
wall-clock millisecond it was generated (see `simulators/rtsp_server.py`)."""

from __future__ import annotations

from typing import Any

import numpy as np

BITS = 48


def generated_ms(image: np.ndarray[Any, Any]) -> int:
    """The generation time of a time-coded frame, in ms since the epoch (modulo 2**48)."""
    gray = image if image.ndim == 2 else image.mean(axis=2)
    height, width = gray.shape
    block = width // BITS
    row = gray[height // 8]
    value = 0
    for bit in range(BITS):
        middle = row[bit * block + block // 4 : (bit + 1) * block - block // 4]
        value = (value << 1) | int(middle.mean() > 128)
    return value
