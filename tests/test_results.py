"""The result history: stored, filtered, exported, kept across restarts and a kill -9, pruned."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from gateway.config import HistoryConfig
from gateway.model import InspectionResult, Origin
from gateway.result_rows import ResultQuery
from gateway.results import ResultStore
from simulators.net import free_port
from tests.conftest import ROOT, make_config, running_gateway, wait_until


def history(tmp_path: Path, **fields: Any) -> dict[str, Any]:
    return {"data_dir": str(tmp_path / "data"), **fields}


async def test_results_are_stored_filtered_and_exported(tmp_path: Path) -> None:
    config = make_config(history=history(tmp_path, save_images="failed"))
    async with running_gateway(config) as (gateway, client, published):
        await wait_until(lambda: gateway.streams["cam"].capture.latest() is not None)
        for index in range(12):
            await client.post("/streams/cam/trigger", json={"trigger_id": f"t{index}"})
        rejected = await client.post("/streams/cam/trigger", json={"parameters": {"nope": 1}})
        assert rejected.status_code == 422  # an error result, stored too
        assert gateway.history is not None
        await wait_until(lambda: gateway.history is not None and gateway.history.written == 13)
        listed = (await client.get("/results", params={"limit": 5})).json()
        assert listed["total"] == 13 and len(listed["results"]) == 5
        assert listed["results"][0]["error_code"] == 7  # newest first: the rejected one
        failed = (await client.get("/results", params={"outcome": "fail"})).json()["results"]
        passed = (await client.get("/results", params={"outcome": "pass"})).json()["results"]
        expected_fail = [r for r in published if r.passed is False]
        assert len(failed) == len(expected_fail) and len(passed) == sum(
            1 for r in published if r.passed
        )
        for entry in failed:  # failed parts keep their image, passed ones do not
            image = await client.get(f"/results/{entry['id']}/image")
            assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        for entry in passed:
            assert (await client.get(f"/results/{entry['id']}/image")).status_code == 404
        one = (await client.get("/results", params={"limit": 1, "offset": 1})).json()
        detail = (await client.get(f"/results/{one['results'][0]['id']}")).json()
        assert detail["trigger_id"] == "t11" and "class" in detail["outputs"]
        exported = await client.get("/results.csv", params={"outcome": "pass"})
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        passed_ids = [r.trigger_id for r in published if r.passed]
        assert [row["trigger_id"] for row in rows] == passed_ids  # oldest first
        assert all(row["pass"] == "True" and row["error_code"] == "0" for row in rows)
        assert all(row["image"] == "" for row in rows)  # passed parts keep no image
        failures = (await client.get("/results.csv", params={"outcome": "fail"})).text
        stored_images = [row["image"] for row in csv.DictReader(io.StringIO(failures))]
        assert len(stored_images) == len(expected_fail)
        assert all(path.endswith(".jpg") for path in stored_images)
        # one column per output, for a spreadsheet: the light workflow's class and confidence
        assert {"outputs.class", "outputs.confidence"} <= set(rows[0])
        stored = {r.trigger_id: r.outputs for r in published if r.passed}
        for row in rows:
            assert row["outputs.class"] == stored[row["trigger_id"]]["class"]
            assert float(row["outputs.confidence"]) == stored[row["trigger_id"]]["confidence"]
        assert exported.headers["content-type"].startswith("text/csv")
        bad = await client.get("/results", params={"outcome": "maybe"})
        assert bad.status_code == 422 and "outcome" in bad.json()["error"]["message"]
        # a form sends its empty fields: they mean "not given"
        empty = await client.get("/results?outcome=&stream=&since=&until=&source=&limit=5")
        assert empty.status_code == 200 and empty.json()["total"] == 13
        assert (await client.get("/results.csv?outcome=&stream=")).status_code == 200


async def test_result_ids_continue_after_a_restart(tmp_path: Path) -> None:
    config = make_config(history=history(tmp_path))
    for run in range(2):
        async with running_gateway(config) as (gateway, client, _):
            await wait_until(lambda: gateway.streams["cam"].capture.latest() is not None)
            ids = [
                (await client.post("/streams/cam/trigger")).json()["result_id"] for _ in range(3)
            ]
            assert ids == [1 + 3 * run, 2 + 3 * run, 3 + 3 * run]
        stored = ResultStore(HistoryConfig.model_validate(history(tmp_path))).query(ResultQuery())
        assert stored[1] == 3 * (run + 1)


def start_gateway(data: Path, port: int, config: Path | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GATEWAY_DATA_DIR": str(data), "GATEWAY_MODBUS_PORT": "0",
           "GATEWAY_OPCUA_PORT": "0", "GATEWAY_HTTP_PORT": str(port)}  # fmt: skip
    chosen = [] if config is None else ["-c", str(config)]
    return subprocess.Popen(
        [sys.executable, "-c", "from gateway.cli import main; main()", "run", *chosen],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def wait_ready(client: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("gateway not ready within 30 s")


def test_kill_during_a_burst_keeps_every_committed_result(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    gateway = start_gateway(data, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            wait_ready(client)
            for _ in range(30):
                assert client.post("/streams/conveyor/trigger").status_code == 200
            deadline = time.monotonic() + 10
            while client.get("/results").json()["total"] < 30 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert client.get("/results").json()["total"] == 30  # committed, seen through the API

            def burst() -> None:
                with contextlib.suppress(httpx.TransportError):
                    for _ in range(500):
                        client.post("/streams/conveyor/trigger")

            sender = threading.Thread(target=burst)
            sender.start()
            time.sleep(0.3)  # mid-burst (when exactly does not matter)
            gateway.send_signal(signal.SIGKILL)
            gateway.wait(timeout=10)
            sender.join(timeout=30)
    finally:
        gateway.kill()
        gateway.wait(timeout=10)
    with contextlib.closing(sqlite3.connect(data / "results.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ids = [row[0] for row in db.execute("SELECT result_id FROM results ORDER BY id")]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) >= 30  # the 30, then a prefix
    gateway = start_gateway(data, port)  # restarts on the same database and counts on
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            wait_ready(client)
            # past every id that may have been handed out before the kill, stored or not
            assert client.post("/streams/conveyor/trigger").json()["result_id"] > max(ids)
    finally:
        gateway.terminate()
        gateway.wait(timeout=20)


def test_retention_by_count_and_age(tmp_path: Path) -> None:
    config = HistoryConfig.model_validate(
        history(tmp_path, save_images="all", retention={"max_count": 5, "max_age_days": 1})
    )
    store = ResultStore(config)
    store.open()

    now = time.time()
    image = np.zeros((8, 8, 3), np.uint8)
    for index in range(10):
        age_days = 2 if index < 2 else 0  # the first two are old
        store.add(InspectionResult(stream="cam", trigger_id=f"t{index}", result_id=index + 1,
                                   origin=Origin.PYTHON, received_at=now - age_days * 86400,
                                   passed=False, image=image))  # fmt: skip
    store.close()
    assert len(list((tmp_path / "data" / "images").rglob("*.jpg"))) == 10
    deleted = store.apply_retention()
    assert deleted == 5
    results, total = store.query(ResultQuery(limit=100))
    assert total == 5 and [r["trigger_id"] for r in results] == [f"t{i}" for i in range(9, 4, -1)]
    assert len(list((tmp_path / "data" / "images").rglob("*.jpg"))) == 5


def _hammer(client: httpx.Client, answered: list[int], stop: threading.Event) -> None:
    """One of 16 clients: trigger until the gateway dies, keeping every id it was answered."""
    with contextlib.suppress(httpx.TransportError):
        for _ in range(2000):  # bounded
            if stop.is_set():
                return
            answer = client.post("/streams/conveyor/trigger")
            if answer.status_code == 200:
                answered.append(answer.json()["result_id"])


BUSY_HISTORY = """
http:
  port: ${GATEWAY_HTTP_PORT}
history: {save_images: all, jpeg_quality: 95}
workflows: {light: {path: %s}}
streams:
  conveyor:
    source: {type: synthetic, width: 1280, height: 960, fps: 30}
    workflow: light
    queue_size: 32
"""
"""Fast inspections and a large JPEG stored for each: the history's writer has work queued
when the kill comes, so an answer that did not wait for its commit would be caught."""


def test_kill_during_16_client_bursts_five_times_loses_no_answered_result(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    config = tmp_path / "busy.yaml"
    config.write_text(BUSY_HISTORY % (ROOT / "tests" / "part_present.yaml"))
    answered: list[int] = []
    for run in range(5):
        gateway = start_gateway(data, port, config)
        stop = threading.Event()
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                wait_ready(client)
                senders = [
                    threading.Thread(target=_hammer, args=(client, answered, stop))
                    for _ in range(16)
                ]
                for sender in senders:
                    sender.start()
                time.sleep(0.4 + 0.15 * run)  # mid-burst, a different moment each time
                gateway.send_signal(signal.SIGKILL)
                gateway.wait(timeout=10)
                stop.set()
                for sender in senders:
                    sender.join(timeout=30)
        finally:
            gateway.kill()
            gateway.wait(timeout=10)
    with contextlib.closing(sqlite3.connect(data / "results.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = [row[0] for row in db.execute("SELECT result_id FROM results")]
    assert len(answered) > 100 and len(set(answered)) == len(answered)  # no id answered twice
    assert len(set(stored)) == len(stored)  # no id stored twice
    assert not set(answered) - set(stored)  # every answered result is in the history
