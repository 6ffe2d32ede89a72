"""How stored results read back: the query (filters, paging), a row as a JSON entry, and as a
CSV row that a spreadsheet cannot run (formula injection)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Final

import orjson

from gateway.model import iso_utc

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = (
    "id", "stream", "result_id", "trigger_id", "source", "received_at", "pass",
    "error_code", "error_message", "part_id", "frame_id", "total_ms", "image",
)  # fmt: skip
"""The fixed columns; one `outputs.<name>` column per output follows."""


@dataclass(frozen=True, slots=True)
class ResultQuery:
    stream: str | None = None
    passed: bool | None = None
    source: str | None = None
    errors_only: bool = False
    since: float | None = None
    until: float | None = None
    limit: int = 100
    offset: int = 0

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        values: list[Any] = []
        for column, value in (("stream", self.stream), ("source", self.source)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        if self.passed is not None:
            clauses.append("passed = ?")
            values.append(int(self.passed))
        if self.errors_only:
            clauses.append("error_code != 0")
        if self.since is not None:
            clauses.append("received_at >= ?")
            values.append(self.since)
        if self.until is not None:
            clauses.append("received_at < ?")
            values.append(self.until)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", values


def row_entry(row: sqlite3.Row) -> dict[str, Any]:
    record = orjson.loads(row["record"])
    return {
        "id": row["id"],
        "stream": row["stream"],
        "result_id": row["result_id"],
        "trigger_id": row["trigger_id"],
        "source": row["source"],
        "received_at": iso_utc(row["received_at"]),
        "pass": None if row["passed"] is None else bool(row["passed"]),
        "error_code": row["error_code"],
        "error_message": row["error_message"],
        "part_id": row["part_id"],
        "frame_id": row["frame_id"],
        "total_ms": row["total_ms"],
        "outputs": record.get("outputs", {}),
        "timings": record.get("timings"),
        "image": row["image"],
    }


def csv_cell(value: Any) -> Any:
    """A CSV cell; text a spreadsheet would run as a formula (=, +, -, @, tab, CR first) is
    prefixed with an apostrophe (OWASP's advice against CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_row(entry: dict[str, Any], outputs: list[str]) -> list[Any]:
    """An entry (`row_entry`) as the cells under CSV_COLUMNS, then one per name in `outputs`
    (empty where this result has no such output; lists and mappings as JSON)."""
    values = entry["outputs"]
    return [
        entry["id"], csv_cell(entry["stream"]), entry["result_id"], csv_cell(entry["trigger_id"]),
        entry["source"], entry["received_at"], csv_cell(entry["pass"]), entry["error_code"],
        csv_cell(entry["error_message"]), csv_cell(entry["part_id"]), csv_cell(entry["frame_id"]),
        csv_cell(entry["total_ms"]), csv_cell(entry["image"]),
        *(csv_cell(_flat(values[name]) if name in values else None) for name in outputs),
    ]  # fmt: skip


def _flat(value: Any) -> Any:
    return orjson.dumps(value).decode() if isinstance(value, dict | list) else value
