"""The gateway's configuration: pydantic models, YAML loading, and errors a person can act on.

Every model forbids unknown keys (a typo must not silently fall back to a default), and every
error is reported as `file:line key.path: message`. `${VAR}` and `${VAR:-default}` in any string
value are replaced from the environment, so secrets stay out of the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

DEFAULT_CONFIG_NAME = "gateway.yaml"
STREAM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    """Relative paths are relative to the config file, not to the working directory."""
    base = (info.context or {}).get("base_dir")
    if value.is_absolute() or base is None:
        return value
    return (Path(base) / value).resolve()


# --- camera sources -------------------------------------------------------------------------


class SyntheticSourceConfig(StrictModel):
    """A generated conveyor scene: no camera needed (demo, tests)."""

    type: Literal["synthetic"]
    width: int = Field(640, ge=32, le=7680)
    height: int = Field(480, ge=32, le=4320)
    fps: float = Field(30.0, gt=0, le=1000)
    part_period_frames: int = Field(30, ge=4, description="frames between two parts")
    defect_every: int = Field(4, ge=0, description="every Nth part is defective; 0 = none")


class VideoFileSourceConfig(StrictModel):
    """A recorded video played like a camera, paced at its own frame rate unless `fps` says."""

    type: Literal["video_file"]
    path: Path
    loop: bool = True
    fps: float | None = Field(None, gt=0, le=1000)

    _resolve = field_validator("path")(_resolve_path)


class UrlSourceConfig(StrictModel):
    """An RTSP or HTTP camera, opened by OpenCV (FFmpeg or GStreamer backend)."""

    type: Literal["url"]
    url: str = Field(min_length=1)


class UsbSourceConfig(StrictModel):
    type: Literal["usb"]
    index: int = Field(0, ge=0)
    width: int | None = Field(None, ge=32)
    height: int | None = Field(None, ge=32)
    fps: float | None = Field(None, gt=0)


SourceConfig = Annotated[
    SyntheticSourceConfig | VideoFileSourceConfig | UrlSourceConfig | UsbSourceConfig,
    Field(discriminator="type"),
]


# --- streams ----------------------------------------------------------------------------------


class LatestFramePolicy(StrictModel):
    """The newest frame at the moment the trigger arrived; rejected as stale past `max_age_ms`."""

    type: Literal["latest"]
    max_age_ms: float | None = Field(500.0, gt=0)


class NextFramePolicy(StrictModel):
    """The first frame captured after the trigger arrived: never an image of the previous part."""

    type: Literal["next"]
    timeout_ms: float = Field(1000.0, gt=0)


FramePolicy = Annotated[LatestFramePolicy | NextFramePolicy, Field(discriminator="type")]


class ReconnectConfig(StrictModel):
    """Capped exponential backoff for cameras that go away."""

    initial_s: float = Field(0.2, gt=0)
    max_s: float = Field(10.0, gt=0)
    factor: float = Field(2.0, ge=1)


StreamMode = Literal["triggered", "continuous"]


class StreamConfig(StrictModel):
    source: SourceConfig
    workflow: str = Field(description="name of an entry under `workflows`")
    workflow_version: str | None = Field(None, description="pin a version; default: current")
    mode: StreamMode = "triggered"
    max_fps: float = Field(5.0, gt=0, description="continuous mode: at most this many runs/s")
    frame_policy: FramePolicy = Field(default_factory=lambda: LatestFramePolicy(type="latest"))
    queue_size: int = Field(4, ge=1, le=1000, description="triggers waiting; more -> BUSY")
    trigger_timeout_ms: float = Field(5000.0, gt=0)
    parameters: dict[str, Any] = Field(default_factory=dict)
    frames_kept: int = Field(4, ge=2, le=64, description="recent frames kept for `next`")
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)


class WorkflowSource(StrictModel):
    """A workflow definition: a file, or the definition inline."""

    path: Path | None = None
    specification: dict[str, Any] | None = None

    _resolve = field_validator("path")(_resolve_path)

    @model_validator(mode="after")
    def _exactly_one(self) -> WorkflowSource:
        if (self.path is None) == (self.specification is None):
            raise ValueError("give exactly one of `path` or `specification`")
        return self


class WorkflowRef(WorkflowSource):
    """A named workflow: its current definition, and other versions a stream may pin (or
    HTTP run at /workflows/<name>/versions/<v>/run) while a new one is tried."""

    version: str = Field("1", min_length=1, description="the label of the current definition")
    versions: dict[str, WorkflowSource] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _distinct_label(self) -> WorkflowRef:
        if self.version in self.versions:
            raise ValueError(f"version {self.version!r} is both current and under `versions`")
        return self

    def all_versions(self) -> dict[str, WorkflowSource]:
        return {self.version: self, **self.versions}


# --- services ---------------------------------------------------------------------------------


class HttpConfig(StrictModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535, description="0 picks a free port")
    api_key: SecretStr | None = Field(None, description="when set, Bearer auth on every route")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    jobs_kept: int = Field(1000, ge=1, description="async trigger jobs remembered")
    consume_kept: int = Field(
        100, ge=1, description="continuous results kept per stream until consumed (oldest drop)"
    )
    idempotency_ttl_s: float = Field(300.0, gt=0)


class MqttTlsConfig(StrictModel):
    ca_file: Path | None = Field(None, description="CA that signed the broker's certificate")
    cert_file: Path | None = Field(None, description="client certificate (mutual TLS)")
    key_file: Path | None = None
    insecure: bool = Field(False, description="skip hostname checks (lab only)")

    _resolve = field_validator("ca_file", "cert_file", "key_file")(_resolve_path)


class MqttConfig(StrictModel):
    """MQTT v5 front end (paho-mqtt): triggers in, results out, availability and stream state."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: MqttTlsConfig | None = None
    client_id: str | None = Field(None, description="default: <gateway_id>-gateway")
    topic_prefix: str | None = Field(None, description="default: gateway/<gateway_id>")
    keepalive_s: int = Field(30, ge=5, le=3600)
    trigger_qos: Literal[0, 1, 2] = 1
    result_qos: Literal[0, 1, 2] = 1
    max_payload_bytes: int = Field(65536, ge=64, description="larger triggers are rejected")
    results_kept_offline: int = Field(1000, ge=0, description="results queued while away")
    duplicate_window_s: float = Field(300.0, gt=0, description="repeated trigger_id answered once")
    reconnect_min_s: int = Field(1, ge=1)
    reconnect_max_s: int = Field(30, ge=1)


WordOrder = Literal["ABCD", "CDAB", "BADC", "DCBA"]
RegisterType = Literal["bool", "int16", "uint16", "int32", "uint32", "float32"]
MODBUS_BLOCK_SPAN = 100
"""Addresses each stream owns from its base: results at B+0..49, their holding mirror at B+50.."""
MODBUS_RESULT_HEADER = 14
"""Registers before the first workflow output in a result block (README, Modbus map)."""
MODBUS_RESULT_SPAN = 50
REGISTER_WIDTH: dict[str, int] = {
    "bool": 1,
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "float32": 2,
}


class RegisterOutput(StrictModel):
    """One workflow output mapped into the result block."""

    output: str = Field(
        min_length=1, description="workflow output name; a dotted path reaches into objects"
    )
    address: int | None = Field(
        None,
        ge=MODBUS_RESULT_HEADER,
        lt=MODBUS_RESULT_SPAN,
        description="offset from the stream's base; default: right after the previous one",
    )
    type: RegisterType = "float32"
    scale: float = Field(1.0, description="the register holds value x scale (rounded for ints)")
    word_order: WordOrder | None = Field(None, description="32-bit types; default: the section's")


class ModbusStreamConfig(StrictModel):
    """How one stream appears on Modbus."""

    base: int | None = Field(
        None, ge=0, le=65536 - MODBUS_BLOCK_SPAN, description="default: 100 x stream index"
    )
    buffer: int = Field(
        0, ge=0, le=64, description="results kept until ResultAck; 0 = the newest overwrites"
    )
    recipe_parameter: str | None = Field(
        None, description="workflow parameter that receives the recipe register (when nonzero)"
    )
    outputs: list[RegisterOutput] = Field(default_factory=list)

    def output_addresses(self) -> list[int]:
        """Each output's offset from the base (explicit, or packed after the previous one)."""
        addresses, next_free = [], MODBUS_RESULT_HEADER
        for output in self.outputs:
            address = next_free if output.address is None else output.address
            addresses.append(address)
            next_free = address + REGISTER_WIDTH[output.type]
        return addresses

    @model_validator(mode="after")
    def _outputs_fit(self) -> ModbusStreamConfig:
        taken: dict[int, str] = {}
        for output, address in zip(self.outputs, self.output_addresses(), strict=True):
            for offset in range(address, address + REGISTER_WIDTH[output.type]):
                if offset >= MODBUS_RESULT_SPAN:
                    raise ValueError(
                        f"output {output.output!r} at offset {address} ends past the result "
                        f"block (offsets {MODBUS_RESULT_HEADER}..{MODBUS_RESULT_SPAN - 1})"
                    )
                if offset in taken:
                    raise ValueError(
                        f"outputs {taken[offset]!r} and {output.output!r} overlap at offset "
                        f"{offset}"
                    )
                taken[offset] = output.output
        return self


class ModbusServerConfig(StrictModel):
    """The gateway is a Modbus TCP server, as a smart camera is; the PLC is the client."""

    type: Literal["server"]
    enabled: bool = True
    host: str = Field("127.0.0.1", description="bind address; 0.0.0.0 for every interface")
    port: int = Field(5020, ge=0, le=65535, description="502 is the standard; 0 picks a free port")
    unit_id: int = Field(0, ge=0, le=255, description="0 answers every unit id")
    allow: list[IPvAnyNetwork] = Field(
        default_factory=list, description="client addresses allowed; empty = anyone who reaches it"
    )
    word_order: WordOrder = "ABCD"
    heartbeat_ms: int = Field(500, ge=50, description="Heartbeat bit toggles this often")
    streams: dict[str, ModbusStreamConfig] = Field(
        default_factory=dict, description="default: every stream, default layout"
    )


class ModbusClientStreamConfig(ModbusStreamConfig):
    """Where one stream's handshake lives in the PLC's own address space (client mode)."""

    buffer: int = Field(0, ge=0, le=0, description="client mode shows the newest result")
    control_coils: int | None = Field(
        None, ge=0, le=65532, description="PLC coils: TriggerEnable, Trigger, ResultAck, ClearError"
    )
    control_registers: int | None = Field(
        None, ge=0, le=65532, description="PLC holding registers: TRIG_SEQ, recipe, part id (2)"
    )
    result_registers: int = Field(
        ge=0, le=65536 - MODBUS_RESULT_SPAN, description="PLC holding registers for the result"
    )

    @model_validator(mode="after")
    def _something_to_poll(self) -> ModbusClientStreamConfig:
        if self.control_coils is None and self.control_registers is None:
            raise ValueError("give `control_coils`, `control_registers` or both (what to poll)")
        return self


class ModbusClientConfig(StrictModel):
    """The PLC is the Modbus TCP server; the gateway polls it and writes results into it."""

    type: Literal["client"]
    enabled: bool = True
    host: str
    port: int = Field(502, ge=1, le=65535)
    unit_id: int = Field(1, ge=0, le=255)
    poll_interval_ms: float = Field(10.0, ge=1.0, le=60_000)
    timeout_s: float = Field(1.0, gt=0)
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    word_order: WordOrder = "ABCD"
    heartbeat_ms: int = Field(500, ge=50)
    streams: dict[str, ModbusClientStreamConfig] = Field(min_length=1)


ModbusConfig = Annotated[ModbusServerConfig | ModbusClientConfig, Field(discriminator="type")]


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

    _resolve = field_validator("pki_dir")(_resolve_path)

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
    recipe_parameter: str | None = None


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


class LoggingConfig(StrictModel):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["console", "json"] = "console"


class RetentionConfig(StrictModel):
    max_age_days: float | None = Field(30.0, gt=0, description="older results are deleted")
    max_count: int | None = Field(100_000, ge=1, description="only the newest are kept")


class HistoryConfig(StrictModel):
    """Every result in SQLite (WAL) under `data_dir`, with JPEG images of chosen parts."""

    enabled: bool = True
    data_dir: Path | None = Field(
        None,
        description="results.db and images/; default $GATEWAY_DATA_DIR, else "
        "~/.local/share/inspection-gateway",
    )
    save_images: Literal["failed", "all", "none"] = "failed"
    jpeg_quality: int = Field(85, ge=10, le=100)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    _resolve = field_validator("data_dir")(_resolve_path)

    def directory(self) -> Path:
        if self.data_dir is not None:
            return self.data_dir
        default = os.environ.get("GATEWAY_DATA_DIR") or "~/.local/share/inspection-gateway"
        return Path(default).expanduser()


class RuntimeConfig(StrictModel):
    intra_op_threads: int = Field(1, ge=1, le=64, description="onnxruntime threads per model")
    warmup_runs: int = Field(1, ge=0, le=100)


class GatewayConfig(StrictModel):
    gateway_id: str = Field("gateway", pattern=STREAM_ID_PATTERN)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    modbus: ModbusConfig | None = None
    opcua: OpcuaConfig | None = None
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
        """The streams on Modbus with their base address (server mode: every stream by default)."""
        if self.modbus is None:
            return {}
        order = list(self.streams)
        chosen: dict[str, ModbusStreamConfig] = dict(self.modbus.streams) or {
            stream_id: ModbusStreamConfig() for stream_id in order
        }
        return {
            stream_id: (
                MODBUS_BLOCK_SPAN * order.index(stream_id) if stream.base is None else stream.base,
                stream,
            )
            for stream_id, stream in chosen.items()
            if stream_id in self.streams
        }

    @model_validator(mode="after")
    def _front_end_streams(self) -> GatewayConfig:
        for section, front_end in (("modbus", self.modbus), ("opcua", self.opcua)):
            for stream_id in front_end.streams if front_end is not None else {}:
                if stream_id not in self.streams:
                    raise ValueError(
                        f"{section}.streams.{stream_id}: no stream named {stream_id!r} "
                        f"(known: {', '.join(self.streams)})"
                    )
        return self

    @model_validator(mode="after")
    def _modbus_bases(self) -> GatewayConfig:
        if self.modbus is None or self.modbus.type == "client":
            return self
        owners: list[tuple[int, str]] = []
        for stream_id, (base, _) in self.modbus_streams().items():
            for other_base, other in owners:
                if abs(other_base - base) < MODBUS_BLOCK_SPAN:
                    raise ValueError(
                        f"modbus.streams.{stream_id}.base: {base} overlaps stream {other!r} at "
                        f"{other_base} (each stream needs {MODBUS_BLOCK_SPAN} addresses)"
                    )
            owners.append((base, stream_id))
        return self


# --- loading and error reporting --------------------------------------------------------------


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int | None
    key_path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return (
            f"{where} {self.key_path}: {self.message}"
            if self.key_path
            else f"{where}: {self.message}"
        )


class ConfigError(Exception):
    """One or more problems in a config file, each with file, line and key path."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute_env(
    node: Any, env: Mapping[str, str], path: tuple[str | int, ...], issues: list[tuple[Any, ...]]
) -> Any:
    """Replace `${VAR}` in string scalars in place; record missing variables with their path."""
    if isinstance(node, CommentedMap):
        for key in list(node.keys()):
            node[key] = _substitute_env(node[key], env, (*path, key), issues)
    elif isinstance(node, CommentedSeq):
        for index in range(len(node)):
            node[index] = _substitute_env(node[index], env, (*path, index), issues)
    elif isinstance(node, str) and "${" in node:

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            issues.append((path, f"environment variable {name} is not set"))
            return ""

        return _ENV_REF.sub(replace, node)
    return node


def _locate(root: Any, loc: Sequence[str | int]) -> tuple[int | None, str]:
    """Line (1-based) and dotted key path of the deepest YAML node a pydantic `loc` reaches.

    Locations may contain union tags (`synthetic`) that are not YAML keys: they are skipped.
    """
    node, line, parts = root, None, []
    for position, part in enumerate(loc):
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            parts.append(str(part))
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            parts.append(f"[{part}]")
            node = node[part]
        elif position == len(loc) - 1 and isinstance(node, CommentedMap):
            # A missing key: name it, at the line of its parent.
            line = node.lc.line + 1 if line is None else line
            parts.append(str(part))
        # else: a union tag or validator name, not a YAML key: skip it
    return line, ".".join(parts).replace(".[", "[")


def parse_config(
    text: str, file: str, base_dir: Path | None = None, env: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Validate YAML text; raise `ConfigError` naming every problem by file, line and key path."""
    yaml = YAML(typ="rt")
    try:
        root = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        raise ConfigError(
            [ConfigIssue(file, line, "", f"YAML syntax: {exc.problem or exc.context}")]
        ) from None
    if not isinstance(root, CommentedMap):
        raise ConfigError([ConfigIssue(file, 1, "", "the config must be a YAML mapping")])

    missing: list[tuple[Any, ...]] = []
    _substitute_env(root, os.environ if env is None else env, (), missing)
    issues = [ConfigIssue(file, *_locate(root, path), message) for path, message in missing]
    try:
        config = GatewayConfig.model_validate(
            _plain(root), context={"base_dir": base_dir} if base_dir else None
        )
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            line, key_path = _locate(root, error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            issues.append(ConfigIssue(file, line, key_path, message))
    if issues:
        raise ConfigError(sorted(issues, key=lambda issue: issue.line or 0))
    return config


def _plain(node: Any) -> Any:
    """ruamel's round-trip containers as plain dicts and lists."""
    if isinstance(node, CommentedMap):
        return {key: _plain(value) for key, value in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(item) for item in node]
    return node


def load_config(path: Path, env: Mapping[str, str] | None = None) -> GatewayConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue(str(path), None, "", exc.strerror or str(exc))]) from None
    return parse_config(text, str(path), base_dir=path.resolve().parent, env=env)


def default_config_path() -> Path:
    """The embedded default config: one synthetic camera and the project's own demo model."""
    return Path(str(resources.files("gateway") / "defaults" / DEFAULT_CONFIG_NAME))


def load_default_config(env: Mapping[str, str] | None = None) -> GatewayConfig:
    return load_config(default_config_path(), env=env)
