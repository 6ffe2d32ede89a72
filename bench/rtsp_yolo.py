"""Trigger -> result on an RTSP camera with YOLOv8n int8 (../shared/models), beside the bare
floor in the same run: a PyAV decode loop keeping the newest frame, and per trigger the same
letterbox + `session.run` + box decoding on it.

The camera is the RTSP simulator streaming the YOLOX dog picture (1280x720 at 30 fps), so the
detections are real (dog, bicycle, car). The gateway runs the stream as users do (PyAV capture,
`latest`, an `onnx_object_detection` step), triggered from Python, once with `decode:
every_frame` and once with `on_trigger`.

    python -m bench.rtsp_yolo [--triggers 100]
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import onnxruntime as ort

from bench.report import summary, write_report
from gateway.app import Gateway
from gateway.config import GatewayConfig
from gateway.logs import configure_logging
from gateway.model import Origin, Trigger
from gateway.workflow.preprocess import letterbox
from gateway.workflow.steps.detection import decode
from simulators.rtsp_camera import RtspCamera

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
MODEL = MODELS / "yolov8n-coco-int8" / "yolov8n_int8.onnx"
IMAGE = MODELS / "images" / "yolox_dog.jpg"
SIZE = (1280, 720)


def feed(camera: RtspCamera, stop: threading.Event) -> None:
    image = cv2.imread(str(IMAGE))
    assert image is not None, f"{IMAGE} is missing"
    picture = cv2.resize(image, SIZE).tobytes()
    due = time.monotonic()
    while not stop.is_set() and camera.write_frame(picture):
        due += 1 / 30
        stop.wait(max(0.0, due - time.monotonic()))


def bare_floor(url: str, triggers: int) -> list[float]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # as the gateway's runtime.intra_op_threads default
    session = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
    newest: list[Any] = [None]
    stop = threading.Event()

    def read() -> None:
        container = av.open(url, options={"rtsp_transport": "tcp"}, timeout=(5, 5))
        for frame in container.decode(video=0):
            newest[0] = frame.to_ndarray(format="bgr24")
            if stop.is_set():
                break
        container.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    for _ in range(500):  # bounded: until the first frame
        if newest[0] is not None:
            break
        time.sleep(0.01)
    times = []
    for _ in range(triggers):
        started = time.perf_counter()
        image = newest[0]
        padded, _, _ = letterbox(image, 640, 640)
        tensor = cv2.cvtColor(padded, cv2.COLOR_BGR2RGB).astype(np.float32).transpose(2, 0, 1)
        (raw,) = session.run(None, {"images": tensor[None] / 255.0})
        decode(raw, "v8", 0.25)
        times.append((time.perf_counter() - started) * 1000)
        time.sleep(0.05)
    stop.set()
    reader.join(10)
    return times


async def gateway_triggers(url: str, triggers: int, decode_mode: str) -> list[float]:
    workflow = {
        "inputs": [{"type": "WorkflowImage", "name": "image"}],
        "steps": [
            {"type": "onnx_object_detection", "name": "det", "image": "$inputs.image",
             "model": str(MODEL)},
        ],
        "outputs": [{"type": "JsonField", "name": "n", "selector": "$steps.det.count"}],
    }  # fmt: skip
    config = GatewayConfig.model_validate(
        {
            "http": {"enabled": False},
            "history": {"enabled": False},
            "workflows": {"yolo": {"specification": workflow}},
            "streams": {
                "cam": {
                    "source": {"type": "url", "url": url, "decode": decode_mode},
                    "workflow": "yolo",
                }
            },
        }
    )
    times = []
    async with Gateway(config) as gateway:
        for _ in range(500):  # bounded
            if gateway.dispatcher.latest_frame("cam") is not None:
                break
            await asyncio.sleep(0.01)
        for _ in range(triggers):
            started = time.perf_counter()
            result = await gateway.dispatcher.inspect(Trigger("cam", Origin.PYTHON))
            assert result.error is None and result.outputs["n"] >= 3, result
            times.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.05)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triggers", type=int, default=100)
    args = parser.parse_args()
    configure_logging("warning")
    stop = threading.Event()
    with RtspCamera(*SIZE, fps=30, pattern="stdin") as camera:
        threading.Thread(target=feed, args=(camera, stop), daemon=True).start()
        floor = bare_floor(camera.url, args.triggers)
        every = asyncio.run(gateway_triggers(camera.url, args.triggers, "every_frame"))
        on_trigger = asyncio.run(gateway_triggers(camera.url, args.triggers, "on_trigger"))
        stop.set()
    rows = {
        "floor": summary(floor),
        "every_frame": summary(every),
        "on_trigger": summary(on_trigger),
    }
    lines = [
        f"RTSP 1280x720@30, YOLOv8n int8, {args.triggers} triggers each, one run",
        "",
        "| path | p50 ms | p99 ms | p50 / floor |",
        "|---|---|---|---|",
    ]
    for name, figure in rows.items():
        ratio = figure["p50_ms"] / rows["floor"]["p50_ms"]
        lines.append(f"| {name} | {figure['p50_ms']:.1f} | {figure['p99_ms']:.1f} | {ratio:.2f} |")
    write_report("rtsp_yolo", rows, lines)


if __name__ == "__main__":
    main()
