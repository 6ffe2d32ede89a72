"""The composition root: the one place that builds the gateway from its config.

Everything is built here and passed down explicitly: cameras, the shared model registry,
compiled workflows, streams, the dispatcher and result bus, and the protocol adapters.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType

import structlog
from fastapi.responses import Response

from adapters.base import Adapter
from adapters.http import HttpAdapter, create_app, metrics_route
from adapters.http_dashboard import dashboard_router
from adapters.http_results import results_router
from adapters.http_workflows import workflow_router
from adapters.modbus import ModbusClientAdapter, ModbusServerAdapter, build_modbus_adapter
from adapters.mqtt import MqttAdapter
from adapters.opcua import OpcuaClientAdapter, OpcuaServerAdapter, build_opcua_adapter
from gateway.capture import CaptureBuffer
from gateway.config import (
    GatewayConfig,
)
from gateway.dispatcher import Dispatcher, ResultBus
from gateway.latency import LatencyWindow
from gateway.metrics import GatewayMetrics
from gateway.results import ResultStore, continue_counters
from gateway.sources import SourceFactory, build_source
from gateway.stream import Stream
from gateway.workflow import ModelRegistry, ParameterError
from gateway.workflow_library import UnknownWorkflow, WorkflowLibrary

log = structlog.get_logger(__name__)


class GatewayBuildError(Exception):
    """The config is valid YAML but the gateway cannot be built from it (workflow, model...)."""


class Gateway:
    """All the parts, started and stopped together: `async with Gateway(config) as gw: ...`."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        config_dir: Path | None = None,
        source_factory: SourceFactory = build_source,
        models: ModelRegistry | None = None,
    ) -> None:
        self.config = config
        self.models = (
            models
            if models is not None
            else ModelRegistry(config.runtime.intra_op_threads, config.runtime.warmup_runs)
        )
        self.bus = ResultBus()
        self.workflows, problems = WorkflowLibrary.from_config(
            config.workflows, self.models, config_dir or Path.cwd()
        )
        streams: dict[str, Stream] = {}
        for stream_id, stream_config in config.streams.items():
            try:
                workflow = self.workflows.get(
                    stream_config.workflow, stream_config.workflow_version
                )
            except UnknownWorkflow:
                continue  # its definition had problems, reported above
            capture = CaptureBuffer(
                stream_id,
                source_factory(stream_id, stream_config.source),
                frames_kept=stream_config.frames_kept,
                reconnect=stream_config.reconnect,
            )
            try:
                streams[stream_id] = Stream(
                    stream_id, stream_config, capture, workflow, self.bus.publish
                )
            except (ValueError, ParameterError) as exc:
                problems.append(f"streams.{stream_id}: {exc}")
        if problems:
            raise GatewayBuildError("\n".join(problems))
        self.dispatcher = Dispatcher(streams, self.bus)
        self.http: HttpAdapter | None = None
        self.mqtt: MqttAdapter | None = None
        self.modbus: ModbusServerAdapter | ModbusClientAdapter | None = None
        self.adapters: list[Adapter] = []
        self.opcua: OpcuaServerAdapter | OpcuaClientAdapter | None = None
        if config.opcua is not None and config.opcua.enabled:
            self.opcua = build_opcua_adapter(config, self.dispatcher)
            self.adapters.append(self.opcua)
        if config.modbus is not None and config.modbus.enabled:
            self.modbus = build_modbus_adapter(config, self.dispatcher)
            self.adapters.append(self.modbus)
        if config.mqtt.enabled:
            self.mqtt = MqttAdapter(self.dispatcher, self.bus, config.mqtt, config.gateway_id)
            self.adapters.append(self.mqtt)
        self.history: ResultStore | None = None
        if config.history.enabled:
            self.history = ResultStore(config.history)
            self.bus.subscribe(self.history.add)
        self.metrics = GatewayMetrics(self.streams, self._drops)
        self.bus.subscribe(self.metrics.observe)
        self.latency = LatencyWindow()
        self.bus.subscribe(self.latency.observe)
        if config.http.enabled:
            app = create_app(self.dispatcher, config.http, config.gateway_id)
            app.include_router(workflow_router(self.workflows))
            if self.history is not None:
                app.include_router(results_router(self.history))
            app.add_api_route(
                "/metrics",
                metrics_route(self.metrics.exposition),
                methods=["GET"],
                tags=["health"],
                response_class=Response,
            )
            self.http = HttpAdapter(app, config.http)
            app.include_router(
                dashboard_router(
                    self.streams, self.bus, self.latency, self.http.closing, config.gateway_id
                )
            )
            self.adapters.append(self.http)

    def _drops(self) -> dict[str, int]:
        drops = {}
        if self.history is not None:
            drops["history"] = self.history.dropped
        if self.mqtt is not None:
            drops["mqtt"] = self.mqtt.counters["results_dropped"]
        return drops

    @property
    def streams(self) -> dict[str, Stream]:
        return self.dispatcher.streams

    async def start(self) -> None:
        if self.history is not None:
            await asyncio.to_thread(self.history.open)
            first_ids = continue_counters(self.history, list(self.streams))
            for stream_id, stream in self.streams.items():
                stream.continue_result_ids(first_ids[stream_id])
        for stream in self.streams.values():
            await stream.start()
        started: list[Adapter] = []
        try:
            for adapter in self.adapters:
                await adapter.start()
                started.append(adapter)
        except BaseException:
            for adapter in reversed(started):
                await adapter.stop()
            for stream in self.streams.values():
                await stream.stop()
            raise
        log.info(
            "gateway started",
            gateway_id=self.config.gateway_id,
            streams=list(self.streams),
            http_port=None if self.http is None else self.http.port,
            modbus_port=self.modbus.port if isinstance(self.modbus, ModbusServerAdapter) else None,
        )

    async def stop(self) -> None:
        for adapter in reversed(self.adapters):
            try:
                await adapter.stop()
            except Exception:
                log.exception("adapter failed to stop", adapter=adapter.name)
        await asyncio.gather(*(stream.stop() for stream in self.streams.values()))
        if self.history is not None:
            await asyncio.to_thread(self.history.close)
        log.info("gateway stopped", gateway_id=self.config.gateway_id)

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
