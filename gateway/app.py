"""The composition root: the one place that builds the gateway from its config.

Everything is built here and passed down explicitly: cameras, the shared model registry,
compiled workflows, streams, the dispatcher and result bus, the history and figures, and the
protocol adapters, each as `Adapter(section_config, core)`. Nothing else wires parts together.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from types import TracebackType

import structlog

from adapters.base import Adapter
from adapters.http import HttpAdapter
from adapters.modbus import ModbusClientAdapter, ModbusServerAdapter, build_modbus_adapter
from adapters.mqtt import MqttAdapter
from adapters.opcua import build_opcua_adapter
from adapters.sparkplug import SparkplugAdapter
from gateway.bus import ResultBus
from gateway.config import GatewayConfig
from gateway.core import Core
from gateway.dispatcher import Dispatcher
from gateway.latency import LatencyWindow
from gateway.metrics import GatewayMetrics
from gateway.plant_history import PostgresHistory
from gateway.results import ResultStore
from gateway.runtime_streams import RuntimeStreams, StreamBuilder
from gateway.sources import SourceFactory, build_source
from gateway.stream import Stream
from gateway.workflow import ModelRegistry
from gateway.workflow_library import UnknownWorkflow, WorkflowLibrary

log = structlog.get_logger(__name__)

FIRST_FRAME_WAIT_S = 3.0
"""How long a starting gateway waits for its cameras' first frames before it serves."""


class GatewayBuildError(Exception):
    """The config is valid YAML but the gateway cannot be built from it (workflow, model...)."""


def _build_streams(
    config: GatewayConfig, workflows: WorkflowLibrary, builder: StreamBuilder, problems: list[str]
) -> dict[str, Stream]:
    streams: dict[str, Stream] = {}
    for stream_id, stream_config in config.streams.items():
        try:
            workflow = workflows.get(stream_config.workflow, stream_config.workflow_version)
        except UnknownWorkflow:
            continue  # its definition had problems, reported already
        try:
            streams[stream_id] = builder.build(stream_id, stream_config, workflow)
        except ValueError as exc:
            problems.append(f"streams.{stream_id}: {exc}")
    return streams


def _carries_images(config: GatewayConfig) -> bool:
    """Whether any front end sends image outputs as bytes or links (else none are encoded)."""
    http = config.http.enabled and config.http.image_outputs != "omit"
    mqtt = config.mqtt.enabled and config.mqtt.image_outputs != "omit"
    return http or mqtt


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
        self.models = models or ModelRegistry(
            config.runtime.intra_op_threads, config.runtime.warmup_runs
        )
        self.bus = ResultBus()
        self.workflows, problems = WorkflowLibrary.from_config(
            config.workflows, self.models, config_dir or Path.cwd()
        )
        builder = StreamBuilder(source_factory, self.bus)
        builder.encode_images = _carries_images(config)
        streams = _build_streams(config, self.workflows, builder, problems)
        if problems:
            raise GatewayBuildError("\n".join(problems))
        self.streams = streams
        self.dispatcher = Dispatcher(streams, self.bus)
        self.history = ResultStore(config.history) if config.history.enabled else None
        self.runtime_streams = RuntimeStreams(
            builder, self.dispatcher, config.http.max_runtime_streams, lambda: self.history
        )
        self.mqtt: MqttAdapter | None = None  # known before the metrics ask for its figures
        self.modbus: ModbusServerAdapter | ModbusClientAdapter | None = None
        if self.history is not None:
            self.bus.subscribe(self.history.add)
        self.plant_history = self._plant_history(config)
        if self.plant_history is not None:
            self.bus.subscribe(self.plant_history.add)
        self.metrics = GatewayMetrics(
            list(streams),
            self.dispatcher.snapshots,
            self._drops,
            self._queued,
            self._refused,
            lambda: self.runtime_streams.ids,
        )
        self.bus.subscribe(self.metrics.observe)
        self.latency = LatencyWindow()
        self.bus.subscribe(self.latency.observe)
        self.core = Core(
            config.gateway_id,
            self.dispatcher,
            self.bus,
            self.workflows,
            self.metrics,
            self.latency,
            self.runtime_streams,
            self.history,
        )
        self._build_adapters()

    def _build_adapters(self) -> None:
        config, core = self.config, self.core
        opcua, modbus = config.opcua, config.modbus
        self.opcua = build_opcua_adapter(opcua, core) if opcua and opcua.enabled else None
        self.modbus = build_modbus_adapter(modbus, core) if modbus and modbus.enabled else None
        self.mqtt = MqttAdapter(config.mqtt, core) if config.mqtt.enabled else None
        fleet = None if self.mqtt is None else self.mqtt.fleet
        self.http = HttpAdapter(config.http, core, fleet) if config.http.enabled else None
        sparkplug = config.sparkplug
        self.sparkplug = SparkplugAdapter(sparkplug, core) if sparkplug.enabled else None
        candidates: list[Adapter | None] = [
            self.opcua,
            self.modbus,
            self.mqtt,
            self.sparkplug,
            self.http,
        ]
        self.adapters: list[Adapter] = [adapter for adapter in candidates if adapter is not None]

    def _plant_history(self, config: GatewayConfig) -> PostgresHistory | None:
        postgres = config.history.postgres
        if postgres is None:
            return None
        outbox = None if self.history is None else self.history.directory / "postgres-outbox.db"
        return PostgresHistory(postgres, config.gateway_id, outbox)

    def _drops(self) -> dict[str, int]:
        drops = {}
        if self.history is not None:
            drops["history"] = self.history.dropped
        if self.plant_history is not None:
            drops["postgres"] = self.plant_history.dropped
        if self.mqtt is not None:
            drops["mqtt"] = self.mqtt.counters["results_dropped"]
        return drops

    def _refused(self) -> dict[int, int]:
        """Modbus requests refused by exception code (server mode)."""
        status = {} if self.modbus is None else self.modbus.status()
        return dict(status.get("requests_refused", {}))

    def _queued(self) -> dict[str, int]:
        queued = {} if self.mqtt is None else {"mqtt": self.mqtt.queued}
        if self.plant_history is not None:
            queued["postgres"] = self.plant_history.queued
        return queued

    async def start(self) -> None:
        if self.history is not None:
            await asyncio.to_thread(self.history.open)
            for stream_id, stream in self.streams.items():
                stream.number_results_with(functools.partial(self.history.ids.next_id, stream_id))
        if self.plant_history is not None:
            await asyncio.to_thread(self.plant_history.open)
        for stream in self.streams.values():
            await stream.start()
        await self._cameras_ready(FIRST_FRAME_WAIT_S)
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
            if self.plant_history is not None:
                await asyncio.to_thread(self.plant_history.close)
            if self.history is not None:
                await asyncio.to_thread(self.history.close)
            raise
        log.info(
            "gateway started",
            gateway_id=self.config.gateway_id,
            streams=list(self.streams),
            adapters={adapter.name: adapter.status() for adapter in self.adapters},
        )

    async def _cameras_ready(self, timeout_s: float) -> None:
        """Wait (bounded) until every camera delivered a frame or said why not, so that the
        triggers waiting for this gateway (an MQTT session's, a PLC's) find a frame to use."""
        for _ in range(int(timeout_s / 0.02)):
            cameras = [snapshot.camera for snapshot in self.dispatcher.snapshots()]
            if all(camera.frames > 0 or camera.last_error for camera in cameras):
                return
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        for adapter in reversed(self.adapters):
            try:
                await adapter.stop()
            except Exception:
                log.exception("adapter failed to stop", adapter=adapter.name)
        await self.runtime_streams.stop_all()
        await asyncio.gather(*(stream.stop() for stream in self.streams.values()))
        if self.plant_history is not None:
            await asyncio.to_thread(self.plant_history.close)
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
