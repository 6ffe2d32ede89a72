"""Modbus TCP front end (pymodbus 3.16): server mode, client mode, one handshake for both."""

from __future__ import annotations

from adapters.modbus.client import ModbusClientAdapter
from adapters.modbus.handshake import Handshake, Readiness
from adapters.modbus.server import ModbusServerAdapter
from gateway.config import GatewayConfig, ModbusClientConfig
from gateway.dispatcher import Dispatcher
from gateway.stream import StreamState

__all__ = ["ModbusClientAdapter", "ModbusServerAdapter", "build_modbus_adapter"]


def build_modbus_adapter(
    config: GatewayConfig, dispatcher: Dispatcher
) -> ModbusServerAdapter | ModbusClientAdapter:
    """The adapter the `modbus` section asks for, with a handshake per stream it exposes."""
    modbus = config.modbus
    assert modbus is not None
    client: ModbusClientAdapter | None = None

    def wake() -> None:
        if client is not None:
            client.wake()

    def handshake(stream_id: str) -> Handshake:
        stream = dispatcher.streams[stream_id]
        layout = config.modbus_streams()[stream_id][1]

        def readiness() -> Readiness:
            return Readiness(stream.state is StreamState.RUNNING, stream.capture.connected)

        return Handshake(
            stream_id,
            layout,
            submit=dispatcher.submit,
            readiness=readiness,
            word_order=modbus.word_order,
            heartbeat_s=modbus.heartbeat_ms / 1000.0,
            enable_required=not isinstance(modbus, ModbusClientConfig)
            or modbus.streams[stream_id].control_coils is not None,
            on_change=wake,
        )

    streams = config.modbus_streams()
    if isinstance(modbus, ModbusClientConfig):
        client = ModbusClientAdapter(modbus, {sid: handshake(sid) for sid in streams})
        return client
    return ModbusServerAdapter(
        modbus, {base: handshake(stream_id) for stream_id, (base, _) in streams.items()}
    )
