"""/workflows/run over real HTTP (uvicorn on loopback): inline definitions, named and
versioned workflows, base64 and multipart images, and precise errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.conftest import make_config, running_gateway


def spec(threshold: float = 0.1) -> dict[str, Any]:
    """Reads a QR code and measures the dark fraction; passes when the QR reads and the
    fraction is over `threshold` (a parameter)."""
    return {
        "version": "1.0",
        "inputs": [
            {"type": "WorkflowImage", "name": "image"},
            {"type": "WorkflowParameter", "name": "threshold", "default_value": threshold},
        ],
        "steps": [
            {"type": "qr_code", "name": "qr", "image": "$inputs.image"},
            {"type": "color_area", "name": "dark", "image": "$inputs.image",
             "lower": [0, 0, 0], "upper": [179, 255, 60]},
            {"type": "expression", "name": "verdict",
             "expression": "serial is not None and fraction > threshold",
             "variables": {"serial": "$steps.qr.value", "fraction": "$steps.dark.fraction",
                           "threshold": "$inputs.threshold"}},
            {"type": "visualize", "name": "viz", "image": "$inputs.image",
             "predictions": "$steps.qr.predictions", "passed": "$steps.verdict.result"},
        ],
        "outputs": [
            {"type": "JsonField", "name": "serial", "selector": "$steps.qr.value"},
            {"type": "JsonField", "name": "fraction", "selector": "$steps.dark.fraction"},
            {"type": "JsonField", "name": "pass", "selector": "$steps.verdict.result"},
            {"type": "JsonField", "name": "drawn", "selector": "$steps.viz.image"},
        ],
    }  # fmt: skip


def qr_png(text: str) -> bytes:
    code = cv2.QRCodeEncoder.create().encode(text)
    code = cv2.resize(code, None, fx=6, fy=6, interpolation=cv2.INTER_NEAREST)
    code = cv2.copyMakeBorder(code, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=255)
    ok, encoded = cv2.imencode(".png", code)
    assert ok
    return encoded.tobytes()


def b64(data: bytes) -> dict[str, str]:
    return {"type": "base64", "value": base64.b64encode(data).decode()}


def decode_b64_jpeg(value: dict[str, Any]) -> np.ndarray[Any, Any]:
    assert value["type"] == "base64"
    image = cv2.imdecode(np.frombuffer(base64.b64decode(value["value"]), np.uint8), 1)
    assert image is not None
    return image


def qr_workflows(demo: str = "gateway/defaults/part_inspection.yaml") -> dict[str, Any]:
    """`qr` in two versions (v2 current: threshold 0.1; v1: 0.99) and a `demo` for the stream."""
    return {
        "demo": {"path": demo},
        "qr": {
            "specification": spec(0.1),
            "version": "2",
            "versions": {"1": {"specification": spec(0.99)}},
        },
    }


def config(**top: Any) -> Any:
    return make_config(workflows=qr_workflows(), **top)


async def test_inline_specification_with_base64_image() -> None:
    async with running_gateway(config()) as (_, client, _):
        body = {"specification": spec(), "inputs": {"image": b64(qr_png("SN-42"))}}
        response = await client.post("/workflows/run", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        (outputs,) = answer["outputs"]
        assert outputs["serial"] == "SN-42" and outputs["pass"] is True
        assert 0.1 < outputs["fraction"] < 0.9
        drawn = decode_b64_jpeg(outputs["drawn"])
        sent = cv2.imdecode(np.frombuffer(qr_png("SN-42"), np.uint8), 1)
        assert sent is not None
        assert drawn.shape == sent.shape and not np.array_equal(drawn, sent)
        assert set(answer["steps_ms"]) == {"qr", "dark", "verdict", "viz"}
        # a parameter override in inputs
        body["inputs"]["threshold"] = 0.95
        again = (await client.post("/workflows/run", json=body)).json()
        assert again["outputs"][0]["pass"] is False and again["pass"] is False


async def test_multipart_upload_named_and_versioned() -> None:
    async with running_gateway(config()) as (_, client, _):
        files = {"image": ("part.png", qr_png("SN-7"), "image/png")}
        current = await client.post("/workflows/qr/run", files=files)
        assert current.status_code == 200, current.text
        assert current.json()["outputs"][0]["pass"] is True  # v2: threshold 0.1
        pinned = await client.post("/workflows/qr/versions/1/run", files=files)
        assert pinned.json()["outputs"][0]["pass"] is False  # v1: threshold 0.99
        with_parameter = await client.post(
            "/workflows/qr/versions/1/run", files=files, data={"threshold": "0.05"}
        )
        assert with_parameter.json()["outputs"][0]["pass"] is True
        inline = await client.post(
            "/workflows/run",
            files=files,
            data={"specification": json.dumps(spec()), "inputs": '{"threshold": 0.2}'},
        )
        assert inline.status_code == 200, inline.text
        assert inline.json()["outputs"][0]["serial"] == "SN-7"
        listed = (await client.get("/workflows")).json()["workflows"]
        assert {w["name"]: w["versions"] for w in listed} == {"demo": ["1"], "qr": ["2", "1"]}


def error_of(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    message: str = body["error"]["message"]
    return message


@pytest.mark.parametrize(
    ("path", "body", "status", "expected"),
    [
        ("/workflows/run", {"inputs": {}}, 422, "specification: missing"),
        ("/workflows/run", {"specification": spec(), "inputs": {}}, 422,
         "inputs.image: missing image input"),
        ("/workflows/run", {"specification": spec(), "inputs": {"image": {"type": "url",
         "value": "http://example.com/a.jpg"}}}, 422,
         "inputs.image: image URLs are off: list the host in http.image_urls.allow"),
        ("/workflows/run", {"specification": spec(), "inputs": {"image": "%%%"}}, 422,
         "inputs.image: not valid base64"),
        ("/workflows/run", {"specification": spec(), "inputs": {"image": b64(b"not an image")}},
         422, "inputs.image: not a decodable image"),
        ("/workflows/run", {"specification": spec(), "inputs": {"image": b64(b"x"),
         "threshold": "high"}}, 422, "inputs.image: not a decodable image"),
        ("/workflows/qr/run", {"inputs": {"image": "QRPNG", "threshold": "high"}}, 422,
         "inputs.threshold: parameter 'threshold': expects a number, got str 'high'"),
        ("/workflows/qr/run", {"inputs": {"image": "QRPNG", "speed": 3}}, 422,
         "inputs.speed: parameter 'speed': unknown parameter"),
        ("/workflows/qr/run", {"specification": spec(), "inputs": {}}, 422,
         "specification: a named workflow takes no specification"),
        ("/workflows/qr/run", {"inputs": {}, "extra": 1}, 422, "extra: Extra inputs"),
        ("/workflows/nope/run", {}, 404, "no workflow named 'nope' (known: demo, qr)"),
        ("/workflows/qr/versions/9/run", {}, 404, "workflow 'qr' has no version '9'"),
        ("/workflows/run", {"specification": {**spec(), "steps": [{"type": "qr_code",
         "name": "qr", "image": "$inputs.threshold"}]}, "inputs": {}}, 422,
         "specification: step 'qr' field 'image': $inputs.threshold is a parameter"),
    ],
)  # fmt: skip
async def test_bad_requests_name_the_input(
    path: str, body: dict[str, Any], status: int, expected: str
) -> None:
    image = b64(qr_png("SN-1"))
    inputs = {k: image if v == "QRPNG" else v for k, v in body.get("inputs", {}).items()}
    body = {**body, "inputs": inputs} if "inputs" in body else body
    async with running_gateway(config()) as (_, client, _):
        assert error_of(await client.post(path, json=body), status).startswith(expected)
        # and the gateway keeps serving
        ok = await client.post("/workflows/qr/run", json={"inputs": {"image": image}})
        assert ok.status_code == 200


async def test_malformed_json_and_oversized_upload() -> None:
    async with running_gateway(config(http={"max_body_bytes": 64 * 1024})) as (_, client, _):
        response = await client.post(
            "/workflows/qr/run", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert error_of(response, 422).startswith("body: not valid JSON")
        big = {"image": ("big.png", b"\x89PNG" + bytes(100 * 1024), "image/png")}
        assert error_of(await client.post("/workflows/qr/run", files=big), 413).startswith(
            "request body over 65536 bytes"
        )
        files = {"image": ("part.png", qr_png("SN-9"), "image/png")}
        assert (await client.post("/workflows/qr/run", files=files)).status_code == 200


async def test_a_step_failing_at_run_time_is_a_workflow_error(tmp_path: Path) -> None:
    template = tmp_path / "big.png"
    cv2.imwrite(str(template), np.zeros((600, 600), np.uint8))
    matching = {
        "inputs": [{"type": "WorkflowImage", "name": "image"}],
        "steps": [{"type": "template_match", "name": "find", "image": "$inputs.image",
                   "template": str(template)}],
        "outputs": [{"type": "JsonField", "name": "s", "selector": "$steps.find.score"}],
    }  # fmt: skip
    body = {"specification": matching, "inputs": {"image": b64(qr_png("A"))}}
    async with running_gateway(config()) as (_, client, _):
        response = await client.post("/workflows/run", json=body)
        assert error_of(response, 500).startswith(
            "step 'find' failed: ValueError: image 230x230 is smaller than the template"
        )
        assert response.json()["error"]["name"] == "WORKFLOW_ERROR"
        files = {"image": ("part.png", qr_png("SN-9"), "image/png")}
        assert (await client.post("/workflows/qr/run", files=files)).status_code == 200
