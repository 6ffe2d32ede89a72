"""The wire vocabulary every protocol shares: the trigger request, the error body, the result
body, and how image outputs travel. Encoded here once; adapters add only their transport.

A result body is `{"success", "stream", "trigger_id", "result_id", "source", "received_at",
"frame_timestamp", "frame_id", "frame_age_ms", "outputs", "pass", "part_id", "timings",
"error"}`, with `"message"` beside `"error"` when there is one. An error body (a request that is
not a trigger at all, e.g. a wrong route) is `{"success": false, "message", "error": {"code",
"name", "message"}}`. Image outputs travel as `ImageTransport` says.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Final

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.model import ErrorCode, InspectionError, InspectionResult, iso_utc
from gateway.serialise import encode_jpeg, image_summary, to_json

MAX_TRIGGER_ID: Final = 128
MAX_DEPTH: Final = 32
"""Deepest nesting a trigger body may have (parameters are flat in practice)."""


class ImageTransport(StrEnum):
    """How image outputs (a visualisation, crops) appear in a result body."""

    INLINE = "inline"
    """`{"type": "base64", "value": <JPEG>}`, as Roboflow's server sends them."""
    URL = "url"
    """`{"type": "url", "url": "/streams/<id>/results/<result_id>/outputs/<path>", "width",
    "height"}`: fetched from the HTTP API while the gateway still holds it (recent results)."""
    OMIT = "omit"
    """`{"type": "image", "width", "height}`: named, not carried (OPC UA strings, the history,
    the dashboard's event stream)."""


class TriggerRequest(BaseModel):
    """The body of a trigger on HTTP and MQTT (empty means `{}`); JSON types only, strictly."""

    model_config = ConfigDict(extra="forbid", strict=True)

    trigger_id: str | None = Field(None, min_length=1, max_length=MAX_TRIGGER_ID)
    parameters: dict[str, Any] = Field(default_factory=dict)
    part_id: int | None = Field(None, ge=0, le=0xFFFFFFFF)


class BadTrigger(Exception):
    """A trigger body that cannot be read: BAD_REQUEST with the place and the problem."""

    def __init__(
        self,
        message: str,
        trigger_id: str | None = None,
        detail: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode.BAD_REQUEST
        self.trigger_id = trigger_id
        self.detail = detail or []


def read_json_object(payload: bytes, what: str = "payload") -> dict[str, Any]:
    """A JSON object from raw bytes (`{}` when empty); BadTrigger naming `what` otherwise.

    Refused as well: NaN and Infinity (not JSON), nesting deeper than `MAX_DEPTH`, and strings
    holding lone surrogates (`"\\ud800"`), which no UTF-8 reply, topic or database could carry.
    """
    if not payload.strip():
        return {}
    try:
        data = json.loads(payload, parse_constant=_no_constant)
    except RecursionError:
        raise BadTrigger(f"{what} is nested deeper than {MAX_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadTrigger(f"{what} is not JSON: JSON decode error: {exc}") from None
    if not isinstance(data, dict):
        raise BadTrigger(f"{what} must be a JSON object or empty")
    problem = _unwritable(data, what, 0)
    if problem is not None:
        raise BadTrigger(problem)
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unwritable(value: Any, where: str, depth: int) -> str | None:
    """Why `value` cannot be answered back (too deep, lone surrogate), else None."""
    if depth > MAX_DEPTH:
        return f"{where} is nested deeper than {MAX_DEPTH} levels"
    if isinstance(value, str):
        return None if _encodable(value) else f"{where}: invalid Unicode (a lone surrogate)"
    items: Any = value.items() if isinstance(value, dict) else None
    if isinstance(value, list):
        items = enumerate(value)
    for key, item in items or ():
        if isinstance(key, str) and not _encodable(key):
            return f"{where}: invalid Unicode (a lone surrogate) in a key"
        problem = _unwritable(item, f"{where}.{key}", depth + 1)
        if problem is not None:
            return problem
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_trigger(payload: bytes, *, where: tuple[str, ...] = ()) -> TriggerRequest:
    """A trigger request from raw JSON bytes. `where` prefixes error locations (`body` on HTTP)."""
    data = read_json_object(payload)
    raw_id = data.get("trigger_id")
    trigger_id = raw_id if isinstance(raw_id, str) and 0 < len(raw_id) <= MAX_TRIGGER_ID else None
    try:
        return TriggerRequest.model_validate(data)
    except ValidationError as exc:
        detail = [
            {"loc": [*where, *error["loc"]], "msg": error["msg"], "type": error["type"]}
            for error in exc.errors(include_url=False)
        ]
        first = detail[0]
        place = ".".join(str(part) for part in first["loc"])
        raise BadTrigger(f"{place}: {first['msg']}", trigger_id, detail) from None


def error_body(code: ErrorCode, message: str, **extra: Any) -> dict[str, Any]:
    """The body of a request refused before it became a trigger (wrong route, bad API key)."""
    return {
        "success": False,
        "message": message,
        "error": InspectionError(code, message).to_dict(),
        **extra,
    }


def output_url(result: InspectionResult, path: str) -> str:
    return f"/streams/{result.stream}/results/{result.result_id}/outputs/{path}"


def _image_writer(
    result: InspectionResult, images: ImageTransport
) -> Callable[[str, np.ndarray[Any, Any]], Any]:
    if images is ImageTransport.OMIT:
        return image_summary
    if images is ImageTransport.URL:

        def link(path: str, image: np.ndarray[Any, Any]) -> dict[str, Any]:
            return {**image_summary(path, image), "type": "url", "url": output_url(result, path)}

        return link

    def inline(path: str, image: np.ndarray[Any, Any]) -> dict[str, Any]:
        jpeg = result.output_jpegs.get(path) or encode_jpeg(image)
        return {"type": "base64", "value": base64.b64encode(jpeg).decode("ascii")}

    return inline


def result_body(
    result: InspectionResult, images: ImageTransport = ImageTransport.INLINE
) -> dict[str, Any]:
    """A result as JSON-ready data (see the module doc for the fields)."""
    body: dict[str, Any] = {
        "success": result.ok,
        "stream": result.stream,
        "trigger_id": result.trigger_id,
        "result_id": result.result_id,
        "source": result.origin.value,
        "received_at": iso_utc(result.received_at),
        "frame_timestamp": (
            None if result.frame_timestamp is None else iso_utc(result.frame_timestamp)
        ),
        "frame_id": result.frame_id,
        "frame_age_ms": None if result.frame_age_ms is None else round(result.frame_age_ms, 3),
        "outputs": to_json(result.outputs, _image_writer(result, images)),
        "pass": result.passed,
        "part_id": result.part_id,
        "timings": result.timings.to_dict(),
        "error": None if result.error is None else result.error.to_dict(),
    }
    if result.error is not None:
        body["message"] = result.error.message
    return body


def encode_result(
    result: InspectionResult, images: ImageTransport = ImageTransport.INLINE
) -> bytes:
    """The result body as JSON bytes, made once per transport and kept on the result, so the
    MQTT reply, the result topic and the HTTP answer share one encoding."""
    cached = result.encoded.get(images)
    if cached is None:
        cached = result.encoded[images] = orjson.dumps(result_body(result, images))
    return cached


def recipe_parameters(
    parameter: str | None, recipe: int, parameters: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A PLC's recipe number as the workflow parameter the config names (when nonzero); a
    parameter the trigger gives itself wins."""
    merged = dict(parameters or {})
    if parameter and recipe:
        merged.setdefault(parameter, recipe)
    return merged


def remembered(result: InspectionResult, images: ImageTransport) -> InspectionResult:
    """What answering a repeat needs: the encoded body (made now), without the frame, the
    output arrays or their JPEGs, so a cache of recent results holds bytes, not images."""
    encode_result(result, images)
    return dataclasses.replace(
        result, outputs={}, output_jpegs={}, image=None, encoded=dict(result.encoded)
    )
