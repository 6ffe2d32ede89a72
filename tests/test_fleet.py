"""The fleet over one Mosquitto (and over two bridged): every gateway announces itself, one
gateway's fleet routes list them all and trigger each remotely through the broker; a trigger
for a gateway that is away waits for it within its expiry, and expires (said so) after it."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx

from gateway.app import Gateway
from gateway.model import InspectionResult
from simulators.broker import Mosquitto
from tests.conftest import ROOT, make_config, wait_until


def fleet_config(gateway_id: str, port: int, data_dir: Path, http: bool = False) -> Any:
    mqtt = {
        "enabled": True,
        "port": port,
        "session_expiry_s": 300,
        "reconnect_min_s": 1,
        "reconnect_max_s": 1,
    }
    return make_config(
        gateway_id=gateway_id,
        mqtt=mqtt,
        http={"enabled": http},
        history={"data_dir": str(data_dir / gateway_id)},
    )


class Member:
    """A gateway of the fleet, started and stopped at will, with the results it published."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.results: list[InspectionResult] = []
        self.gateway: Gateway | None = None

    async def start(self) -> Gateway:
        self.gateway = Gateway(self.config, config_dir=ROOT)
        self.gateway.bus.subscribe(self.results.append)
        await self.gateway.start()
        return self.gateway

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
            self.gateway = None


async def has_frame(member: Member) -> None:
    gateway = member.gateway
    assert gateway is not None
    await wait_until(lambda: gateway.streams["cam"].capture.latest() is not None, 10)


async def listed(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get("/fleet/gateways")
    assert response.status_code == 200, response.text
    return {entry["gateway_id"]: entry for entry in response.json()}


async def wait_listed(client: httpx.AsyncClient, online: dict[str, bool], timeout_s: float) -> None:
    for _ in range(int(timeout_s / 0.1)):  # bounded
        gateways = await listed(client)
        if all(name in gateways and gateways[name]["online"] is up for name, up in online.items()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"fleet never showed {online}: {await listed(client)}")


async def remote_trigger(
    client: httpx.AsyncClient, gateway_id: str, expiry_s: int | None = None
) -> dict[str, Any]:
    body = {} if expiry_s is None else {"expiry_s": expiry_s}
    response = await client.post(f"/fleet/gateways/{gateway_id}/streams/cam/trigger", json=body)
    assert response.status_code == 200, response.text
    request: dict[str, Any] = response.json()
    assert request["state"] == "waiting"
    return request


async def settled(client: httpx.AsyncClient, request_id: str, timeout_s: float) -> dict[str, Any]:
    for _ in range(int(timeout_s / 0.05)):  # bounded
        request: dict[str, Any] = (await client.get(f"/fleet/requests/{request_id}")).json()
        if request["state"] != "waiting":
            return request
        await asyncio.sleep(0.05)
    raise AssertionError(f"request {request_id} still waiting after {timeout_s} s")


async def test_three_gateways_listed_and_triggered_remotely_even_while_away(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    viewer = Member(fleet_config("line-a", mosquitto.port, tmp_path, http=True))
    others = {
        name: Member(fleet_config(name, mosquitto.port, tmp_path)) for name in ("line-b", "line-c")
    }
    async with AsyncExitStack() as stack:
        gateway = await viewer.start()
        stack.push_async_callback(viewer.stop)
        for member in others.values():
            await member.start()
            stack.push_async_callback(member.stop)
        assert gateway.http is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http.port}") as client:
            await wait_listed(client, {"line-a": True, "line-b": True, "line-c": True}, 10)
            gateways = await listed(client)
            assert [s["id"] for s in gateways["line-b"]["streams"]] == ["cam"]
            assert gateways["line-c"]["streams"][0]["camera"]["connected"] is True
            for member in [viewer, *others.values()]:
                await has_frame(member)

            for name in ("line-a", "line-b", "line-c"):
                request = await remote_trigger(client, name)
                done = await settled(client, request["request_id"], 10)
                assert done["state"] == "done", done
                assert done["result"]["trigger_id"] == request["request_id"]
                assert done["result"]["success"] is True, done

            away = others["line-c"]
            await away.stop()
            await wait_listed(client, {"line-c": False}, 10)
            queued = await remote_trigger(client, "line-c", expiry_s=60)
            await asyncio.sleep(1.0)
            still = (await client.get(f"/fleet/requests/{queued['request_id']}")).json()
            assert still["state"] == "waiting"  # the page shows "Waiting for device…"
            await away.start()
            delivered = await settled(client, queued["request_id"], 15)
            assert delivered["state"] == "done", delivered
            assert delivered["result"]["trigger_id"] == queued["request_id"]

            await away.stop()
            await wait_listed(client, {"line-c": False}, 10)
            late = await remote_trigger(client, "line-c", expiry_s=1)
            expired = await settled(client, late["request_id"], 10)
            assert (
                expired["state"] == "expired" and "did not take the trigger" in expired["message"]
            )
            await away.start()
            await asyncio.sleep(2.0)  # it would have come by now: the broker dropped it
            assert late["request_id"] not in {r.trigger_id for r in away.results}
            assert queued["request_id"] in {r.trigger_id for r in away.results}


async def test_a_gateway_on_a_bridged_broker_is_in_the_fleet(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    (tmp_path / "remote-broker").mkdir()
    remote = Mosquitto(
        tmp_path / "remote-broker",
        "allow_anonymous true\n"
        f"connection to-plant\naddress 127.0.0.1:{mosquitto.port}\n"
        "topic gateway/# both 1\nrestart_timeout 1\n"
        "bridge_protocol_version mqttv50\n",  # v5: the reply topic crosses the bridge
    )
    remote.start()
    viewer = Member(fleet_config("line-a", mosquitto.port, tmp_path, http=True))
    far = Member(fleet_config("site-2", remote.port, tmp_path))
    try:
        gateway = await viewer.start()
        await far.start()
        assert gateway.http is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http.port}") as client:
            await wait_listed(client, {"line-a": True, "site-2": True}, 15)
            await has_frame(far)
            request = await remote_trigger(client, "site-2")
            done = await settled(client, request["request_id"], 10)
            assert done["state"] == "done" and done["result"]["success"] is True, done
            page = await client.get("/fleet")
            assert page.status_code == 200 and "fleet.js" in page.text
    finally:
        await far.stop()
        await viewer.stop()
        remote.stop()
