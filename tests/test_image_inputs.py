"""Image inputs as URLs, served by a real HTTP server on 127.0.0.1: fetched when the host is
allowed; refused precisely when it is not, when it answers 404 or redirects, is slow, or sends
too much. Also data URIs, and Roboflow's CLI-style one-item lists."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import make_config, running_gateway
from tests.test_http_workflows import qr_png, spec

SLOW_S = 3.0


class ImageServer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow.png":
            time.sleep(SLOW_S)
        if self.path == "/moved.png":
            self.send_response(302)
            self.send_header("Location", "http://10.0.0.9/elsewhere.png")
            self.end_headers()
            return
        if self.path not in ("/part.png", "/slow.png", "/huge.png"):
            self.send_error(404)
            return
        body = qr_png("SN-URL") if self.path != "/huge.png" else b"\0" * 300_000
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()  # no Content-Length: the size limit must hold while streaming
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def image_host() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ImageServer)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def config(allow: list[str]) -> Any:
    urls = {"allow": allow, "timeout_s": 1.0, "max_bytes": 200_000}
    return make_config(http={"image_urls": urls})


async def run(client: Any, image: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/workflows/run", json={"specification": spec(), "inputs": {"image": image}}
    )
    return response.status_code, response.json()


async def test_url_images_are_fetched_from_allowed_hosts_only(image_host: str) -> None:
    async with running_gateway(config([image_host])) as (_, client, _):
        status, body = await run(client, {"type": "url", "value": f"http://{image_host}/part.png"})
        assert status == 200, body
        assert body["outputs"][0]["serial"] == "SN-URL"
        cases = {
            "/nope.png": f"http://{image_host}/nope.png answered HTTP 404",
            "/moved.png": f"http://{image_host}/moved.png answered HTTP 302",
            "/slow.png": f"http://{image_host}/slow.png did not answer within 1 s",
            "/huge.png": "is over http.image_urls.max_bytes (200000)",
        }
        for path, expected in cases.items():
            status, body = await run(client, {"type": "url", "value": f"http://{image_host}{path}"})
            assert status == 422, body
            assert expected in body["message"], body["message"]
        status, body = await run(client, {"type": "url", "value": "http://127.0.0.2:9/a.png"})
        assert "host '127.0.0.2:9' is not in http.image_urls.allow" in body["message"]
        status, body = await run(client, {"type": "url", "value": "file:///etc/passwd"})
        assert "image URLs must be http or https, not 'file'" in body["message"]


async def test_url_images_are_off_by_default(image_host: str) -> None:
    async with running_gateway(config([])) as (_, client, _):
        status, body = await run(client, {"type": "url", "value": f"http://{image_host}/part.png"})
        assert status == 422
        assert "image URLs are off: list the host in http.image_urls.allow" in body["message"]


async def test_data_uri_and_one_item_list() -> None:
    uri = "data:image/png;base64," + base64.b64encode(qr_png("SN-9")).decode()
    async with running_gateway(config([])) as (_, client, _):
        for image in (uri, [uri], [{"type": "base64", "value": uri}]):
            status, body = await run(client, image)
            assert status == 200, body
            assert [out["serial"] for out in body["outputs"]] == ["SN-9"]
        status, body = await run(client, [])
        assert status == 422 and body["message"] == "inputs.image: an empty list of images"
        status, body = await run(client, [uri] * 65)  # every image is decoded before the runs
        assert status == 422
        assert body["message"] == "inputs.image: over 64 images (http.max_batch_images)"


async def test_batch_images_must_agree_in_count() -> None:
    two_inputs = spec()
    two_inputs["inputs"].append({"type": "WorkflowImage", "name": "other"})
    one = base64.b64encode(qr_png("SN-1")).decode()
    async with running_gateway(config([])) as (_, client, _):
        response = await client.post(
            "/workflows/run",
            json={"specification": two_inputs, "inputs": {"image": [one, one], "other": [one]}},
        )
        assert response.status_code == 422
        assert response.json()["message"] == "inputs.other: 1 images, but another input has 2"
