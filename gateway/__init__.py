"""The inspection gateway's core.

OpenCV and the FFmpeg inside it print their own errors to stderr on every camera reconnect;
the gateway logs the camera's lifecycle itself (connected, lost with the reason, reconnected),
so their noise is turned down before OpenCV is first imported, unless the user set it."""

import os

os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
