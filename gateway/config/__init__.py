"""The gateway's configuration: pydantic models, YAML loading, and errors a person can act on.

Every model forbids unknown keys (a typo must not silently fall back to a default), and every
error is reported as `file:line key.path: message`. `${VAR}` and `${VAR:-default}` in any string
value are replaced from the environment, so secrets stay out of the file.

One module per section (`cameras`, `streams`, `workflows`, `http`, `mqtt`, `modbus`, `opcua`,
`runtime`), the whole file in `gateway`, and reading YAML in `loader`; everything is importable
from here.
"""

from gateway.config.base import STREAM_ID_PATTERN, StrictModel
from gateway.config.cameras import (
    GigESourceConfig,
    Region,
    SourceConfig,
    SyntheticSourceConfig,
    UrlSourceConfig,
    UsbSourceConfig,
    VideoFileSourceConfig,
)
from gateway.config.gateway import GatewayConfig
from gateway.config.http import HttpConfig, ImageUrlConfig
from gateway.config.loader import (
    DEFAULT_CONFIG_NAME,
    ConfigError,
    ConfigIssue,
    default_config_path,
    load_config,
    load_default_config,
    parse_config,
)
from gateway.config.modbus import (
    ModbusClientConfig,
    ModbusClientStreamConfig,
    ModbusConfig,
    ModbusServerConfig,
    ModbusStreamConfig,
    RegisterOutput,
    RegisterType,
    WordOrder,
    modbus_streams,
)
from gateway.config.modbus_map import (
    MODBUS_BLOCK_SPAN,
    MODBUS_RESULT_HEADER,
    MODBUS_RESULT_SPAN,
    REGISTER_WIDTH,
)
from gateway.config.mqtt import MqttConfig, MqttTlsConfig
from gateway.config.opcua import (
    OpcuaClientConfig,
    OpcuaClientStreamConfig,
    OpcuaConfig,
    OpcuaOutput,
    OpcuaPolicy,
    OpcuaSecurityConfig,
    OpcuaServerConfig,
    OpcuaStreamConfig,
    OpcuaType,
    OpcuaUser,
)
from gateway.config.runtime import HistoryConfig, LoggingConfig, RetentionConfig, RuntimeConfig
from gateway.config.sparkplug import SparkplugConfig, SparkplugOutput, SparkplugStreamConfig
from gateway.config.streams import (
    CameraTriggerPolicy,
    FramePolicy,
    LatestFramePolicy,
    NextFramePolicy,
    ReconnectConfig,
    StreamConfig,
    StreamMode,
)
from gateway.config.workflows import WorkflowRef, WorkflowSpec

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "MODBUS_BLOCK_SPAN",
    "MODBUS_RESULT_HEADER",
    "MODBUS_RESULT_SPAN",
    "REGISTER_WIDTH",
    "STREAM_ID_PATTERN",
    "CameraTriggerPolicy",
    "ConfigError",
    "ConfigIssue",
    "FramePolicy",
    "GatewayConfig",
    "GigESourceConfig",
    "HistoryConfig",
    "HttpConfig",
    "ImageUrlConfig",
    "LatestFramePolicy",
    "LoggingConfig",
    "ModbusClientConfig",
    "ModbusClientStreamConfig",
    "ModbusConfig",
    "ModbusServerConfig",
    "ModbusStreamConfig",
    "MqttConfig",
    "MqttTlsConfig",
    "NextFramePolicy",
    "OpcuaClientConfig",
    "OpcuaClientStreamConfig",
    "OpcuaConfig",
    "OpcuaOutput",
    "OpcuaPolicy",
    "OpcuaSecurityConfig",
    "OpcuaServerConfig",
    "OpcuaStreamConfig",
    "OpcuaType",
    "OpcuaUser",
    "ReconnectConfig",
    "Region",
    "RegisterOutput",
    "RegisterType",
    "RetentionConfig",
    "RuntimeConfig",
    "SourceConfig",
    "SparkplugConfig",
    "SparkplugOutput",
    "SparkplugStreamConfig",
    "StreamConfig",
    "StreamMode",
    "StrictModel",
    "SyntheticSourceConfig",
    "UrlSourceConfig",
    "UsbSourceConfig",
    "VideoFileSourceConfig",
    "WordOrder",
    "WorkflowRef",
    "WorkflowSpec",
    "default_config_path",
    "load_config",
    "load_default_config",
    "modbus_streams",
    "parse_config",
]
