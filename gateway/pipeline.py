"""The Python API for video: a workflow over a video file, a camera URL or a USB camera, calling
`on_prediction(result, frame)` for each processed frame (Roboflow's `InferencePipeline`).

    from gateway.pipeline import VideoPipeline
    pipeline = VideoPipeline.init_with_workflow(
        video_reference="line.mp4", workflow="inspect.yaml", on_prediction=print, max_fps=5)
    pipeline.start()
    pipeline.join()          # returns at the end of the video, or after terminate()

It runs on the gateway's own parts: the camera sources, the capture buffer for live cameras, and
compiled workflows. A video file is read frame by frame (none dropped, at the speed the
workflow goes), `max_fps` keeping frames by their time in the video; a live camera is read by
the capture buffer and the workflow takes the newest frame, at most `max_fps` times a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.capture import CaptureBuffer
from gateway.config import SourceConfig, UrlSourceConfig, UsbSourceConfig, VideoFileSourceConfig
from gateway.frame_source import FrameSource, Image, SourceEnded, decoded
from gateway.model import GatewayError
from gateway.sources import build_source
from gateway.workflow import CompiledWorkflow, ModelRegistry, Workflow, WorkflowRun


@dataclass(frozen=True, slots=True)
class VideoFrame:
    image: Image
    frame_id: int
    """1 for the first frame of the video or camera."""
    timestamp: float
    """Wall-clock time it was read (a file's frames also carry `video_time_s`)."""
    video_time_s: float | None = None


Sink = Callable[[WorkflowRun, VideoFrame], None]


def source_config(reference: str | int | Path) -> SourceConfig:
    if isinstance(reference, int):
        return UsbSourceConfig(type="usb", index=reference)
    text = str(reference)
    if "://" in text:
        return UrlSourceConfig(type="url", url=text)
    return VideoFileSourceConfig(type="video_file", path=Path(text).resolve(), loop=False)


class VideoPipeline:
    """A workflow over one video source, on its own thread."""

    def __init__(
        self,
        source: FrameSource,
        workflow: CompiledWorkflow,
        on_prediction: Sink,
        *,
        live: bool,
        max_fps: float | None = None,
        parameters: Mapping[str, Any] | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        if len(workflow.image_inputs) != 1:
            raise ValueError("the workflow must have exactly one image input")
        self._source = source
        self._workflow = workflow
        self._image_input = workflow.image_inputs[0]
        self._parameters = workflow.bind(parameters)
        self._on_prediction = on_prediction
        self._on_end = on_end
        self._live = live
        self._interval = 1.0 / max_fps if max_fps else 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        """What ended the pipeline early (a sink or workflow that raised), if anything."""

    @classmethod
    def init_with_workflow(
        cls,
        video_reference: str | int | Path,
        workflow: str | Path | Mapping[str, Any] | Workflow,
        on_prediction: Sink,
        *,
        max_fps: float | None = None,
        parameters: Mapping[str, Any] | None = None,
        on_end: Callable[[], None] | None = None,
        models: ModelRegistry | None = None,
    ) -> VideoPipeline:
        """`workflow`: a definition file, a definition as a dict, or a loaded `Workflow`."""
        if isinstance(workflow, str | Path):
            workflow = Workflow.load(workflow, models=models)
        elif not isinstance(workflow, Workflow):
            workflow = Workflow.from_specification(workflow, models=models)
        config = source_config(video_reference)
        return cls(
            build_source("pipeline", config),
            workflow.compiled,
            on_prediction,
            live=not isinstance(config, VideoFileSourceConfig),
            max_fps=max_fps,
            parameters=parameters,
            on_end=on_end,
        )

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a pipeline starts once")
        target = self._run_live if self._live else self._run_file
        self._thread = threading.Thread(target=self._guarded, args=(target,), daemon=True)
        self._thread.start()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the end of the video (or `terminate`); True once the pipeline is done."""
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def terminate(self) -> None:
        self._stop.set()

    def _guarded(self, target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:  # reported on `error`, not lost in a thread
            self.error = exc
        finally:
            if self._on_end is not None:
                self._on_end()

    def _process(self, frame: VideoFrame) -> None:
        run = self._workflow.run({self._image_input: frame.image}, self._parameters)
        self._on_prediction(run, frame)

    def _run_file(self) -> None:
        """Every frame in order; `max_fps` keeps one per interval of video time."""
        self._source.open()
        try:
            fps = self._source.paced_fps or 30.0
            due, index = 0.0, 0
            while not self._stop.is_set():
                try:
                    image = self._source.read()
                except SourceEnded:
                    return
                if image is None:
                    return
                index += 1
                video_time = (index - 1) / fps
                if video_time + 1e-9 < due:
                    continue
                due = video_time + self._interval
                self._process(VideoFrame(decoded(image), index, time.time(), video_time))
        finally:
            self._source.close()

    def _run_live(self) -> None:
        """The newest frame each time, never one seen before, at most `max_fps` a second."""
        capture = CaptureBuffer("pipeline", self._source)
        capture.start()
        try:
            seen = 0.0
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    frame = capture.frame_after(seen, 1.0)
                except GatewayError:  # not connected (reconnecting), or no frame within 1 s
                    self._stop.wait(0.1)
                    continue
                seen = frame.captured_mono
                self._process(VideoFrame(frame.image, frame.frame_id, frame.captured_at))
                self._stop.wait(max(self._interval - (time.monotonic() - started), 0.0))
        finally:
            capture.stop()
