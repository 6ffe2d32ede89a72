"""Stream routes under `/streams`: list and status, pause / resume / terminate, mode,
continuous results (`consume`), the latest frame, and image outputs of recent results by URL.
Roboflow's stream manager (`/inference_pipelines`) is `stream_manager`, on the same buffers."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any

import cv2
import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from adapters.http.errors import ApiError, ErrorBody, answers, media
from gateway.config import HttpConfig, StreamMode
from gateway.core import Core
from gateway.dispatcher import Dispatcher
from gateway.model import ErrorCode, InspectionResult, Origin
from gateway.wire import ImageTransport, encode_result, remembered

JPEG = media(200, "image/jpeg", "the image as JPEG")


class ModeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: StreamMode


class ConsumeBuffer:
    """Continuous-mode results per stream until a client consumes them (Roboflow's
    `consume`); bounded, so an absent client costs nothing but the oldest results."""

    def __init__(self, kept: int) -> None:
        self._kept = kept
        self._results: dict[str, deque[InspectionResult]] = {}

    def add(self, result: InspectionResult) -> None:
        if result.origin is Origin.CONTINUOUS:
            queue = self._results.setdefault(result.stream, deque(maxlen=self._kept))
            queue.append(remembered(result, ImageTransport.INLINE))  # bytes, not images

    def take(self, stream_id: str) -> list[InspectionResult]:
        queue = self._results.get(stream_id)
        taken = list(queue or ())
        if queue is not None:
            queue.clear()
        return taken

    def forget(self, stream_id: str) -> None:
        """A stream that is gone (removed at run time): its results go with it."""
        self._results.pop(stream_id, None)


class RecentOutputImages:
    """The JPEG image outputs of the last `kept` results that had any, for `url` transport:
    encoded bytes only (never frames), bounded in count."""

    def __init__(self, kept: int) -> None:
        self._kept = kept
        self._images: OrderedDict[tuple[str, int], dict[str, bytes]] = OrderedDict()

    def add(self, result: InspectionResult) -> None:
        if self._kept and result.output_jpegs:
            self._images[(result.stream, result.result_id)] = dict(result.output_jpegs)
            while len(self._images) > self._kept:
                self._images.popitem(last=False)

    def get(self, stream_id: str, result_id: int, path: str) -> bytes | None:
        return self._images.get((stream_id, result_id), {}).get(path)


def consume_body(
    stream_id: str, results: list[InspectionResult], excluded: list[str] | None = None
) -> dict[str, Any]:
    """Roboflow's `consume` answer: outputs (less `excluded`) and each frame's metadata."""
    bodies = [orjson.loads(encode_result(result, ImageTransport.INLINE)) for result in results]
    left_out = set(excluded or ())
    return {
        "status": "success",
        "outputs": [
            {name: value for name, value in body["outputs"].items() if name not in left_out}
            for body in bodies
        ],
        "frames_metadata": [
            {
                "source_id": stream_id,
                "frame_id": body["frame_id"],
                "frame_timestamp": body["frame_timestamp"],
                "result_id": body["result_id"],
                "pass": body["pass"],
                "error": body["error"],
            }
            for body in bodies
        ],
    }


def _control(
    dispatcher: Dispatcher, action: Callable[[str], Awaitable[None] | None]
) -> Callable[[str], Awaitable[dict[str, Any]]]:
    async def handler(stream_id: str) -> dict[str, Any]:
        dispatcher.snapshot(stream_id)  # UNKNOWN_STREAM before acting
        outcome = action(stream_id)
        if outcome is not None:
            await outcome
        return {"status": "success", "stream": dispatcher.snapshot(stream_id).to_dict()}

    return handler


def _latest_frame(dispatcher: Dispatcher) -> Callable[[str, int], Awaitable[Response]]:
    async def latest_frame(stream_id: str, quality: int = 80) -> Response:
        """The newest captured frame as JPEG (503 NO_FRAME or CAMERA_DISCONNECTED without)."""
        frame = dispatcher.current_frame(stream_id)
        params = [cv2.IMWRITE_JPEG_QUALITY, max(10, min(quality, 100))]
        # off the loop: a frame kept undecoded (`decode: on_trigger`) decodes its GOP here
        ok, encoded = await asyncio.to_thread(lambda: cv2.imencode(".jpg", frame.image, params))
        if not ok:
            raise ApiError(ErrorCode.WORKFLOW_ERROR, "JPEG encoding failed")
        return Response(
            encoded.tobytes(),
            media_type="image/jpeg",
            headers={"X-Frame-Id": str(frame.frame_id), "Cache-Control": "no-store"},
        )

    return latest_frame


def stream_router(core: Core, config: HttpConfig, continuous: ConsumeBuffer) -> APIRouter:
    router = APIRouter(responses=answers(ErrorBody, 404))
    dispatcher = core.dispatcher
    output_images = RecentOutputImages(config.output_images_kept)
    core.bus.subscribe(output_images.add)

    @router.get("/streams", tags=["streams"])
    async def list_streams() -> dict[str, Any]:
        return {"streams": [snapshot.to_dict() for snapshot in dispatcher.snapshots()]}

    _add_control_routes(router, dispatcher)

    @router.get("/streams/{stream_id}/consume", tags=["streams"])
    async def consume(stream_id: str) -> dict[str, Any]:
        """Results of continuous runs since the last call (oldest first), as Roboflow's
        inference pipelines answer `consume`."""
        dispatcher.snapshot(stream_id)
        return consume_body(stream_id, continuous.take(stream_id))

    @router.post("/streams/{stream_id}/mode", tags=["streams"])
    async def set_mode(stream_id: str, body: ModeRequest) -> dict[str, Any]:
        """Switch between `triggered` and `continuous` while running."""
        dispatcher.set_mode(stream_id, body.mode)
        return {"status": "success", "stream": dispatcher.snapshot(stream_id).to_dict()}

    @router.get("/streams/{stream_id}", tags=["streams"])
    async def stream_status(stream_id: str) -> dict[str, Any]:
        return dispatcher.snapshot(stream_id).to_dict()

    router.add_api_route(
        "/streams/{stream_id}/results/{result_id}/outputs/{path}",
        _output_image(output_images),
        methods=["GET"],
        tags=["streams"],
        response_class=Response,
        responses=JPEG,
    )
    return router


def _add_control_routes(router: APIRouter, dispatcher: Dispatcher) -> None:
    """pause / resume / terminate, and the latest frame (under both prefixes)."""
    actions: dict[str, Callable[[str], Awaitable[None] | None]] = {
        "pause": dispatcher.pause,
        "resume": dispatcher.resume,
        "terminate": dispatcher.terminate,
    }
    for verb, action in actions.items():
        router.add_api_route(
            f"/streams/{{stream_id}}/{verb}",
            _control(dispatcher, action),
            methods=["POST"],
            tags=["streams"],
        )
    for prefix, tag in (("/streams", "streams"), ("/inference_pipelines", "roboflow")):
        router.add_api_route(
            f"{prefix}/{{stream_id}}/latest_frame",
            _latest_frame(dispatcher),
            methods=["GET"],
            tags=[tag],
            response_class=Response,
            responses={**JPEG, **answers(ErrorBody, 503)},
        )


def _output_image(
    output_images: RecentOutputImages,
) -> Callable[[str, int, str], Awaitable[Response]]:
    async def output_image(stream_id: str, result_id: int, path: str) -> Response:
        """An image output of a recent result as JPEG (the link `url` transport sends)."""
        jpeg = output_images.get(stream_id, result_id, path)
        if jpeg is None:
            message = f"no image output {path!r} kept for result {result_id} of {stream_id!r}"
            raise ApiError(ErrorCode.BAD_REQUEST, message, 404)
        return Response(jpeg, media_type="image/jpeg")

    return output_image
