"""OPC UA front end (asyncua): server mode with typed nodes and a Trigger method, client mode."""

from __future__ import annotations

from adapters.opcua.client import OpcuaClientAdapter
from adapters.opcua.server import OpcuaServerAdapter
from gateway.config import GatewayConfig, OpcuaClientConfig, OpcuaStreamConfig
from gateway.dispatcher import Dispatcher

__all__ = ["OpcuaClientAdapter", "OpcuaServerAdapter", "build_opcua_adapter"]


def build_opcua_adapter(
    config: GatewayConfig, dispatcher: Dispatcher
) -> OpcuaServerAdapter | OpcuaClientAdapter:
    opcua = config.opcua
    assert opcua is not None
    if isinstance(opcua, OpcuaClientConfig):
        return OpcuaClientAdapter(opcua, dispatcher)
    streams = dict(opcua.streams) or {
        stream_id: OpcuaStreamConfig() for stream_id in config.streams
    }
    return OpcuaServerAdapter(opcua, dispatcher, streams, config.gateway_id)
