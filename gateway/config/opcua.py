"""The `opcua` section: server mode (nodes, security) or client mode (the PLC's nodes)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.config.base import StrictModel, resolve_path
from gateway.config.streams import ReconnectConfig

OpcuaType = Literal["Boolean", "Int32", "UInt32", "Int64", "Float", "Double", "String"]
OpcuaPolicy = Literal["None", "Basic256Sha256_Sign", "Basic256Sha256_SignAndEncrypt"]


class OpcuaOutput(StrictModel):
    """One workflow output as a typed variable under `Result/`."""

    output: str = Field(min_length=1, description="workflow output; a dotted path reaches in")
    name: str | None = Field(
        None, pattern=r"^[A-Za-z][A-Za-z0-9_]*$", description="node name; default: the output's"
    )
    type: OpcuaType = "Double"

    @property
    def node_name(self) -> str:
        return self.name or re.sub(r"[^A-Za-z0-9_]", "_", self.output)


class OpcuaStreamConfig(StrictModel):
    outputs: list[OpcuaOutput] = Field(default_factory=list)
    recipe_parameter: str | None = Field(
        None, description="workflow parameter that receives Control/Recipe (when nonzero)"
    )


class OpcuaUser(StrictModel):
    """A user allowed to log in; give `password_hash` (`gateway hash-password`) or `password`."""

    username: str = Field(min_length=1)
    password_hash: SecretStr | None = Field(None, description="scrypt$... from hash-password")
    password: SecretStr | None = Field(None, description="plain, e.g. ${OPCUA_PASSWORD}")

    @model_validator(mode="after")
    def _one_secret(self) -> OpcuaUser:
        if (self.password_hash is None) == (self.password is None):
            raise ValueError("give exactly one of `password_hash` or `password`")
        return self


def _lab_policies() -> list[OpcuaPolicy]:
    return ["None"]


class OpcuaSecurityConfig(StrictModel):
    """None for the lab; Basic256Sha256 SignAndEncrypt with users for the plant."""

    policies: list[OpcuaPolicy] = Field(default_factory=_lab_policies, min_length=1)
    allow_anonymous: bool = True
    users: list[OpcuaUser] = Field(default_factory=list)
    pki_dir: Path = Field(
        Path("opcua-pki"),
        description="the server's certificate and key (made on first run) and `trusted/`",
    )
    trust_all_clients: bool = Field(
        False, description="accept any client certificate (lab); else only those in trusted/"
    )

    _resolve = field_validator("pki_dir")(resolve_path)

    @model_validator(mode="after")
    def _someone_can_log_in(self) -> OpcuaSecurityConfig:
        if not self.allow_anonymous and not self.users:
            raise ValueError("anonymous is off and no `users` are given: nobody could log in")
        return self


class OpcuaServerConfig(StrictModel):
    """The gateway is an OPC UA server: Objects/Gateway/Streams/<id>/Control, Status, Result."""

    type: Literal["server"]
    enabled: bool = True
    host: str = Field("127.0.0.1", description="bind address; 0.0.0.0 for every interface")
    port: int = Field(4840, ge=0, le=65535, description="0 picks a free port")
    namespace: str = "urn:inspection-gateway"
    heartbeat_ms: int = Field(500, ge=50)
    security: OpcuaSecurityConfig = Field(default_factory=OpcuaSecurityConfig)
    streams: dict[str, OpcuaStreamConfig] = Field(
        default_factory=dict, description="default: every stream, no mapped outputs"
    )


class OpcuaClientStreamConfig(StrictModel):
    """Client mode: which node on the PLC's server triggers, and where results go."""

    trigger_node: str = Field(description='NodeId, e.g. "ns=2;s=Line1.Camera.Trigger"')
    trigger_kind: Literal["bool", "counter"] = Field(
        "bool", description="bool: false -> true fires; counter: each new value fires"
    )
    reset_trigger: bool = Field(True, description="bool: write false back once accepted")
    result_nodes: dict[
        Literal["result_counter", "pass", "result_code", "error_code", "json", "trigger_count"],
        str,
    ] = Field(default_factory=dict, description="result field -> NodeId on the PLC")
    output_nodes: dict[str, str] = Field(
        default_factory=dict, description="workflow output (dotted path) -> NodeId on the PLC"
    )
    recipe_node: str | None = Field(
        None, description="NodeId of the PLC's recipe number (UInt/Int), read with each trigger"
    )
    recipe_parameter: str | None = Field(
        None, description="workflow parameter that receives the recipe (when nonzero)"
    )

    @model_validator(mode="after")
    def _recipe_from_somewhere(self) -> OpcuaClientStreamConfig:
        if self.recipe_parameter is not None and self.recipe_node is None:
            raise ValueError(
                "`recipe_parameter` needs `recipe_node` (the PLC node to read it from)"
            )
        return self


class OpcuaClientConfig(StrictModel):
    """The PLC runs the OPC UA server; the gateway subscribes to it and writes results into it."""

    type: Literal["client"]
    enabled: bool = True
    url: str = Field(pattern=r"^opc\.tcp://", description="opc.tcp://host:port/path")
    username: str | None = None
    password: SecretStr | None = None
    sampling_interval_ms: float = Field(10.0, ge=0)
    publishing_interval_ms: float = Field(10.0, ge=0)
    timeout_s: float = Field(4.0, gt=0)
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    streams: dict[str, OpcuaClientStreamConfig] = Field(min_length=1)


OpcuaConfig = Annotated[OpcuaServerConfig | OpcuaClientConfig, Field(discriminator="type")]
