"""Server mode: the gateway is an OPC UA server (asyncua). Under Objects/Gateway/Streams/<id>/:

    Control/  Trigger (Boolean, write true; reset by the server on acceptance), TriggerCount
              (UInt32, each new value fires once), PartId (UInt32), Recipe (UInt32)   writable
    Status/   State, Ready, Busy, Error, ErrorCode, CameraConnected, Heartbeat        read only
    Result/   TriggerCount (echo), ResultId, Pass, ResultCode, ErrorCode, ProcessingTimeMs,
              FrameTimestamp, Json, the mapped outputs, ResultCounter (written last)  read only
    Trigger(Parameters: String) -> (ResultCode: Int32, Pass: Boolean, Result: String)   method

Node ids are strings a PLC programmer can type: ns=<namespace>;s=Streams.<id>.Control.Trigger.
Writes are seen by the server's PostWrite callback (it sees repeated writes of the same value;
a server-side subscription does not) and only handed to the event loop from there. Every
trigger gets exactly one result on the Result nodes (BUSY when the stream's queue is full).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import structlog
from asyncua import ua
from asyncua.common.callback import CallbackType, ServerItemCallback
from asyncua.common.node import Node
from asyncua.server.server import Server
from asyncua.ua.attribute_ids import AttributeIds

from adapters.opcua.guards import argument_problem, guard_scalar_writes
from adapters.opcua.nodes import (
    CONTROL,
    RESULT,
    SCALAR_RANK,
    STATUS,
    VARIANT,
    StreamNodes,
    string_node_id,
    typed_value,
)
from adapters.opcua.security import POLICY, GatewayUserManager, server_certificate, trusted_clients
from gateway.config import OpcuaServerConfig, OpcuaStreamConfig
from gateway.core import Core
from gateway.model import InspectionResult, Origin, Trigger
from gateway.snapshot import heartbeat
from gateway.supervise import cancel_and_wait
from gateway.wire import (
    BadTrigger,
    ImageTransport,
    encode_result,
    read_json_object,
    recipe_parameters,
)

log = structlog.get_logger(__name__)

STATUS_INTERVAL_S = 0.1


class OpcuaServerAdapter:
    name = "opcua"

    def __init__(self, config: OpcuaServerConfig, core: Core) -> None:
        self._config = config
        self._dispatcher = core.dispatcher
        self._layouts = dict(config.streams) or {
            stream_id: OpcuaStreamConfig() for stream_id in core.dispatcher.stream_ids
        }
        self._gateway_id = core.gateway_id
        self.users = GatewayUserManager(config.security.users, config.security.allow_anonymous)
        self.server: Server | None = None
        self.namespace_index = 0
        self.port: int | None = None
        self.streams: dict[str, StreamNodes] = {}
        self._writable: dict[ua.NodeId, tuple[StreamNodes, str]] = {}
        self._results: asyncio.Queue[tuple[StreamNodes, InspectionResult, int]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self._config.host}:{self.port}/gateway"

    # --- start / stop ------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        server = Server(user_manager=self.users)
        await server.init()
        security = self._config.security
        app_uri = f"{self._config.namespace}:{self._gateway_id}"
        server.set_endpoint(f"opc.tcp://{self._config.host}:{self._config.port}/gateway")
        server.set_server_name(f"Inspection gateway {self._gateway_id}")
        await server.set_application_uri(app_uri)
        server.set_security_policy([POLICY[policy] for policy in security.policies])
        tokens: list[type] = [ua.UserNameIdentityToken] if security.users else []
        if security.allow_anonymous:
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        if any(policy != "None" for policy in security.policies):
            cert, key = await server_certificate(security.pki_dir, app_uri)
            await server.load_certificate(str(cert))
            await server.load_private_key(str(key))
            if not security.trust_all_clients:
                server.set_certificate_validator(await trusted_clients(security.pki_dir))
        self.namespace_index = await server.register_namespace(self._config.namespace)
        await self._build(server)
        guard_scalar_writes(server, self._writable.keys())
        server.subscribe_server_callback(CallbackType.PostWrite, self._on_write)
        await server.start()
        self.server = server
        self.port = server.bserver.port if server.bserver is not None else self._config.port
        self._tasks = [
            asyncio.create_task(self._publish_results(), name="opcua-results"),
            asyncio.create_task(self._keep_status(), name="opcua-status"),
        ]
        log.info(
            "opcua server listening",
            endpoint=self.endpoint,
            policies=security.policies,
            anonymous=security.allow_anonymous,
            namespace=self.namespace_index,
        )

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks)
        self._tasks = []
        if self.server is not None:
            await self.server.stop()
            self.server = None

    def node_id(self, stream_id: str, path: str) -> ua.NodeId:
        return string_node_id(f"Streams.{stream_id}.{path}", self.namespace_index)

    async def _build(self, server: Server) -> None:
        idx = self.namespace_index
        root = await server.nodes.objects.add_object(
            string_node_id("Gateway", idx), f"{idx}:Gateway"
        )
        folder = await root.add_folder(string_node_id("Streams", idx), f"{idx}:Streams")
        for stream_id, layout in self._layouts.items():
            nodes = StreamNodes(stream_id, layout)
            self.streams[stream_id] = nodes
            stream = await folder.add_object(
                string_node_id(f"Streams.{stream_id}", idx), f"{idx}:{stream_id}"
            )

            async def variable(
                parent: Node,
                group: str,
                name: str,
                value: Any,
                variant: ua.VariantType,
                stream_id: str = stream_id,
            ) -> Node:
                return await parent.add_variable(
                    self.node_id(stream_id, f"{group}.{name}"), f"{idx}:{name}", value, variant
                )

            control = await stream.add_object(self.node_id(stream_id, "Control"), f"{idx}:Control")
            for name, value in CONTROL.items():
                variant = ua.VariantType.Boolean if name == "Trigger" else ua.VariantType.UInt32
                node = await variable(control, "Control", name, value, variant)
                await node.write_attribute(AttributeIds.ValueRank, SCALAR_RANK)
                await node.set_writable()
                nodes.control[name] = node
                self._writable[node.nodeid] = (nodes, name)
            status = await stream.add_object(self.node_id(stream_id, "Status"), f"{idx}:Status")
            for name, value in STATUS.items():
                variant = {
                    str: ua.VariantType.String,
                    bool: ua.VariantType.Boolean,
                    int: ua.VariantType.Int32,
                }[type(value)]
                nodes.status[name] = await variable(status, "Status", name, value, variant)
            result = await stream.add_object(self.node_id(stream_id, "Result"), f"{idx}:Result")
            for name, (value, variant) in RESULT.items():
                nodes.result[name] = await variable(result, "Result", name, value, variant)
            for output in layout.outputs:
                initial = typed_value("" if output.type == "String" else False, output.type)
                node = await variable(
                    result, "Result", output.node_name, initial, VARIANT[output.type]
                )
                nodes.outputs.append((output, node))
            nodes.counter_node = await variable(
                result, "Result", "ResultCounter", 0, ua.VariantType.UInt32
            )
            await stream.add_method(
                self.node_id(stream_id, "Trigger"),
                f"{idx}:Trigger",
                self._method(nodes),
                [ua.VariantType.String],
                [ua.VariantType.Int32, ua.VariantType.Boolean, ua.VariantType.String],
            )

    # --- triggers ----------------------------------------------------------------------------

    async def _on_write(self, event: ServerItemCallback, _dispatcher: Any) -> None:
        """PostWrite: hand accepted client writes of Control nodes to the loop, nothing more."""
        if not event.is_external or self._loop is None:
            return
        for write, status in zip(
            event.request_params.NodesToWrite, event.response_params, strict=False
        ):
            target = self._writable.get(write.NodeId)
            if target is None or not status.is_good() or write.AttributeId != AttributeIds.Value:
                continue
            self._loop.call_soon(self._control_written, *target, write.Value.Value.Value)

    def _control_written(self, nodes: StreamNodes, name: str, value: Any) -> None:
        before = nodes.controls[name]
        nodes.controls[name] = value
        if name == "Trigger" and value is True:
            self._submit(nodes, count=None)
            assert self._loop is not None
            self._loop.create_task(self._reset_trigger(nodes))
        elif name == "TriggerCount" and value != before and value != 0:
            self._submit(nodes, count=int(value))

    async def _reset_trigger(self, nodes: StreamNodes) -> None:
        nodes.controls["Trigger"] = False
        await self._write(nodes.control["Trigger"], False, ua.VariantType.Boolean)

    def _submit(
        self, nodes: StreamNodes, *, count: int | None, parameters: dict[str, Any] | None = None
    ) -> asyncio.Future[InspectionResult]:
        nodes.counters["triggers"] += 1
        recipe = int(nodes.controls["Recipe"])
        trigger = Trigger(
            nodes.stream_id,
            Origin.OPCUA,
            parameters=recipe_parameters(nodes.layout.recipe_parameter, recipe, parameters),
            part_id=int(nodes.controls["PartId"]) or None,
        )
        future = self._dispatcher.submit(trigger)
        echo = count if count is not None else int(nodes.controls["TriggerCount"])

        def publish(done: asyncio.Future[InspectionResult]) -> None:
            if not done.cancelled():
                self._results.put_nowait((nodes, done.result(), echo))

        future.add_done_callback(publish)
        return future

    def _method(self, nodes: StreamNodes) -> Any:
        async def trigger(_parent: ua.NodeId, *arguments: Any) -> Any:
            """Trigger(Parameters JSON) -> ResultCode, Pass, Result JSON; errors are results."""
            nodes.counters["method_calls"] += 1
            refused = argument_problem(arguments)
            if refused is not None:
                return refused
            text = arguments[0].Value
            try:
                parsed = read_json_object(text.encode("utf-8", "surrogatepass"), "Parameters")
            except BadTrigger as exc:
                trigger = Trigger(nodes.stream_id, Origin.OPCUA)
                return _method_answer(await self._dispatcher.reject(trigger, exc.code, str(exc)))
            return _method_answer(await self._submit(nodes, count=None, parameters=parsed))

        return trigger

    # --- results and status ------------------------------------------------------------------

    async def _write(self, node: Node, value: Any, variant: ua.VariantType) -> None:
        assert self.server is not None
        await self.server.write_attribute_value(
            node.nodeid, ua.DataValue(ua.Variant(value, variant))
        )

    async def _publish_results(self) -> None:
        """One writer, so each result's nodes are complete before its ResultCounter moves."""
        while True:
            nodes, result, echo = await self._results.get()
            try:
                await self._write_result(nodes, result, echo)
            except Exception:
                log.exception("opcua result not written", stream=nodes.stream_id)

    async def _write_result(self, nodes: StreamNodes, result: InspectionResult, echo: int) -> None:
        frame_time = datetime.fromtimestamp(result.frame_timestamp or 0, UTC)
        values = {
            "TriggerCount": echo & 0xFFFF_FFFF,
            "ResultId": result.result_id & 0xFFFF_FFFF,
            "Pass": bool(result.passed),
            "ResultCode": result.result_code,
            "ErrorCode": int(result.error_code),
            "ProcessingTimeMs": float(result.timings.total_ms),
            "FrameTimestamp": frame_time,
            "Json": _json(result),
        }
        for name, value in values.items():
            await self._write(nodes.result[name], value, RESULT[name][1])
        for output, node in nodes.outputs:
            raw = result.output(output.output)
            try:
                value = typed_value(raw, output.type)
            except ValueError:
                value = typed_value("" if output.type == "String" else 0, output.type)
            await self._write(node, value, VARIANT[output.type])
        nodes.last_error = int(result.error_code)
        nodes.counters["results"] += 1
        nodes.result_counter = (nodes.result_counter + 1) & 0xFFFF_FFFF
        assert nodes.counter_node is not None
        await self._write(nodes.counter_node, nodes.result_counter, ua.VariantType.UInt32)

    async def _keep_status(self) -> None:
        """Status nodes on change; Heartbeat flips every `heartbeat_ms` (1 Hz by default)."""
        heartbeat_s = self._config.heartbeat_ms / 1000.0
        while True:
            beat = heartbeat(time.monotonic(), heartbeat_s)
            for nodes in self.streams.values():
                await self._write_status(nodes, beat)
            await asyncio.sleep(min(STATUS_INTERVAL_S, heartbeat_s / 2))

    async def _write_status(self, nodes: StreamNodes, beat: bool) -> None:
        stream = self._dispatcher.snapshot(nodes.stream_id)
        values = {
            "State": stream.activity,
            "Ready": stream.ready,
            "Busy": stream.busy,
            "Error": nodes.last_error != 0,
            "ErrorCode": nodes.last_error,
            "CameraConnected": stream.camera.connected,
            "Heartbeat": beat,
        }
        for name, value in values.items():
            if nodes.shown.get(name) != value:
                nodes.shown[name] = value
                variant = {str: ua.VariantType.String, bool: ua.VariantType.Boolean}.get(
                    type(value), ua.VariantType.Int32
                )
                await self._write(nodes.status[name], value, variant)

    def status(self) -> dict[str, Any]:
        return {
            "mode": "server",
            "endpoint": self.endpoint if self.port else None,
            "refused_logins": self.users.refused,
            "streams": {sid: dict(nodes.counters) for sid, nodes in self.streams.items()},
        }


def _json(result: InspectionResult) -> str:
    """The result as JSON for a string node: image outputs are named, not carried (a PLC or
    HMI reads this string; images are on HTTP, MQTT and in the history)."""
    return encode_result(result, ImageTransport.OMIT).decode()


def _method_answer(result: InspectionResult) -> list[ua.Variant]:
    """The Trigger method's outputs: ResultCode, Pass, the result JSON."""
    return [
        ua.Variant(result.result_code, ua.VariantType.Int32),
        ua.Variant(bool(result.passed), ua.VariantType.Boolean),
        ua.Variant(_json(result), ua.VariantType.String),
    ]
