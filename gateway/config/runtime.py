"""The `logging`, `runtime` and `history` sections."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from gateway.config.base import StrictModel, resolve_path


class LoggingConfig(StrictModel):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["console", "json"] = "console"


class RetentionConfig(StrictModel):
    max_age_days: float | None = Field(30.0, gt=0, description="older results are deleted")
    max_count: int | None = Field(100_000, ge=1, description="only the newest are kept")


class PostgresHistoryConfig(StrictModel):
    """Results also in PostgreSQL: one table for every gateway of the plant (with gateway_id)."""

    dsn: SecretStr = Field(
        description="libpq connection string or URL, e.g. "
        "postgresql://gateway:${PG_PASSWORD}@db.plant/quality"
    )
    table: str = Field("inspection_results", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    kept_offline: int = Field(
        100_000, ge=0, description="results kept on disk while PostgreSQL is away (oldest go)"
    )
    retry_s: float = Field(2.0, gt=0, le=60, description="wait between attempts to reconnect")
    connect_timeout_s: int = Field(5, ge=1, le=60)


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
    answer_after_store: bool = Field(
        True,
        description="an answer waits for its result's commit (an answered result is a stored "
        "one, a kill -9 included); false answers ~0.25 ms sooner and may lose the last results",
    )

    postgres: PostgresHistoryConfig | None = Field(
        None, description="also write every result to this PostgreSQL database"
    )

    _resolve = field_validator("data_dir")(resolve_path)

    def directory(self) -> Path:
        if self.data_dir is not None:
            return self.data_dir
        default = os.environ.get("GATEWAY_DATA_DIR") or "~/.local/share/inspection-gateway"
        return Path(default).expanduser()


class RuntimeConfig(StrictModel):
    intra_op_threads: int = Field(1, ge=1, le=64, description="onnxruntime threads per model")
    warmup_runs: int = Field(1, ge=0, le=100)
