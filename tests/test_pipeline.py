"""The Python `VideoPipeline` on a generated video: every frame (or every frame `max_fps`
keeps) reaches the sink in order, `join` returns at the end of the video, `terminate` stops it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gateway.pipeline import VideoFrame, VideoPipeline
from gateway.sources.scene import ConveyorScene
from gateway.workflow import WorkflowRun
from simulators.camera import write_video

DARK_AREA = {
    "inputs": [{"type": "WorkflowImage", "name": "image"}],
    "steps": [
        {"type": "color_area", "name": "dark", "image": "$inputs.image",
         "lower": [0, 0, 0], "upper": [179, 255, 60]},
    ],
    "outputs": [{"type": "JsonField", "name": "fraction", "selector": "$steps.dark.fraction"}],
}  # fmt: skip


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "line.avi"
    return write_video(path, ConveyorScene(160, 120), frames=40, fps=20.0)


def collect(
    video: Path, max_fps: float | None = None
) -> tuple[list[tuple[int, float]], threading.Event]:
    seen: list[tuple[int, float]] = []
    ended = threading.Event()

    def sink(result: WorkflowRun, frame: VideoFrame) -> None:
        assert frame.video_time_s is not None
        seen.append((frame.frame_id, frame.video_time_s))
        assert 0.0 <= result.outputs["fraction"] <= 1.0

    pipeline = VideoPipeline.init_with_workflow(
        video, DARK_AREA, sink, on_end=ended.set, max_fps=max_fps
    )
    pipeline.start()
    assert pipeline.join(60), "the pipeline did not end with the video"
    assert pipeline.error is None
    return seen, ended


def test_every_frame_of_the_video_reaches_the_sink_then_join_returns(video: Path) -> None:
    seen, ended = collect(video)
    assert [frame_id for frame_id, _ in seen] == list(range(1, 41))
    assert ended.is_set()


def test_max_fps_keeps_frames_by_video_time(video: Path) -> None:
    seen, _ = collect(video, max_fps=5.0)  # a 20 fps video: every 4th frame, 0.2 s apart
    assert [frame_id for frame_id, _ in seen] == list(range(1, 41, 4))
    assert [round(t, 2) for _, t in seen] == [round(0.2 * i, 2) for i in range(10)]


def test_terminate_stops_a_pipeline_early(video: Path) -> None:
    started = threading.Event()
    count = [0]

    def sink(_: WorkflowRun, __: VideoFrame) -> None:
        count[0] += 1
        started.set()
        threading.Event().wait(0.05)  # a slow sink: the video would take 2 s

    pipeline = VideoPipeline.init_with_workflow(video, DARK_AREA, sink)
    pipeline.start()
    assert started.wait(30)
    pipeline.terminate()
    assert pipeline.join(10)
    assert count[0] < 40


def test_a_sink_that_raises_ends_the_pipeline_with_its_error(video: Path) -> None:
    def sink(_: WorkflowRun, __: VideoFrame) -> None:
        raise RuntimeError("sink broke")

    pipeline = VideoPipeline.init_with_workflow(video, DARK_AREA, sink)
    pipeline.start()
    assert pipeline.join(30)
    assert isinstance(pipeline.error, RuntimeError)
