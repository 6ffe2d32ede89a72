"""OPC UA end to end: real asyncua clients and servers on loopback, both modes, security."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from asyncua.client.client import Client
from asyncua.server.server import Server
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from adapters.opcua import OpcuaClientAdapter, OpcuaServerAdapter
from adapters.opcua.security import hash_password, verify_password
from gateway.app import Gateway
from gateway.config import ConfigError, GatewayConfig, parse_config
from gateway.model import InspectionResult, Origin
from simulators.net import free_port
from simulators.opcua_client import OpcuaTriggerClient, client_certificate
from tests.conftest import first_frame, make_config, running_gateway, wait_until
from tests.test_modbus import CAMERA, CONSTANT_WORKFLOW, VECTOR

OUTPUTS = [
    {"output": "value", "type": "Double"},
    {"output": "value", "type": "Int32", "name": "ValueInt"},
    {"output": "pass", "type": "Boolean", "name": "Verdict"},
    {"output": "nothing.here", "type": "String", "name": "Missing"},
]


def opcua_config(opcua: dict[str, Any] | None = None, **stream: Any) -> GatewayConfig:
    return make_config(
        streams={"cam": {"source": CAMERA, "workflow": "constant", **stream}},
        workflows={"constant": {"specification": CONSTANT_WORKFLOW}},
        opcua={
            "type": "server",
            "port": 0,
            "streams": {"cam": {"outputs": OUTPUTS}},
            **(opcua or {}),
        },
    )


def endpoint(gateway: Gateway) -> str:
    assert isinstance(gateway.opcua, OpcuaServerAdapter)
    return gateway.opcua.endpoint


def opcua_results(published: list[InspectionResult]) -> list[InspectionResult]:
    return [result for result in published if result.origin is Origin.OPCUA]


async def test_write_counter_and_method_triggers_fill_typed_result_nodes() -> None:
    async with running_gateway(opcua_config()) as (gateway, _, published):
        await first_frame(gateway)
        async with OpcuaTriggerClient(endpoint(gateway), "cam") as client:
            written = await client.trigger("write", part_id=11)
            assert await client.node("Control.Trigger").read_value() is False  # reset on accept
            counted = await client.trigger("count", part_id=12)
            called = await client.trigger("method", part_id=13)
            assert called["_method"] == {"result_code": 1, "pass": True}
            assert [r["part_id"] for r in (written, counted, called)] == [11, 12, 13]
            assert client.last_counter == 3
            assert await client.node("Result.value").read_value() == VECTOR
            assert await client.node("Result.ValueInt").read_value() == int(VECTOR)
            assert await client.node("Result.Verdict").read_value() is True
            assert await client.node("Result.Missing").read_value() == ""
            assert await client.node("Result.ResultCode").read_value() == 1
            assert await client.node("Result.TriggerCount").read_value() == 1  # the echo
            assert await client.node("Result.ResultId").read_value() == called["result_id"]
            assert await client.node("Status.State").read_value() == "ready"
            assert await client.node("Status.CameraConnected").read_value() is True
            # the same TriggerCount again is not a new trigger
            await client.write("Control.TriggerCount", 1, ua.VariantType.UInt32)
            await asyncio.sleep(0.2)
            assert await client.node("Result.ResultCounter").read_value() == 3
    assert len(opcua_results(published)) == 3


async def test_hundreds_of_rapid_triggers_each_get_one_result_busy_included() -> None:
    config = opcua_config(queue_size=2)
    async with running_gateway(config) as (gateway, _, published):
        await first_frame(gateway)
        async with OpcuaTriggerClient(endpoint(gateway), "cam") as client:
            for count in range(1, 301):  # no waiting: far faster than the stream can inspect
                await client.write("Control.TriggerCount", count, ua.VariantType.UInt32)
            await wait_until(lambda: len(opcua_results(published)) >= 300, timeout_s=30)
            await wait_until(
                lambda: client.last_counter == 300 or not client._counter.values.empty()
            )
            counter = client.node("Result.ResultCounter")
            for _ in range(100):
                if await counter.read_value() == 300:
                    break
                await asyncio.sleep(0.05)
            assert await counter.read_value() == 300
    results = opcua_results(published)
    assert len(results) == 300 and len({r.trigger_id for r in results}) == 300
    names = {r.error.code.name if r.error else "OK" for r in results}
    assert "OK" in names and names <= {"OK", "BUSY"}, names


async def test_bad_writes_get_bad_status_codes_and_the_gateway_keeps_serving() -> None:
    async with running_gateway(opcua_config()) as (gateway, http, _):
        await first_frame(gateway)
        async with OpcuaTriggerClient(endpoint(gateway), "cam") as client:
            with pytest.raises(UaStatusCodeError) as wrong_type:
                await client.write("Control.Trigger", 1, ua.VariantType.Int32)
            assert wrong_type.value.code == StatusCodes.BadTypeMismatch
            with pytest.raises(UaStatusCodeError) as read_only:
                await client.write("Result.Pass", True, ua.VariantType.Boolean)
            assert read_only.value.code == StatusCodes.BadUserAccessDenied
            stream = client.client.get_node(client.node("Trigger").nodeid)
            parent = client.client.get_node(f"ns={client.ns};s=Streams.cam")
            code, passed, text = await parent.call_method(
                stream.nodeid, ua.Variant("[1, 2]", ua.VariantType.String)
            )
            assert code == -7 and passed is False and "JSON object" in text
            assert (await client.trigger("write"))["pass"] is True
        assert (await http.get("/healthz")).status_code == 200


# --- security ---------------------------------------------------------------------------------


def secured_config(pki: Path) -> GatewayConfig:
    return opcua_config(
        {
            "security": {
                "policies": ["Basic256Sha256_SignAndEncrypt"],
                "allow_anonymous": False,
                "users": [{"username": "operator", "password_hash": hash_password("s3cret")}],
                "pki_dir": str(pki),
            }
        }
    )


async def test_sign_and_encrypt_with_users_and_a_trust_store(tmp_path: Path) -> None:
    pki, mine, stranger = tmp_path / "pki", tmp_path / "client", tmp_path / "stranger"
    for folder in (pki / "trusted", mine, stranger):
        folder.mkdir(parents=True)
    cert, key = await client_certificate(mine)
    shutil.copy(cert, pki / "trusted" / cert.name)  # the plant trusts this client
    other = await client_certificate(stranger)
    async with running_gateway(secured_config(pki)) as (gateway, _, _):
        await first_frame(gateway)
        url = endpoint(gateway)
        async with OpcuaTriggerClient(
            url, "cam", username="operator", password="s3cret", certificate=(cert, key)
        ) as client:
            assert (await client.trigger("write"))["pass"] is True
        with pytest.raises(UaStatusCodeError) as wrong:
            async with OpcuaTriggerClient(
                url, "cam", username="operator", password="nope", certificate=(cert, key)
            ):
                pass
        assert wrong.value.code == StatusCodes.BadUserAccessDenied
        with pytest.raises(UaStatusCodeError) as anonymous:
            async with OpcuaTriggerClient(url, "cam", certificate=(cert, key)):
                pass
        assert anonymous.value.code == StatusCodes.BadIdentityTokenRejected
        with pytest.raises(UaStatusCodeError) as untrusted:
            async with OpcuaTriggerClient(
                url, "cam", username="operator", password="s3cret", certificate=other
            ):
                pass
        assert untrusted.value.code == StatusCodes.BadCertificateUntrusted
        probe = Client(url, timeout=4)
        endpoints = await probe.connect_and_get_server_endpoints()
        modes = {e.SecurityMode for e in endpoints}
        assert modes == {ua.MessageSecurityMode.SignAndEncrypt}  # no unsecured endpoint
        with pytest.raises(UaError, match="No matching endpoints"):  # no None endpoint
            async with OpcuaTriggerClient(url, "cam", username="operator", password="s3cret"):
                pass
        assert (pki / "server-cert.der").is_file()
        first_certificate = (pki / "server-cert.der").read_bytes()
    async with running_gateway(secured_config(pki)) as (gateway, _, _):
        assert (pki / "server-cert.der").read_bytes() == first_certificate  # kept, not remade


async def test_an_empty_trust_store_starts_and_refuses_every_client_certificate(
    tmp_path: Path,
) -> None:
    cert, key = await client_certificate(tmp_path)
    async with running_gateway(secured_config(tmp_path / "pki")) as (gateway, http, _):
        with pytest.raises(UaStatusCodeError) as untrusted:
            async with OpcuaTriggerClient(
                endpoint(gateway),
                "cam",
                username="operator",
                password="s3cret",
                certificate=(cert, key),
            ):
                pass
        assert untrusted.value.code == StatusCodes.BadCertificateUntrusted
        assert (await http.get("/healthz")).status_code == 200
    assert (tmp_path / "pki" / "trusted").is_dir()


async def test_status_nodes_follow_the_stream_and_the_heartbeat_toggles() -> None:
    async with running_gateway(opcua_config({"heartbeat_ms": 50})) as (gateway, http, _):
        await first_frame(gateway)
        async with OpcuaTriggerClient(endpoint(gateway), "cam") as client:
            beats = set()
            for _ in range(100):  # bounded: both levels within 100 reads
                beats.add(await client.node("Status.Heartbeat").read_value())
                if beats == {False, True}:
                    break
                await asyncio.sleep(0.02)
            assert beats == {False, True}
            assert await client.node("Status.Ready").read_value() is True
            assert (await http.post("/streams/cam/pause")).status_code == 200
            for _ in range(100):
                if await client.node("Status.State").read_value() == "paused":
                    break
                await asyncio.sleep(0.02)
            assert await client.node("Status.Ready").read_value() is False
            paused = await client.trigger("write")
            assert paused["error"]["name"] == "STREAM_NOT_RUNNING"
            assert await client.node("Result.ResultCode").read_value() == -2
            for _ in range(100):
                if await client.node("Status.ErrorCode").read_value() == 2:
                    break
                await asyncio.sleep(0.02)
            assert await client.node("Status.Error").read_value() is True


def test_password_hashes_verify_and_reject() -> None:
    stored = hash_password("s3cret")
    assert stored.startswith("scrypt$") and verify_password("s3cret", stored)
    assert not verify_password("S3cret", stored) and not verify_password("s3cret", "garbage")


# --- client mode --------------------------------------------------------------------------------


class FakePlc:
    """An asyncua server standing in for the PLC's own OPC UA server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: Server | None = None
        self.nodes: dict[str, Any] = {}

    @property
    def url(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/plc"

    async def start(self, *, trigger: bool = False) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.url)
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await server.register_namespace("urn:plc")
        assert idx == 2
        line = await server.nodes.objects.add_object("ns=2;s=Line", "2:Line")
        for name, value, variant in (
            ("Trigger", trigger, ua.VariantType.Boolean),
            ("ResultCounter", 0, ua.VariantType.UInt32),
            ("Pass", False, ua.VariantType.Boolean),
            ("ResultCode", 0, ua.VariantType.Int16),
            ("Json", "", ua.VariantType.String),
            ("Value", 0.0, ua.VariantType.Float),
        ):
            node = await line.add_variable(f"ns=2;s=Line.{name}", f"2:{name}", value, variant)
            await node.set_writable()
            self.nodes[name] = node
        await server.start()
        self.server = server

    async def value(self, name: str) -> Any:
        return await self.nodes[name].read_value()

    async def set_trigger(self, value: bool) -> None:
        await self.nodes["Trigger"].write_value(value)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None


async def test_client_mode_subscribes_writes_results_and_survives_a_plc_restart() -> None:
    plc = FakePlc(free_port())
    await plc.start()
    config = make_config(
        streams={"cam": {"source": CAMERA, "workflow": "constant"}},
        workflows={"constant": {"specification": CONSTANT_WORKFLOW}},
        opcua={
            "type": "client",
            "url": plc.url,
            "sampling_interval_ms": 5,
            "publishing_interval_ms": 5,
            "reconnect": {"initial_s": 0.1, "max_s": 0.5},
            "streams": {
                "cam": {
                    "trigger_node": "ns=2;s=Line.Trigger",
                    "result_nodes": {
                        "result_counter": "ns=2;s=Line.ResultCounter",
                        "pass": "ns=2;s=Line.Pass",
                        "result_code": "ns=2;s=Line.ResultCode",
                        "json": "ns=2;s=Line.Json",
                    },
                    "output_nodes": {"value": "ns=2;s=Line.Value"},
                }
            },
        },
    )
    try:
        async with running_gateway(config) as (gateway, http, published):
            adapter = gateway.opcua
            assert isinstance(adapter, OpcuaClientAdapter)
            await first_frame(gateway)
            await wait_until(lambda: adapter.connected)
            await asyncio.sleep(0.2)
            await plc.set_trigger(True)
            for _ in range(200):
                if await plc.value("ResultCounter") == 1:
                    break
                await asyncio.sleep(0.02)
            assert await plc.value("ResultCounter") == 1
            assert await plc.value("Pass") is True and await plc.value("ResultCode") == 1
            assert await plc.value("Value") == pytest.approx(VECTOR)
            assert await plc.value("Trigger") is False  # reset by the gateway
            await plc.stop()  # the PLC restarts, and comes back with Trigger already high
            await wait_until(lambda: not adapter.connected, timeout_s=10)
            assert (await http.get("/healthz")).status_code == 200
            await plc.start(trigger=True)
            await wait_until(lambda: adapter.counters["connects"] == 2, timeout_s=10)
            await asyncio.sleep(0.3)
            assert adapter.counters["triggers"] == 1  # the held level is a baseline
            await plc.set_trigger(False)
            await asyncio.sleep(0.1)
            await plc.set_trigger(True)
            for _ in range(200):
                if await plc.value("ResultCounter") != 0:
                    break
                await asyncio.sleep(0.02)
            assert await plc.value("ResultCounter") == 2  # the gateway's count goes on
            assert adapter.counters["triggers"] == 2
    finally:
        await plc.stop()
    assert len(opcua_results(published)) == 2


# --- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opcua", "message"),
    [
        ("opcua:\n  type: server\n  streams:\n    nope: {}\n", "opcua.streams.nope: no stream"),
        (
            "opcua:\n  type: server\n  security:\n    allow_anonymous: false\n",
            "nobody could log in",
        ),
        (
            "opcua:\n  type: server\n  security:\n    users:\n      - {username: op}\n",
            "give exactly one of `password_hash` or `password`",
        ),
        (
            "opcua:\n  type: client\n  url: http://plc\n  streams:\n"
            "    a: {trigger_node: 'ns=2;s=T'}\n",
            "opcua.url: String should match pattern",
        ),
    ],
)
def test_opcua_config_errors_name_the_key(opcua: str, message: str) -> None:
    text = (
        "workflows:\n  w: {specification: {steps: []}}\nstreams:\n"
        "  a: {source: {type: synthetic}, workflow: w}\n" + opcua
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "line.yaml")
    assert message in str(caught.value), str(caught.value)
