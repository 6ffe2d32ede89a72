"""Modbus TCP front end (pymodbus 3.16): server mode, client mode, one handshake for both."""

from __future__ import annotations

from adapters.modbus.client import ModbusClientAdapter
from adapters.modbus.server import ModbusServerAdapter
from gateway.config import ModbusClientConfig, ModbusConfig
from gateway.core import Core

__all__ = ["ModbusClientAdapter", "ModbusServerAdapter", "build_modbus_adapter"]


def build_modbus_adapter(
    config: ModbusConfig, core: Core
) -> ModbusServerAdapter | ModbusClientAdapter:
    """The adapter the `modbus` section's `type` asks for."""
    if isinstance(config, ModbusClientConfig):
        return ModbusClientAdapter(config, core)
    return ModbusServerAdapter(config, core)
