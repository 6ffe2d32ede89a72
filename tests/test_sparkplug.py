"""The Sparkplug B edge node, seen by a host application built on pysparkplug (another
implementation, in its own venv): births, a DDATA per result, DCMD triggers answered by their
result's DDATA, rebirth, NDEATH and the next bdSeq after a broker restart, seq wrapping at 255."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import queue
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from simulators.broker import Mosquitto
from tests.conftest import ROOT, make_config, require, running_gateway

HOST_PYTHON = ROOT / ".venv-sparkplug" / "bin" / "python"
HOST_SCRIPT = ROOT / "simulators" / "sparkplug_host.py"
NODE = "line1"


class SparkplugHost:
    """pysparkplug's host application as a process: its messages, and commands to send."""

    def __init__(self, port: int, host_id: str | None = None) -> None:
        args = [str(HOST_PYTHON), str(HOST_SCRIPT), "--port", str(port)]
        args += ["--host-id", host_id] if host_id else []
        self._process = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    async def connected(self) -> SparkplugHost:
        await self.wait_for(lambda m: m["type"] == "connected", 10)
        return self

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(json.loads(line))

    async def wait_for(
        self, match: Callable[[dict[str, Any]], bool], timeout_s: float
    ) -> dict[str, Any]:
        """The next message that matches (the gateway on this loop keeps running meanwhile)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                message = self._lines.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.005)
                continue
            self.seen.append(message)
            if match(message):
                return message
        raise AssertionError(
            f"no matching Sparkplug message in {timeout_s} s; saw {self.seen[-5:]}"
        )

    def send(self, kind: str, metrics: list[list[Any]], device: str | None = None) -> None:
        assert self._process.stdin is not None
        command = {"type": kind, "node": NODE, "device": device, "metrics": metrics}
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)


@pytest.fixture
def host_python() -> Path:
    missing = "pysparkplug's venv is missing (`make test` builds .venv-sparkplug)"
    require(None if HOST_PYTHON.exists() else missing)
    return HOST_PYTHON


@pytest.fixture
async def host(host_python: Path, mosquitto: Mosquitto) -> AsyncIterator[SparkplugHost]:
    spb_host = SparkplugHost(mosquitto.port)
    try:
        yield await spb_host.connected()
    finally:
        spb_host.stop()


def sparkplug_config(port: int, **extra: Any) -> Any:
    outputs = [
        {"output": "confidence", "type": "Double"},
        {"output": "class", "type": "String", "name": "Class"},
    ]
    streams = {
        name: {
            "source": {"type": "synthetic", "width": 320, "height": 240, "fps": 30},
            "workflow": "demo",
        }
        for name in ("cam", "cam2")
    }
    sparkplug = {
        "enabled": True,
        "port": port,
        "edge_node_id": NODE,
        "reconnect_min_s": 1,
        "reconnect_max_s": 1,
        "streams": {"cam": {"outputs": outputs}},
        **extra,
    }
    return make_config(streams=streams, sparkplug=sparkplug)


def of(kind: str, device: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["type"] == kind and m["node"] == NODE and m["device"] == device


async def test_births_ddata_per_result_and_dcmd_triggers(
    host: SparkplugHost, mosquitto: Mosquitto
) -> None:
    async with running_gateway(sparkplug_config(mosquitto.port)) as (_, client, _):
        nbirth = await host.wait_for(of("NBIRTH"), 10)
        assert nbirth["seq"] == 0 and nbirth["bdSeq"] == 0
        assert nbirth["metrics"]["Node Control/Rebirth"] is False
        births = [(await host.wait_for(of("DBIRTH", d), 5))["device"] for d in ("cam", "cam2")]
        assert births == ["cam", "cam2"]
        dbirth = next(m for m in host.seen if m["type"] == "DBIRTH" and m["device"] == "cam")
        for name in ("State", "Camera/Connected", "Trigger", "Result/Pass", "Outputs/Class"):
            assert name in dbirth["metrics"], dbirth

        body = (await client.post("/streams/cam/trigger")).json()  # any origin: a DDATA
        ddata = await host.wait_for(
            lambda m: of("DDATA", "cam")(m) and "Result/Id" in m["metrics"], 5
        )
        assert ddata["metrics"]["Result/Trigger Id"] == body["trigger_id"]
        assert ddata["metrics"]["Result/Source"] == "http"
        assert ddata["metrics"]["Outputs/Class"] == body["outputs"]["class"]
        assert ddata["metrics"]["Outputs/confidence"] == pytest.approx(
            body["outputs"]["confidence"]
        )

        host.send("DCMD", [["Trigger", "Boolean", True], ["Part Id", "UInt32", 42]], "cam2")
        answer = await host.wait_for(
            lambda m: of("DDATA", "cam2")(m) and m["metrics"].get("Result/Part Id") == 42, 10
        )
        assert answer["metrics"]["Result/Source"] == "sparkplug"
        assert answer["metrics"]["Result/Error Code"] == 0
        assert answer["metrics"]["Result/Pass"] in (True, False)

        host.send("DCMD", [["Trigger", "Boolean", True], ["Parameters", "String", "[1"]], "cam")
        refused = await host.wait_for(
            lambda m: of("DDATA", "cam")(m) and m["metrics"].get("Result/Error Code") == 7, 10
        )
        assert "DCMD" in refused["metrics"]["Result/Error"]
        await client.post("/streams/cam/trigger")  # and it keeps serving
        await host.wait_for(
            lambda m: of("DDATA", "cam")(m) and m["metrics"].get("Result/Code", 0) > 0, 5
        )

        host.send("NCMD", [["Node Control/Rebirth", "Boolean", True]])
        rebirth = await host.wait_for(of("NBIRTH"), 5)
        assert rebirth["seq"] == 0 and rebirth["bdSeq"] == 0  # same connection, same bdSeq
        await host.wait_for(of("DBIRTH", "cam"), 5)

        assert (await client.post("/streams/cam2/terminate")).status_code == 200
        await host.wait_for(of("DDEATH", "cam2"), 5)
        assert (await client.post("/streams/cam2/resume")).status_code == 200
        await host.wait_for(of("DBIRTH", "cam2"), 5)
    death = await host.wait_for(of("NDEATH"), 5)  # a gateway that stops says so
    assert death["metrics"]["bdSeq"] == 0


def sequence_numbers(host: SparkplugHost, since: int) -> list[int]:
    return [m["seq"] for m in host.seen[since:] if m["node"] == NODE and m["type"] != "NDEATH"]


async def test_seq_counts_every_message_and_wraps_at_255(
    host: SparkplugHost, mosquitto: Mosquitto
) -> None:
    async with running_gateway(sparkplug_config(mosquitto.port)) as (_, client, _):
        await host.wait_for(of("DBIRTH", "cam2"), 10)
        start = next(i for i, m in enumerate(host.seen) if m["type"] == "NBIRTH")
        for _ in range(270):
            await client.post("/streams/cam/trigger")
        for _ in range(2000):  # bounded: until the 270th result's DDATA arrived
            if len([m for m in host.seen[start:] if "Result/Id" in m["metrics"]]) >= 270:
                break
            await host.wait_for(lambda m: True, 5)
        seqs = sequence_numbers(host, start)
        assert seqs[0] == 0 and len(seqs) > 256
        assert all(b == (a + 1) % 256 for a, b in itertools.pairwise(seqs)), seqs
        assert 255 in seqs and seqs[seqs.index(255) + 1] == 0


async def test_broker_restart_gives_ndeath_then_a_birth_with_the_next_bdseq(
    host_python: Path, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The host on a second broker bridged to the edge node's: when the edge node's broker
    restarts, its will (NDEATH, bdSeq 0) reaches the host, then the new connection's NBIRTH
    with bdSeq 1 (asked for by Rebirth, as a host does when data comes from a node whose birth
    it missed while its bridge was reconnecting: the NBIRTH went out before the bridge was
    back)."""
    (tmp_path / "watcher").mkdir()
    watcher = Mosquitto(
        tmp_path / "watcher",
        "allow_anonymous true\n"
        f"connection to-edge\naddress 127.0.0.1:{mosquitto.port}\n"
        "topic spBv1.0/# both 1\nrestart_timeout 1\n",
    )
    watcher.start()
    spb_host = SparkplugHost(watcher.port)
    try:
        await spb_host.connected()
        async with running_gateway(sparkplug_config(mosquitto.port)):
            first = await spb_host.wait_for(of("NBIRTH"), 15)
            assert first["bdSeq"] == 0
            mosquitto.stop()
            mosquitto.start()
            death = await spb_host.wait_for(of("NDEATH"), 30)
            assert death["metrics"]["bdSeq"] == 0
            for _ in range(30):  # bounded: ask until the edge node is back and answers
                spb_host.send("NCMD", [["Node Control/Rebirth", "Boolean", True]])
                with contextlib.suppress(AssertionError):
                    after = await spb_host.wait_for(of("NBIRTH"), 1)
                    break
            assert after["bdSeq"] == 1 and after["seq"] == 0
            await spb_host.wait_for(of("DBIRTH", "cam"), 5)
    finally:
        spb_host.stop()
        watcher.stop()


async def test_births_wait_for_the_primary_host_and_its_departure_gets_an_ndeath(
    host_python: Path, mosquitto: Mosquitto
) -> None:
    """With `primary_host_id`, nothing is born until that host's STATE is online; its will
    (STATE offline) gets an NDEATH; back online, births again."""
    watcher = await SparkplugHost(mosquitto.port).connected()  # sees all, is not the primary
    try:
        config = sparkplug_config(mosquitto.port, primary_host_id="scada-1")
        async with running_gateway(config):
            early = None
            with contextlib.suppress(AssertionError):  # waiting for a birth that must not come
                early = await watcher.wait_for(of("NBIRTH"), 1.5)
            assert early is None, f"born before the primary host was online: {early}"
            primary = await SparkplugHost(mosquitto.port, host_id="scada-1").connected()
            born = await watcher.wait_for(of("NBIRTH"), 10)
            assert born["bdSeq"] == 0
            primary._process.kill()  # gone without a word: the broker sends its STATE will
            primary._process.wait(10)
            await watcher.wait_for(of("NDEATH"), 15)
            again = await SparkplugHost(mosquitto.port, host_id="scada-1").connected()
            await watcher.wait_for(of("NBIRTH"), 10)
            again.stop()
    finally:
        watcher.stop()
