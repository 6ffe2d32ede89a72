"""OPC UA front end (asyncua): server mode with typed nodes and a Trigger method, client mode."""

from __future__ import annotations

from adapters.opcua.client import OpcuaClientAdapter
from adapters.opcua.server import OpcuaServerAdapter
from gateway.config import OpcuaClientConfig, OpcuaConfig
from gateway.core import Core

__all__ = ["OpcuaClientAdapter", "OpcuaServerAdapter", "build_opcua_adapter"]


def build_opcua_adapter(config: OpcuaConfig, core: Core) -> OpcuaServerAdapter | OpcuaClientAdapter:
    """The adapter the `opcua` section's `type` asks for."""
    if isinstance(config, OpcuaClientConfig):
        return OpcuaClientAdapter(config, core)
    return OpcuaServerAdapter(config, core)
