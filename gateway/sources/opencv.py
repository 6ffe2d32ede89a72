"""Cameras OpenCV opens: video files, RTSP/HTTP URLs and USB devices."""

from __future__ import annotations

import cv2

from gateway.frame_source import Image, SourceEnded, SourceError
from gateway.redact import redact


class OpenCVSource:
    """A video file, an RTSP/HTTP URL or a USB camera index, read through cv2.VideoCapture."""

    def __init__(
        self,
        target: str | int,
        *,
        is_file: bool = False,
        loop: bool = True,
        fps: float | None = None,
        size: tuple[int, int] | None = None,
    ) -> None:
        self._target = target
        self._is_file = is_file
        self._loop = loop
        self._fps = fps
        self._size = size
        self._capture: cv2.VideoCapture | None = None

    @property
    def description(self) -> str:
        shown = redact(str(self._target))
        return f"file {shown}" if self._is_file else f"camera {shown}"

    @property
    def paced_fps(self) -> float | None:
        if not self._is_file:
            return None
        if self._fps:
            return self._fps
        reported = self._capture.get(cv2.CAP_PROP_FPS) if self._capture is not None else 0.0
        return reported if reported and reported > 0 else 30.0

    def open(self) -> None:
        capture = cv2.VideoCapture(self._target)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot open {self.description}")
        if self._size is not None:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self._size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self._size[1])
        if self._fps is not None and not self._is_file:
            capture.set(cv2.CAP_PROP_FPS, self._fps)
        self._capture = capture

    def read(self) -> Image | None:
        if self._capture is None:
            return None
        ok, image = self._capture.read()
        if not ok and self._is_file:
            if not self._loop:
                raise SourceEnded(self.description)
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._capture.read()
        return image if ok else None  # type: ignore[return-value]

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
