"""Instill's documented calls, sent with curl as its docs show them, against the real gateway:
the four trigger routes, both body shapes, multipart `variables[N].<input>`, async triggers
and operation polling, the token with and without `Bearer`."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import gateway_in_thread, make_config
from tests.test_http_workflows import qr_png, qr_workflows

TOKEN = "instill-token-3"


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    config = make_config(
        workflows=qr_workflows("tests/part_present.yaml"),
        http={"api_key": TOKEN},
    )
    with gateway_in_thread(config) as (_, url, _):
        yield url


def curl(*args: str) -> tuple[int, dict[str, Any]]:
    """curl as a user runs it; the HTTP status and the JSON answer."""
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "30", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


def data_uri(text: str) -> str:
    return "data:image/png;base64," + base64.b64encode(qr_png(text)).decode()


def post_json(url: str, body: dict[str, Any], auth: str = f"Bearer {TOKEN}") -> Any:
    return curl(
        "-X", "POST", url,
        "-H", "Content-Type: application/json",
        "-H", f"Authorization: {auth}",
        "--data", json.dumps(body),
    )  # fmt: skip


ROUTES = [
    ("/v1beta/namespaces/plant/pipelines/qr/trigger", True),  # current: threshold 0.1
    ("/v1beta/namespaces/plant/pipelines/qr/releases/1/trigger", False),  # v1: 0.99
]


@pytest.mark.parametrize(("route", "passes"), ROUTES)
def test_sync_trigger_with_data_variables(gateway_url: str, route: str, passes: bool) -> None:
    body = {
        "data": [
            {"variable": {"image": data_uri("SN-1")}},
            {"variable": {"image": data_uri("SN-2")}},
        ]
    }
    status, answer = post_json(gateway_url + route, body)
    assert status == 200, answer
    assert [out["serial"] for out in answer["outputs"]] == ["SN-1", "SN-2"]
    assert [out["pass"] for out in answer["outputs"]] == [passes, passes]
    assert answer["outputs"][0]["drawn"].startswith("data:image/jpeg;base64,")
    trace = answer["metadata"]["traces"]["qr"]
    assert trace["statuses"] == ["STATUS_COMPLETED", "STATUS_COMPLETED"]


def test_older_inputs_body_and_token_without_bearer(gateway_url: str) -> None:
    route = gateway_url + "/v1beta/namespaces/plant/pipelines/qr/trigger"
    body = {"inputs": [{"image": data_uri("SN-3"), "threshold": 0.99}]}
    status, answer = post_json(route, body, auth=TOKEN)
    assert status == 200, answer
    assert answer["outputs"][0]["serial"] == "SN-3" and answer["outputs"][0]["pass"] is False
    refused, error = post_json(route, body, auth="Bearer wrong")
    assert refused == 401 and "API key" in error["message"]


def test_multipart_variables(gateway_url: str, tmp_path: Path) -> None:
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(qr_png("SN-4"))
    second.write_bytes(qr_png("SN-5"))
    status, answer = curl(
        "-X", "POST", gateway_url + "/v1beta/namespaces/plant/pipelines/qr/trigger",
        "-H", f"Authorization: Bearer {TOKEN}",
        "-F", f"variables[0].image=@{first}",
        "-F", f"variables[1].image=@{second}",
        "-F", "variables[1].threshold=0.99",
    )  # fmt: skip
    assert status == 200, answer
    assert [(o["serial"], o["pass"]) for o in answer["outputs"]] == [
        ("SN-4", True),
        ("SN-5", False),
    ]
    wrong, error = curl(
        "-X", "POST", gateway_url + "/v1beta/namespaces/plant/pipelines/qr/trigger",
        "-H", f"Authorization: Bearer {TOKEN}",
        "-F", f"variables[0].image=@{first}",
        "-F", "variables[0].threshold=high",
    )  # fmt: skip
    assert wrong == 422
    assert error["message"] == "variables.threshold: expects float, got 'high'"


@pytest.mark.parametrize(
    "route",
    [
        "/v1beta/namespaces/plant/pipelines/qr/trigger-async",
        "/v1beta/namespaces/plant/pipelines/qr/releases/2/trigger-async",
    ],
)
def test_async_trigger_then_the_operation(gateway_url: str, route: str) -> None:
    status, started = post_json(
        gateway_url + route, {"data": [{"variable": {"image": data_uri("SN-6")}}]}
    )
    assert status == 200, started
    operation = started["operation"]
    assert operation["done"] is False and operation["name"].startswith("operations/")
    deadline = time.monotonic() + 30
    while not operation["done"] and time.monotonic() < deadline:
        time.sleep(0.05)
        _, polled = curl(
            gateway_url + "/v1beta/" + operation["name"], "-H", f"Authorization: {TOKEN}"
        )
        operation = polled["operation"]
    assert operation["done"] is True
    assert operation["response"]["outputs"][0]["serial"] == "SN-6"
    missing, error = curl(gateway_url + "/v1beta/operations/nope", "-H", f"Authorization: {TOKEN}")
    assert missing == 404 and "unknown or expired operation 'nope'" in error["message"]


def test_unknown_pipeline_release_and_bad_bodies(gateway_url: str) -> None:
    base = gateway_url + "/v1beta/namespaces/plant/pipelines"
    image = {"data": [{"variable": {"image": data_uri("SN-7")}}]}
    status, error = post_json(f"{base}/nope/trigger", image)
    assert status == 404 and "no workflow named 'nope' (known: demo, qr)" in error["message"]
    status, error = post_json(f"{base}/qr/releases/9/trigger", image)
    assert status == 404 and "workflow 'qr' has no version '9'" in error["message"]
    status, error = post_json(f"{base}/qr/trigger", {"data": [{"variable": {}}]})
    assert status == 422 and error["message"] == "data.0.variable.image: missing image input"
    status, error = post_json(f"{base}/qr/trigger", {"dat": []})
    assert status == 422 and error["message"].startswith("body.dat: Extra inputs")
