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


class StreamConfig(StrictModel):
    source: SourceConfig
    workflow: str = Field(description="name of an entry under `workflows`")
    mode: Literal["triggered", "continuous"] = "triggered"
    max_fps: float = Field(5.0, gt=0, description="continuous mode: at most this many runs/s")
    frame_policy: FramePolicy = Field(default_factory=lambda: LatestFramePolicy(type="latest"))
    queue_size: int = Field(4, ge=1, le=1000, description="triggers waiting; more -> BUSY")
    trigger_timeout_ms: float = Field(5000.0, gt=0)
    parameters: dict[str, Any] = Field(default_factory=dict)
    frames_kept: int = Field(4, ge=2, le=64, description="recent frames kept for `next`")
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)


class WorkflowRef(StrictModel):
    """A workflow: a definition file, or the definition inline."""

    path: Path | None = None
    specification: dict[str, Any] | None = None

    _resolve = field_validator("path")(_resolve_path)

    @model_validator(mode="after")
    def _exactly_one(self) -> WorkflowRef:
        if (self.path is None) == (self.specification is None):
            raise ValueError("give exactly one of `path` or `specification`")
        return self


# --- services ---------------------------------------------------------------------------------


class HttpConfig(StrictModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535, description="0 picks a free port")
    api_key: SecretStr | None = Field(None, description="when set, Bearer auth on every route")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    jobs_kept: int = Field(1000, ge=1, description="async trigger jobs remembered")
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


class LoggingConfig(StrictModel):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["console", "json"] = "console"


class RuntimeConfig(StrictModel):
    intra_op_threads: int = Field(1, ge=1, le=64, description="onnxruntime threads per model")
    warmup_runs: int = Field(1, ge=0, le=100)


class GatewayConfig(StrictModel):
    gateway_id: str = Field("gateway", pattern=STREAM_ID_PATTERN)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
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
