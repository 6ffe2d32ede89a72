"""Loading YAML into a `GatewayConfig`: `${VAR}` from the environment, and every problem
reported as `file:line key.path: message`."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from gateway.config.gateway import GatewayConfig

DEFAULT_CONFIG_NAME: Final = "gateway.yaml"


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
