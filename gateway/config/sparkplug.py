"""The `sparkplug` section: the gateway as a Sparkplug B Edge Node, each stream a Device."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from gateway.config.base import StrictModel
from gateway.config.mqtt import BrokerConfig

SparkplugType = Literal[
    "Boolean", "Int32", "Int64", "UInt32", "UInt64", "Float", "Double", "String"
]
SPARKPLUG_ID = r"^[^/#+]+$"


class SparkplugOutput(StrictModel):
    """One workflow output as a Device metric `Outputs/<name>`."""

    output: str = Field(min_length=1, description="workflow output; a dotted path reaches in")
    name: str | None = Field(None, min_length=1, description="metric name; default: the output's")
    type: SparkplugType = "Double"

    @property
    def metric_name(self) -> str:
        return "Outputs/" + (self.name or re.sub(r"[^A-Za-z0-9_.]", "_", self.output))


class SparkplugStreamConfig(StrictModel):
    outputs: list[SparkplugOutput] = Field(default_factory=list)


class SparkplugConfig(BrokerConfig):
    """Sparkplug B over MQTT for SCADA (Ignition and other Sparkplug host applications)."""

    group_id: str = Field("Inspection", pattern=SPARKPLUG_ID)
    edge_node_id: str | None = Field(None, pattern=SPARKPLUG_ID, description="default: gateway_id")
    primary_host_id: str | None = Field(
        None,
        pattern=SPARKPLUG_ID,
        description="publish births only while this host application's STATE is online",
    )
    streams: dict[str, SparkplugStreamConfig] = Field(
        default_factory=dict, description="mapped outputs per stream (every stream is a Device)"
    )
