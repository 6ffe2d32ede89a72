"""The `mqtt` section (MQTT v5 front end)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from gateway.config.base import StrictModel, resolve_path


class MqttTlsConfig(StrictModel):
    ca_file: Path | None = Field(None, description="CA that signed the broker's certificate")
    cert_file: Path | None = Field(None, description="client certificate (mutual TLS)")
    key_file: Path | None = None
    insecure: bool = Field(False, description="skip hostname checks (lab only)")

    _resolve = field_validator("ca_file", "cert_file", "key_file")(resolve_path)


class BrokerConfig(StrictModel):
    """Where an MQTT broker is and how to log in (the `mqtt` and `sparkplug` sections)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: MqttTlsConfig | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)
    reconnect_min_s: int = Field(1, ge=1)
    reconnect_max_s: int = Field(30, ge=1)


class FleetConfig(StrictModel):
    """Every gateway announces itself (retained `<prefix>/info`); this one lists the others
    it sees on the broker and triggers them remotely (README "Fleet and SCADA")."""

    enabled: bool = True
    info_topic: str = Field(
        "gateway/+/info", description="where gateways announce themselves (a topic filter)"
    )
    trigger_expiry_s: int = Field(
        60, ge=1, le=86400, description="a remote trigger not taken by then is dropped"
    )


class MqttConfig(BrokerConfig):
    """MQTT v5 front end (paho-mqtt): triggers in, results out, availability and stream state."""

    session_expiry_s: int = Field(
        0,
        ge=0,
        le=2**32 - 1,
        description="keep this gateway's session while it is away: triggers sent meanwhile "
        "(QoS 1, within their Message Expiry) are delivered when it is back; 0 = none",
    )
    fleet: FleetConfig = Field(default_factory=FleetConfig)

    client_id: str | None = Field(None, description="default: <gateway_id>-gateway")
    topic_prefix: str | None = Field(None, description="default: gateway/<gateway_id>")
    trigger_qos: Literal[0, 1, 2] = 1
    result_qos: Literal[0, 1, 2] = 1
    max_payload_bytes: int = Field(65536, ge=64, description="larger triggers are rejected")
    results_kept_offline: int = Field(1000, ge=0, description="results queued while away")
    duplicate_window_s: float = Field(300.0, gt=0, description="repeated trigger_id answered once")
    image_outputs: Literal["inline", "url", "omit"] = Field(
        "inline",
        description="image outputs in results: base64 JPEG, a link to the HTTP API, or named only",
    )
