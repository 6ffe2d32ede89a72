"""The wire vocabulary as a unit: reading trigger bodies, the result body and its encodings."""

from __future__ import annotations

import base64

import numpy as np
import orjson
import pytest

from gateway.model import ErrorCode, InspectionError, InspectionResult, Origin
from gateway.serialise import encode_output_images
from gateway.wire import (
    BadTrigger,
    ImageTransport,
    encode_result,
    error_body,
    parse_trigger,
    recipe_parameters,
    result_body,
)


def test_trigger_bodies_read_strictly_with_the_place_of_each_problem() -> None:
    assert parse_trigger(b"").parameters == {}
    request = parse_trigger(b'{"trigger_id": "t", "parameters": {"x": 1}, "part_id": 5}')
    assert (request.trigger_id, request.parameters, request.part_id) == ("t", {"x": 1}, 5)
    cases = [
        (b"{nope", "payload is not JSON"),
        (b"[1]", "payload must be a JSON object or empty"),
        (b'{"part_id": "5"}', "body.part_id: Input should be a valid integer"),
        (b'{"trigger_id": "", "x": 1}', "body.trigger_id: String should have at least 1"),
    ]
    for payload, message in cases:
        with pytest.raises(BadTrigger) as refused:
            parse_trigger(payload, where=("body",))
        assert refused.value.code is ErrorCode.BAD_REQUEST
        assert message in str(refused.value), str(refused.value)
    with pytest.raises(BadTrigger) as extra:
        parse_trigger(b'{"trigger_id": "keep-me", "colour": 1}')
    assert extra.value.trigger_id == "keep-me"  # the reply still names the trigger
    assert extra.value.detail[0]["loc"] == ["colour"]


def _result(**fields: object) -> InspectionResult:
    base: dict[str, object] = {
        "stream": "cam",
        "trigger_id": "t",
        "result_id": 7,
        "origin": Origin.MQTT,
        "received_at": 0.0,
    }
    return InspectionResult(**{**base, **fields})  # type: ignore[arg-type]


def test_result_body_fields_and_error_message() -> None:
    error = _result(error=InspectionError(ErrorCode.BUSY, "queue full"))
    body = result_body(error)
    assert body["success"] is False and body["message"] == "queue full"
    assert body["error"] == {"code": 4, "name": "BUSY", "message": "queue full"}
    assert body["source"] == "mqtt" and body["received_at"] == "1970-01-01T00:00:00.000000+00:00"
    assert error_body(ErrorCode.UNKNOWN_STREAM, "no", extra=1)["error"]["code"] == 8


def test_image_outputs_in_each_transport_from_one_encoding() -> None:
    image = np.zeros((4, 6, 3), np.uint8)
    outputs = {"drawn": image, "nested": [{"crop": image}], "n": np.int64(3)}
    result = _result(outputs=outputs, output_jpegs=encode_output_images(outputs))
    assert set(result.output_jpegs) == {"drawn", "nested.0.crop"}
    inline = result_body(result, ImageTransport.INLINE)["outputs"]
    assert base64.b64decode(inline["drawn"]["value"]) == result.output_jpegs["drawn"]
    assert inline["n"] == 3
    linked = result_body(result, ImageTransport.URL)["outputs"]["nested"][0]["crop"]
    assert linked == {
        "type": "url",
        "width": 6,
        "height": 4,
        "url": "/streams/cam/results/7/outputs/nested.0.crop",
    }
    omitted = result_body(result, ImageTransport.OMIT)["outputs"]["drawn"]
    assert omitted == {"type": "image", "width": 6, "height": 4}
    first = encode_result(result, ImageTransport.INLINE)
    assert encode_result(result.without_frame(), ImageTransport.INLINE) is first  # shared
    assert orjson.loads(first)["outputs"]["drawn"] == inline["drawn"]


def test_recipe_parameter_only_when_named_and_nonzero() -> None:
    assert recipe_parameters("recipe", 3) == {"recipe": 3}
    assert recipe_parameters("recipe", 0) == {}
    assert recipe_parameters(None, 3) == {}
    assert recipe_parameters("recipe", 3, {"recipe": 9}) == {"recipe": 9}
