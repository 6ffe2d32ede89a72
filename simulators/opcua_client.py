"""An OPC UA trigger client: triggers a stream by node write, counter or method call and waits
for the result (a subscription on Result/ResultCounter). Used by the tests, the demo and bench:

    python -m simulators.opcua_client --url opc.tcp://127.0.0.1:4840/gateway --stream conveyor
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography.x509.oid import ExtendedKeyUsageOID

from adapters.opcua.nodes import string_node_id
from simulators.camera import PartSensor, await_part

APPLICATION_URI = "urn:inspection-gateway:simulator"


async def client_certificate(
    directory: Path, application_uri: str = APPLICATION_URI
) -> tuple[Path, Path]:
    """A client certificate (DER) and key (PEM) for SignAndEncrypt, made once and kept."""
    cert, key = directory / "client-cert.der", directory / "client-key.pem"
    await setup_self_signed_certificate(
        key,
        cert,
        application_uri,
        socket.gethostname(),
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"commonName": "gateway simulator"},
    )
    return cert, key


class CounterWatch:
    """Subscription handler: queues every value of a watched counter node."""

    def __init__(self) -> None:
        self.values: asyncio.Queue[int] = asyncio.Queue()

    def datachange_notification(self, node: Node, value: Any, data: Any) -> None:
        self.values.put_nowait(int(value))


class OpcuaTriggerClient:
    """`async with OpcuaTriggerClient(url, "conveyor") as client: await client.trigger()`."""

    def __init__(
        self,
        url: str,
        stream: str,
        *,
        namespace: str = "urn:inspection-gateway",
        username: str | None = None,
        password: str | None = None,
        certificate: tuple[Path, Path] | None = None,
        mode: ua.MessageSecurityMode = ua.MessageSecurityMode.SignAndEncrypt,
        publishing_interval_ms: float = 0.0,
        timeout_s: float = 4.0,
        application_uri: str = APPLICATION_URI,
    ) -> None:
        self.client = Client(url, timeout=timeout_s)
        self.client.application_uri = application_uri
        self.stream = stream
        self._namespace = namespace
        self._certificate = certificate
        self._mode = mode
        self._interval = publishing_interval_ms
        if username is not None:
            self.client.set_user(username)
        if password is not None:
            self.client.set_password(password)
        self._counter = CounterWatch()
        self.last_counter = 0
        self._count = 0
        self.ns = 0

    async def __aenter__(self) -> OpcuaTriggerClient:
        if self._certificate is not None:
            cert, key = self._certificate
            await self.client.set_security(
                SecurityPolicyBasic256Sha256, str(cert), str(key), mode=self._mode
            )
        await self.client.connect()
        self.ns = await self.client.get_namespace_index(self._namespace)
        subscription = await self.client.create_subscription(self._interval, self._counter)
        await subscription.subscribe_data_change(self.node("Result.ResultCounter"))
        self.last_counter = await self._counter.values.get()  # the initial value
        self._count = int(await self.node("Control.TriggerCount").read_value())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.client.disconnect()

    def node(self, path: str) -> Node:
        return self.client.get_node(string_node_id(f"Streams.{self.stream}.{path}", self.ns))

    async def write(self, path: str, value: Any, variant: ua.VariantType) -> None:
        await self.node(path).write_value(ua.DataValue(ua.Variant(value, variant)))

    async def trigger(self, how: str = "write", part_id: int | None = None) -> dict[str, Any]:
        """Fire once (`write` Trigger, bump `count`, or `method`) and return the result JSON."""
        if part_id is not None:
            await self.write("Control.PartId", part_id, ua.VariantType.UInt32)
        if how == "method":
            stream = self.client.get_node(string_node_id(f"Streams.{self.stream}", self.ns))
            code, passed, text = await stream.call_method(
                self.node("Trigger").nodeid, ua.Variant("", ua.VariantType.String)
            )
            result: dict[str, Any] = json.loads(text)
            result["_method"] = {"result_code": code, "pass": passed}
            await self.wait_counter()
            return result
        if how == "count":
            self._count = (self._count + 1) & 0xFFFF_FFFF
            await self.write("Control.TriggerCount", self._count, ua.VariantType.UInt32)
        else:
            await self.write("Control.Trigger", True, ua.VariantType.Boolean)
        await self.wait_counter()
        parsed: dict[str, Any] = json.loads(await self.node("Result.Json").read_value())
        return parsed

    async def wait_counter(self, timeout_s: float = 10.0) -> int:
        """The next ResultCounter value after the last one seen."""
        async with asyncio.timeout(timeout_s):
            value = await self._counter.values.get()
        self.last_counter = value
        return value


async def opcua_trigger_loop(
    url: str,
    stream: str,
    *,
    rate: float,
    duration_s: float,
    on_result: Callable[[dict[str, Any]], None],
    how: str = "write",
    part_sensor: PartSensor | None = None,
) -> int:
    """Trigger `stream` at `rate` per second for `duration_s` seconds; returns how many ran.
    With `part_sensor`, each trigger waits (up to 2 s) for a part in position."""
    sent = 0
    async with OpcuaTriggerClient(url, stream) as client:
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            started = time.monotonic()
            await await_part(part_sensor)
            on_result(await client.trigger(how))
            sent += 1
            await asyncio.sleep(max(0.0, 1.0 / rate - (time.monotonic() - started)))
    return sent


async def _main(args: argparse.Namespace) -> int:
    async with OpcuaTriggerClient(
        args.url, args.stream, username=args.username, password=args.password
    ) as client:
        for _ in range(args.count):
            started = time.perf_counter()
            result = await client.trigger(args.how)
            elapsed = (time.perf_counter() - started) * 1000
            error = result.get("error")
            verdict = error["name"] if error else ("PASS" if result.get("pass") else "FAIL")
            print(f"#{result['result_id']:<5} {verdict:<6} {result['outputs']}  ({elapsed:.1f} ms)")
            await asyncio.sleep(args.interval)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.opcua_client",
        description="Trigger a gateway stream over OPC UA and print each result.",
    )
    parser.add_argument("--url", default="opc.tcp://127.0.0.1:4840/gateway")
    parser.add_argument("--stream", default="conveyor")
    parser.add_argument(
        "--how",
        choices=["write", "count", "method"],
        default="write",
        help="write Control/Trigger, increment Control/TriggerCount, or call Trigger",
    )
    parser.add_argument("--count", type=int, default=5, help="triggers to send (default 5)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between triggers")
    parser.add_argument("--username")
    parser.add_argument("--password")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
