"""The `workflows` section: named workflows, each a file or inline, with pinned versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from gateway.config.base import StrictModel, resolve_path


class WorkflowSpec(StrictModel):
    """A workflow definition: a file, or the definition inline."""

    path: Path | None = None
    specification: dict[str, Any] | None = None

    _resolve = field_validator("path")(resolve_path)

    @model_validator(mode="after")
    def _exactly_one(self) -> WorkflowSpec:
        if (self.path is None) == (self.specification is None):
            raise ValueError("give exactly one of `path` or `specification`")
        return self


class WorkflowRef(WorkflowSpec):
    """A named workflow: its current definition, and other versions a stream may pin (or
    HTTP run at /workflows/<name>/versions/<v>/run) while a new one is tried."""

    version: str = Field("1", min_length=1, description="the label of the current definition")
    versions: dict[str, WorkflowSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _distinct_label(self) -> WorkflowRef:
        if self.version in self.versions:
            raise ValueError(f"version {self.version!r} is both current and under `versions`")
        return self

    def all_versions(self) -> dict[str, WorkflowSpec]:
        return {self.version: self, **self.versions}
