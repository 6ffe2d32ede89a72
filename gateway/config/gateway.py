"""The whole config: every section, and the checks that span sections."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from gateway.config.base import STREAM_ID_PATTERN, StrictModel
from gateway.config.http import HttpConfig
from gateway.config.modbus import ModbusConfig, ModbusStreamConfig, check_bases, modbus_streams
from gateway.config.mqtt import MqttConfig
from gateway.config.opcua import OpcuaConfig
from gateway.config.runtime import HistoryConfig, LoggingConfig, RuntimeConfig
from gateway.config.sparkplug import SparkplugConfig
from gateway.config.streams import StreamConfig
from gateway.config.workflows import WorkflowRef


class GatewayConfig(StrictModel):
    gateway_id: str = Field("gateway", pattern=STREAM_ID_PATTERN)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    modbus: ModbusConfig | None = None
    opcua: OpcuaConfig | None = None
    sparkplug: SparkplugConfig = Field(default_factory=SparkplugConfig)
    workflows: dict[str, WorkflowRef] = Field(min_length=1)
    streams: dict[str, StreamConfig] = Field(min_length=1)

    @field_validator("streams")
    @classmethod
    def _stream_ids(cls, streams: dict[str, StreamConfig]) -> dict[str, StreamConfig]:
        for stream_id in streams:
            if not re.match(STREAM_ID_PATTERN, stream_id):
                raise ValueError(
                    f"stream id {stream_id!r}: letters, digits, '-' and '_' only (max 64)"
                )
        return streams

    @model_validator(mode="after")
    def _workflows_exist(self) -> GatewayConfig:
        for stream_id, stream in self.streams.items():
            if stream.workflow not in self.workflows:
                known = ", ".join(sorted(self.workflows))
                raise ValueError(
                    f"streams.{stream_id}.workflow: no workflow named {stream.workflow!r} "
                    f"(known: {known})"
                )
            versions = self.workflows[stream.workflow].all_versions()
            if stream.workflow_version is not None and stream.workflow_version not in versions:
                raise ValueError(
                    f"streams.{stream_id}.workflow_version: workflow {stream.workflow!r} has no "
                    f"version {stream.workflow_version!r} (versions: {', '.join(versions)})"
                )
        return self

    def modbus_streams(self) -> dict[str, tuple[int, ModbusStreamConfig]]:
        """The streams on Modbus with their base address (see `config.modbus.modbus_streams`)."""
        return {} if self.modbus is None else modbus_streams(self.modbus, list(self.streams))

    @model_validator(mode="after")
    def _front_end_streams(self) -> GatewayConfig:
        sections = (("modbus", self.modbus), ("opcua", self.opcua), ("sparkplug", self.sparkplug))
        for section, front_end in sections:
            for stream_id in front_end.streams if front_end is not None else {}:
                if stream_id not in self.streams:
                    raise ValueError(
                        f"{section}.streams.{stream_id}: no stream named {stream_id!r} "
                        f"(known: {', '.join(self.streams)})"
                    )
        return self

    @model_validator(mode="after")
    def _modbus_bases(self) -> GatewayConfig:
        if self.modbus is not None:
            check_bases(self.modbus, list(self.streams))
        return self
