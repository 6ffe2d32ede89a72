"""Client mode: the PLC runs the OPC UA server; the gateway subscribes to a trigger node on it
and writes each result into the PLC's nodes.

A data-change subscription watches every stream's trigger node (sampling and publishing
intervals from the config). The first notification after each (re)connect is the node's
current value, a baseline: a trigger held high while the PLC's server restarts does not fire.
Bool triggers fire on false -> true (and are written back to false once accepted); counter
triggers fire on each new value. Results are written node by node, `result_counter` last.
The connection is checked every second; when the PLC's server goes away the gateway reconnects
with capped backoff and subscribes again. A `recipe_node` is watched too: its value at the
moment of a trigger goes to the workflow parameter `recipe_parameter` (when nonzero).
"""

from __future__ import annotations

import asyncio
import contextlib
from types import MappingProxyType
from typing import Any, Final

import structlog
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.ua.uaerrors import UaError
from asyncua.ua.uatypes import Double

from adapters.opcua.nodes import typed_value
from gateway.config import OpcuaClientConfig, OpcuaClientStreamConfig
from gateway.core import Core
from gateway.model import InspectionResult, Origin, Trigger
from gateway.supervise import Backoff, cancel_and_wait, reconnect_forever
from gateway.wire import ImageTransport, encode_result, recipe_parameters

log = structlog.get_logger(__name__)

CHECK_INTERVAL_S = 1.0
VARIANT_KIND: Final = MappingProxyType(
    {
        ua.VariantType.Boolean: "Boolean",
        ua.VariantType.Int16: "Int32",
        ua.VariantType.Int32: "Int32",
        ua.VariantType.UInt16: "UInt32",
        ua.VariantType.UInt32: "UInt32",
        ua.VariantType.Int64: "Int64",
        ua.VariantType.UInt64: "Int64",
        ua.VariantType.Float: "Float",
        ua.VariantType.Double: "Double",
        ua.VariantType.String: "String",
    }
)


class _Watch:
    """One stream's trigger node: its last value and the result nodes with their types."""

    def __init__(self, stream_id: str, layout: OpcuaClientStreamConfig) -> None:
        self.stream_id = stream_id
        self.layout = layout
        self.trigger_node: Node | None = None
        self.baseline_seen = False
        self.last: Any = None
        self.targets: list[tuple[str, Node, ua.VariantType]] = []
        self.result_counter = 0
        self.recipe = 0
        """The last value of the PLC's recipe node (`recipe_node`), 0 when none."""


class _Handler:
    """asyncua calls this from its subscription task; it hands values to the adapter."""

    def __init__(self, adapter: OpcuaClientAdapter) -> None:
        self._adapter = adapter

    def datachange_notification(self, node: Node, value: Any, data: Any) -> None:
        self._adapter.notified(node, value)


class OpcuaClientAdapter:
    name = "opcua"

    def __init__(self, config: OpcuaClientConfig, core: Core) -> None:
        self._config = config
        self._dispatcher = core.dispatcher
        self._watches = {sid: _Watch(sid, layout) for sid, layout in config.streams.items()}
        self._by_node: dict[ua.NodeId, _Watch] = {}
        self._recipes: dict[ua.NodeId, _Watch] = {}
        self._task: asyncio.Task[None] | None = None
        self._writes: asyncio.Queue[tuple[_Watch, InspectionResult | None, Any]] = asyncio.Queue()
        """Results to write, and trigger resets (result None), in order, on one connection."""
        self._stopping = False
        self.connected = False
        self.counters = {"connects": 0, "triggers": 0, "results": 0, "errors": 0}
        self.last_error: str | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="opcua-client")

    async def stop(self) -> None:
        self._stopping = True
        await cancel_and_wait(self._task)
        self._task = None

    def status(self) -> dict[str, Any]:
        return {
            "mode": "client",
            "url": self._config.url,
            "connected": self.connected,
            "last_error": self.last_error,
            **self.counters,
        }

    # --- connection --------------------------------------------------------------------------

    async def _run(self) -> None:
        """Our own reconnect loop, not asyncua's `auto_reconnect`: that one does not retry the
        first connection (the PLC may start after the gateway) and its backoff ignores
        `reconnect.initial_s` and `factor`."""
        await reconnect_forever(
            self._session,
            Backoff(self._config.reconnect),
            stopping=lambda: self._stopping,
            retry_on=(OSError, TimeoutError, UaError, ConnectionError),
            on_failure=self._failed,
        )

    async def _session(self, backoff: Backoff) -> None:
        """One connection to the PLC's server: subscribe, then write results until it fails."""
        client = Client(self._config.url, timeout=self._config.timeout_s)
        if self._config.username:
            client.set_user(self._config.username)
        if self._config.password is not None:
            client.set_password(self._config.password.get_secret_value())
        writer: asyncio.Task[None] | None = None
        try:
            await client.connect()
            await self._subscribe(client)
            self.connected = True
            self.counters["connects"] += 1
            self.last_error = None
            backoff.reset()
            log.info("opcua connected to PLC", url=self._config.url)
            writer = asyncio.create_task(self._write_results())
            while not self._stopping:
                await asyncio.sleep(CHECK_INTERVAL_S)
                await client.check_connection()
        finally:
            self.connected = False
            await cancel_and_wait(writer)
            with contextlib.suppress(Exception):
                await client.disconnect()

    def _failed(self, exc: BaseException, retry_s: float) -> None:
        self.counters["errors"] += 1
        if str(exc) != self.last_error:
            log.warning("opcua PLC unreachable; retrying", error=str(exc), retry_s=retry_s)
        self.last_error = str(exc) or type(exc).__name__

    async def _subscribe(self, client: Client) -> None:
        self._by_node.clear()
        self._recipes.clear()
        subscription = await client.create_subscription(
            self._config.publishing_interval_ms, _Handler(self)
        )
        for watch in self._watches.values():
            watch.baseline_seen = False
            watch.trigger_node = client.get_node(watch.layout.trigger_node)
            self._by_node[watch.trigger_node.nodeid] = watch
            watch.targets = []
            names = [*watch.layout.result_nodes.items(), *watch.layout.output_nodes.items()]
            for key, node_id in names:
                node = client.get_node(node_id)
                watch.targets.append((key, node, await node.read_data_type_as_variant_type()))
            sampling = Double(self._config.sampling_interval_ms)
            if watch.layout.recipe_node is not None:
                recipe = client.get_node(watch.layout.recipe_node)
                self._recipes[recipe.nodeid] = watch
                await subscription.subscribe_data_change(recipe, sampling_interval=sampling)
            await subscription.subscribe_data_change(watch.trigger_node, sampling_interval=sampling)

    # --- triggers and results ----------------------------------------------------------------

    def notified(self, node: Node, value: Any) -> None:
        recipe_of = self._recipes.get(node.nodeid)
        if recipe_of is not None:
            valid = isinstance(value, int) and not isinstance(value, bool)
            recipe_of.recipe = value if valid else 0
            return
        watch = self._by_node.get(node.nodeid)
        if watch is None:
            return
        before, watch.last = watch.last, value
        if not watch.baseline_seen:
            watch.baseline_seen = True
            return
        if watch.layout.trigger_kind == "bool":
            if value is True and before is not True:
                self._trigger(watch, value)
        elif value != before and value:
            self._trigger(watch, value)

    def _trigger(self, watch: _Watch, value: Any) -> None:
        self.counters["triggers"] += 1
        parameters = recipe_parameters(watch.layout.recipe_parameter, watch.recipe)
        trigger = Trigger(watch.stream_id, Origin.OPCUA, parameters=parameters)
        future = self._dispatcher.submit(trigger)

        def queue(done: asyncio.Future[InspectionResult]) -> None:
            if not done.cancelled():
                self._writes.put_nowait((watch, done.result(), value))

        future.add_done_callback(queue)
        if watch.layout.trigger_kind == "bool" and watch.layout.reset_trigger:
            self._writes.put_nowait((watch, None, False))

    async def _write_results(self) -> None:
        while True:
            watch, result, value = await self._writes.get()
            try:
                if result is None:
                    assert watch.trigger_node is not None
                    await watch.trigger_node.write_value(ua.Variant(False, ua.VariantType.Boolean))
                    continue
                await self._write_result(watch, result, value)
            except (OSError, TimeoutError, UaError) as exc:
                log.warning(
                    "opcua result not written to PLC", stream=watch.stream_id, error=str(exc)
                )

    async def _write_result(self, watch: _Watch, result: InspectionResult, value: Any) -> None:
        fields: dict[str, Any] = {
            "pass": bool(result.passed),
            "result_code": result.result_code,
            "error_code": int(result.error_code),
            "json": encode_result(result, ImageTransport.OMIT).decode(),
            "trigger_count": value if isinstance(value, int) and not isinstance(value, bool) else 0,
        }
        counter_target = None
        for key, node, variant in watch.targets:
            if key == "result_counter":
                counter_target = (node, variant)
                continue
            raw = fields[key] if key in fields else result.output(key)
            kind = VARIANT_KIND.get(variant, "String")
            try:
                typed = typed_value(raw, kind)
            except ValueError:
                typed = typed_value("" if kind == "String" else 0, kind)
            await node.write_value(ua.Variant(typed, variant))
        self.counters["results"] += 1
        watch.result_counter += 1
        if counter_target is not None:
            node, variant = counter_target
            await node.write_value(ua.Variant(watch.result_counter, variant))
