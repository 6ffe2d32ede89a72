"""Hostile input on HTTP, MQTT and the history: each gets exactly one precise answer, nothing
is lost or leaked, and the gateway keeps serving (one test per defect found by fuzzing)."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.config import SourceConfig, SyntheticSourceConfig
from gateway.frame_source import FrameSource, Image
from gateway.model import Origin, Trigger
from gateway.sources.scene import ConveyorScene
from gateway.sources.synthetic import SyntheticCamera
from simulators.broker import Mosquitto
from simulators.net import free_port
from tests.conftest import ROOT, first_frame, make_config, running_gateway, wait_until
from tests.test_http_errors import assert_error, assert_serving
from tests.test_mqtt import PREFIX, client, gateway_on
from tests.test_wire_delivery import CROP_STREAM, CROP_WORKFLOW

BAD_NUMBERS: list[tuple[Any, str]] = [
    (None, "expects a number, got null"),
    (10**400, "expects a number, got an integer of 401 digits"),
    ([0.5], "expects a number, got list"),
]


async def test_null_and_huge_numbers_are_422_naming_the_parameter_on_every_http_route() -> None:
    async with running_gateway(make_config()) as (gateway, http, published):
        await first_frame(gateway)
        for value, message in BAD_NUMBERS:
            body = {"parameters": {"min_confidence": value}}
            answer = await http.post("/streams/cam/trigger", json=body)
            assert_error(answer, 422, 7, "BAD_REQUEST", f"'min_confidence': {message}")
            roboflow = await http.post("/inference_pipelines/cam/trigger", json=body["parameters"])
            assert roboflow.status_code == 200 and roboflow.json()["error"]["code"] == 7
        assert len(published) == 2 * len(BAD_NUMBERS)
        await assert_serving(http)


async def test_mqtt_bad_numbers_surrogates_and_deep_nesting_each_get_one_reply(
    mosquitto: Mosquitto,
) -> None:
    cases: list[tuple[bytes, str]] = [
        (b'{"parameters": {"min_confidence": null}}', "got null"),
        (b'{"parameters": {"min_confidence": 1' + b"0" * 400 + b"}}", "401 digits"),
        (b'{"trigger_id": "a\\ud800b"}', "trigger_id: invalid Unicode"),
        (b'{"parameters": {"min_confidence": "\\udfff"}}', "invalid Unicode"),
        (b'{"parameters": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1001, "nested deeper"),
        (b"[" * 5000 + b"]" * 5000, "nested deeper"),
    ]
    async with gateway_on(mosquitto) as (gateway, published):
        with client(mosquitto) as sim:
            for payload, message in cases:
                reply = await asyncio.to_thread(sim.trigger, "cam", payload)
                assert reply["error"]["code"] == 7 and message in reply["error"]["message"], reply
            good = await asyncio.to_thread(sim.trigger, "cam", {"trigger_id": "after"})
            assert good["success"] is True
        assert [int(r.error_code) for r in published] == [7] * len(cases) + [0]
        assert gateway.history is not None
        history = gateway.history
        await wait_until(lambda: history.written >= len(cases) + 1)  # every one stored


async def test_caches_of_answered_triggers_hold_bytes_not_images() -> None:
    config = make_config(streams=CROP_STREAM, workflows={"crop": {"specification": CROP_WORKFLOW}})
    async with running_gateway(config) as (gateway, http, _):
        await first_frame(gateway)
        headers = {"Idempotency-Key": "k-1"}
        first = await http.post("/streams/cam/trigger", headers=headers)
        again = await http.post("/streams/cam/trigger", headers=headers)
        assert first.status_code == 200 and again.content == first.content  # the same answer
        job = (await http.post("/streams/cam/trigger/async")).json()["job_id"]
        done = (await http.get(f"/jobs/{job}", params={"wait_s": 5})).json()
        assert done["result"]["outputs"]["crop"]["type"] == "base64"
        assert gateway.http is not None
        triggers = gateway.http.app.state.triggers
        for cache in (triggers._idempotent, triggers._jobs):
            kept = [future.result() for _, future in cache._items.values()]
            assert kept and all(r.outputs == {} and r.output_jpegs == {} for r in kept)
            assert all(r.image is None and r.encoded for r in kept)


async def test_history_keeps_rows_whatever_the_trigger_id_and_csv_cells_are_inert(
    tmp_path: Path,
) -> None:
    config = make_config(history={"save_images": "all", "data_dir": str(tmp_path / "data")})
    ids = ["nul\x00id", "../../escape", "x/y", '=HYPERLINK("http://evil","x")', "+1", "@cmd"]
    async with running_gateway(config) as (gateway, http, _):
        await first_frame(gateway)
        for trigger_id in ids:
            answer = await http.post("/streams/cam/trigger", json={"trigger_id": trigger_id})
            assert answer.status_code == 200, answer.text
        assert gateway.history is not None
        history = gateway.history
        await wait_until(lambda: history.written >= len(ids))
        stored = (await http.get("/results", params={"limit": 50})).json()["results"]
        assert sorted(row["trigger_id"] for row in stored) == sorted(ids)
        images = tmp_path / "data" / "images"
        files = [p for p in images.rglob("*.jpg")]
        assert len(files) == len(ids) and all(p.parent.parent == images for p in files)
        for row in stored:
            assert (await http.get(f"/results/{row['id']}/image")).status_code == 200
        exported = (await http.get("/results.csv")).text
    cells = {row[3] for row in list(csv.reader(io.StringIO(exported)))[1:]}
    assert '\'=HYPERLINK("http://evil","x")' in cells and "'+1" in cells and "'@cmd" in cells
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells)


async def test_history_routes_refuse_out_of_range_values_with_422_not_500() -> None:
    async with running_gateway(make_config()) as (gateway, http, _):
        await first_frame(gateway)
        for path, params in (
            ("/results", {"offset": "9223372036854775808"}),
            ("/results/99999999999999999999/image", {}),
            ("/results/99999999999999999999", {}),
        ):
            answer = await http.get(path, params=params)
            assert answer.status_code == 422 and answer.json()["error"]["code"] == 7, path
        for since in ("0001-01-01T00:00:00", "9999-12-31T23:59:59", "0001-01-01T00:00:00Z"):
            answer = await http.get("/results", params={"since": since})
            assert answer.status_code == 200, (since, answer.text)
            csv_answer = await http.get("/results.csv", params={"until": since})
            assert csv_answer.status_code == 200


async def test_dashboard_assets_are_public_and_data_needs_the_key() -> None:
    config = make_config(http={"api_key": "s3cret"})
    async with running_gateway(config, api_key="s3cret") as (gateway, http, _):
        await first_frame(gateway)
        assert (await http.get("/results.csv")).status_code == 200  # with the header
        async with httpx.AsyncClient(base_url=str(http.base_url)) as anonymous:
            for asset in ("/", "/dashboard/app.js", "/dashboard/style.css"):
                assert (await anonymous.get(asset)).status_code == 200, asset
            for data in ("/results.csv", "/results", "/streams"):
                assert (await anonymous.get(data)).status_code == 401, data


class SlowToRestartCamera(SyntheticCamera):
    """A camera that takes 0.4 s to deliver its first frame after being reopened (warming up,
    as GigE and RTSP cameras do): the window in which only old frames exist."""

    def __init__(self, scene: ConveyorScene, fps: float) -> None:
        super().__init__(scene, fps)
        self._warm_at = 0.0

    def open(self) -> None:
        super().open()
        if self.opens > 1:
            self._warm_at = time.monotonic() + 0.4

    def read(self) -> Image | None:
        time.sleep(max(self._warm_at - time.monotonic(), 0.0))
        return super().read()


def slow_to_restart(stream_id: str, config: SourceConfig) -> FrameSource:
    assert isinstance(config, SyntheticSourceConfig)
    return SlowToRestartCamera(ConveyorScene(config.width, config.height), config.fps)


async def test_no_frame_from_before_terminate_is_used_after_resume() -> None:
    async with running_gateway(make_config(), slow_to_restart) as (gateway, http, _):
        await first_frame(gateway)
        await http.post("/streams/cam/terminate")
        stopped_at = time.time()
        await http.post("/streams/cam/resume")
        for _ in range(20):
            body = (await http.post("/streams/cam/trigger")).json()
            if body["success"]:
                assert body["frame_timestamp"] > _iso(stopped_at)
            else:
                assert body["error"]["name"] in {"CAMERA_DISCONNECTED", "NO_FRAME"}, body
        result = await gateway.dispatcher.inspect(Trigger("cam", Origin.PYTHON))
        assert result.frame_timestamp is None or result.frame_timestamp > stopped_at


def _iso(epoch_s: float) -> str:
    from gateway.model import iso_utc

    return iso_utc(epoch_s)


def test_camera_password_never_leaves_the_gateway(tmp_path: Path) -> None:
    secret = "hunter2-" + os.urandom(4).hex()
    (tmp_path / "plant.yaml").write_text(
        "workflows: {demo: {path: " + str(ROOT / "tests" / "part_present.yaml") + "}}\n"
        "streams:\n"
        "  cam:\n"
        "    source: {type: url, url: 'rtsp://admin:${CAMERA_PASSWORD}@127.0.0.1:9/live'}\n"
        "    workflow: demo\n"
        "    reconnect: {initial_s: 0.05, max_s: 0.2}\n"
        "history: {data_dir: " + str(tmp_path / "data") + "}\n"
        "mqtt: {enabled: false}\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", "from gateway.cli import main; main()", "run", "-c", "plant.yaml",
         "--port", str(port), "--log-format", "json"],
        cwd=tmp_path, env={**os.environ, "CAMERA_PASSWORD": secret},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    answers: list[str] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as http:
            for _ in range(200):  # bounded: about 20 s
                try:
                    status = http.get("/streams/cam")
                except httpx.TransportError:
                    time.sleep(0.1)
                    continue
                if status.json()["camera"]["last_error"]:
                    break
                time.sleep(0.1)
            answers += [status.text, http.post("/streams/cam/trigger").text]
            time.sleep(1.0)  # the history writes the error result
            answers += [http.get("/results").text, http.get("/results.csv").text]
            answers += [http.get("/streams").text, http.get("/metrics").text]
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert "admin:***@127.0.0.1" in answers[0], answers[0]
    assert "camera not connected" in answers[1]
    stored = (tmp_path / "data" / "results.db").read_bytes()
    for text in [*answers, out, err, stored.decode("latin-1")]:
        assert secret not in text


async def test_live_retained_publishes_and_clearing_them_never_trigger(
    mosquitto: Mosquitto,
) -> None:
    async with gateway_on(mosquitto) as (gateway, published):
        assert gateway.mqtt is not None
        mqtt = gateway.mqtt
        with client(mosquitto) as sim:
            await asyncio.to_thread(
                sim.publish, "cam", {"trigger_id": "live-retained"}, retain=True
            )
            await asyncio.to_thread(sim.publish, "cam", b"", retain=True)  # clears it
            await wait_until(lambda: mqtt.counters["retained_ignored"] >= 2)
            fresh = await asyncio.to_thread(sim.trigger, "cam", {"trigger_id": "fresh"})
        assert fresh["success"] is True
        assert [r.trigger_id for r in published] == ["fresh"]


async def test_slow_requests_are_cut_off_and_the_gateway_keeps_serving() -> None:
    config = make_config(http={"read_timeout_s": 0.5})
    async with running_gateway(config) as (gateway, http, _):
        await first_frame(gateway)
        assert gateway.http is not None and gateway.http.port is not None
        port = gateway.http.port
        partial_headers = b"POST /streams/cam/trigger HTTP/1.1\r\nHost: x\r\n"
        short_body = partial_headers + b'Content-Length: 100\r\n\r\n{"trigger'
        silent = b""
        for sent in (partial_headers, short_body, silent):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(sent)
            await writer.drain()
            started = time.monotonic()
            async with asyncio.timeout(10):
                rest = await reader.read()  # until the server closes the connection
            held_s = time.monotonic() - started
            writer.close()
            assert rest == b"" and held_s < 5.0, (sent, rest, held_s)
        await assert_serving(http)
        # a request that arrived in time may be answered slowly: the event stream lives on
        events = 0
        async with http.stream("GET", "/events") as stream:
            async for line in stream.aiter_lines():
                events += line == "event: streams"
                if events == 3:  # about two seconds, four read timeouts
                    break
        assert events == 3


async def test_bodies_fastapi_cannot_parse_get_the_shared_422() -> None:
    async with running_gateway(make_config()) as (gateway, http, _):
        await first_frame(gateway)
        deep = b'{"mode": ' + b"[" * 3000 + b"]" * 3000 + b"}"
        for path, body in (
            ("/streams/cam/mode", b'{"mode": "trig\xff\xfe"}'),
            ("/streams/cam/mode", deep),
            ("/workflows/run", b'{"specification": "\xff"}'),
            ("/workflows/run", b'{"inputs": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3001),
            ("/streams/cam/trigger", b'{"trigger_id": "\xc3\x28"}'),
        ):
            answer = await http.post(
                path, content=body, headers={"content-type": "application/json"}
            )
            assert answer.status_code == 422, (path, answer.status_code, answer.text[:200])
            assert answer.json()["error"]["code"] == 7, answer.text[:200]
        await assert_serving(http)


async def test_results_queued_while_the_broker_is_away_survive_a_gateway_restart(
    tmp_path: Path,
) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    streams = {"cam": {"source": {"type": "synthetic", "width": 160, "height": 120},
                       "workflow": "demo"}}  # fmt: skip
    config = make_config(
        streams=streams,
        gateway_id="line1",
        history={"data_dir": str(tmp_path / "data")},
        mqtt={"enabled": True, "host": "127.0.0.1", "port": broker.port,
              "reconnect_min_s": 3, "reconnect_max_s": 3, "results_kept_offline": 100},
    )  # fmt: skip
    try:
        async with running_gateway(config) as (gateway, _, _):
            assert gateway.mqtt is not None
            mqtt = gateway.mqtt
            await first_frame(gateway)
            broker.kill()
            await wait_until(lambda: not mqtt.connected)
            for index in range(5):
                await gateway.dispatcher.inspect(Trigger("cam", Origin.PYTHON, f"first-{index}"))
            assert mqtt.queued == 5
        async with running_gateway(config) as (gateway, http, _):  # restarted, broker still away
            assert gateway.mqtt is not None
            mqtt = gateway.mqtt
            await first_frame(gateway)
            assert mqtt.queued == 5  # what the first run queued is still here
            for index in range(2):
                await gateway.dispatcher.inspect(Trigger("cam", Origin.PYTHON, f"second-{index}"))
            metrics = (await http.get("/metrics")).text
            assert 'gateway_results_queued{sink="mqtt"} 7.0' in metrics
            broker.start()
            with client(broker) as sim:
                sim.listen(f"{PREFIX}/streams/cam/result")
                await wait_until(lambda: mqtt.connected, 15)
                seen = [
                    await asyncio.to_thread(sim.next_message, f"{PREFIX}/streams/cam/result")
                    for _ in range(7)
                ]
                await wait_until(lambda: mqtt.queued == 0)
                try:
                    extra: object = await asyncio.to_thread(
                        sim.next_message, f"{PREFIX}/streams/cam/result", 1.0
                    )
                except TimeoutError:
                    extra = None
                assert extra is None, f"published twice: {extra}"
        ids = [m["trigger_id"] for m in seen if isinstance(m, dict)]
        assert ids == [f"first-{i}" for i in range(5)] + [f"second-{i}" for i in range(2)]
    finally:
        broker.stop()
