"""The workflows a running gateway knows: named ones from the config (each with its versions),
and inline definitions sent over HTTP. All compile once and share one model registry."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from gateway.config import WorkflowRef, WorkflowSpec
from gateway.workflow import (
    CompiledWorkflow,
    ModelRegistry,
    WorkflowDefinitionError,
    compile_workflow,
    read_definition,
)


class UnknownWorkflow(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def compile_spec(
    name: str, version: str, spec_ref: WorkflowSpec, models: ModelRegistry, config_dir: Path
) -> CompiledWorkflow:
    if spec_ref.path is not None:
        spec: dict[str, Any] = read_definition(spec_ref.path)
        base_dir, label = spec_ref.path.parent, f"workflow {name!r} v{version} ({spec_ref.path})"
    else:
        spec, base_dir = dict(spec_ref.specification or {}), config_dir
        label = f"workflow {name!r} v{version}"
    return compile_workflow(spec, models=models, base_dir=base_dir, label=label)


class WorkflowLibrary:
    def __init__(
        self,
        models: ModelRegistry,
        named: Mapping[str, Mapping[str, CompiledWorkflow]],
        current: Mapping[str, str],
        base_dir: Path,
        inline_kept: int = 32,
    ) -> None:
        self.models = models
        self._named = {name: dict(versions) for name, versions in named.items()}
        self._current = dict(current)
        self._base_dir = base_dir
        self._inline: OrderedDict[bytes, CompiledWorkflow] = OrderedDict()
        self._inline_kept = inline_kept
        self._lock = threading.Lock()

    @classmethod
    def from_config(
        cls, refs: Mapping[str, WorkflowRef], models: ModelRegistry, config_dir: Path
    ) -> tuple[WorkflowLibrary, list[str]]:
        """The library, and every definition problem found (empty when all compiled)."""
        named: dict[str, dict[str, CompiledWorkflow]] = {}
        problems: list[str] = []
        for name, ref in refs.items():
            named[name] = {}
            for version, spec_ref in ref.all_versions().items():
                try:
                    named[name][version] = compile_spec(name, version, spec_ref, models, config_dir)
                except WorkflowDefinitionError as exc:
                    problems.append(str(exc))
        current = {name: ref.version for name, ref in refs.items()}
        return cls(models, named, current, config_dir), problems

    def get(self, name: str, version: str | None = None) -> CompiledWorkflow:
        versions = self._named.get(name)
        if versions is None:
            known = ", ".join(sorted(self._named)) or "none"
            raise UnknownWorkflow(f"no workflow named {name!r} (known: {known})")
        label = self._current[name] if version is None else version
        workflow = versions.get(label)
        if workflow is None:
            raise UnknownWorkflow(
                f"workflow {name!r} has no version {label!r} (versions: {', '.join(versions)})"
            )
        return workflow

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "current_version": self._current[name],
                "versions": list(versions),
                "inputs": list(versions[self._current[name]].image_inputs),
                "parameters": versions[self._current[name]].parameters,
            }
            for name, versions in self._named.items()
            if self._current[name] in versions
        ]

    def inline(self, specification: Mapping[str, Any]) -> CompiledWorkflow:
        """Compile a definition sent with a request; the last few are kept, keyed by content."""
        key = orjson.dumps(specification, option=orjson.OPT_SORT_KEYS)
        with self._lock:
            cached = self._inline.get(key)
            if cached is not None:
                self._inline.move_to_end(key)
                return cached
        compiled = compile_workflow(
            specification, models=self.models, base_dir=self._base_dir, label="specification"
        )
        with self._lock:
            self._inline[key] = compiled
            while len(self._inline) > self._inline_kept:
                self._inline.popitem(last=False)
        return compiled
