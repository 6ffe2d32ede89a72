"""The plant-wide history: every result also in PostgreSQL, one table shared by all gateways.

Results go first into a local outbox (SQLite beside the history, the same store-and-forward
file the MQTT front end keeps for its broker, `gateway.outbox`), and one writer thread moves
them into PostgreSQL in batches, each batch one transaction. While the database is away they
wait in the outbox (a gateway restart keeps them) and go in order once it is back. A row is
unique by (gateway_id, stream, result_id) and inserted with ON CONFLICT DO NOTHING, so a batch
that committed but whose outbox entries were not yet removed (a crash in between) is not
written twice: every result arrives exactly once. Images stay in each gateway's local history.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Final

import orjson
import psycopg
import structlog

from gateway.config.runtime import PostgresHistoryConfig
from gateway.model import InspectionResult
from gateway.outbox import Outbox
from gateway.redact import redact
from gateway.wire import ImageTransport, encode_result

log = structlog.get_logger(__name__)

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS {table} (
    id BIGSERIAL PRIMARY KEY,
    gateway_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    result_id BIGINT NOT NULL,
    trigger_id TEXT NOT NULL,
    source TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    passed BOOLEAN,
    error_code INTEGER NOT NULL,
    error_message TEXT,
    part_id BIGINT,
    frame_id BIGINT,
    total_ms DOUBLE PRECISION,
    record JSONB NOT NULL,
    UNIQUE (gateway_id, stream, result_id)
);
CREATE INDEX IF NOT EXISTS {table}_time ON {table} (received_at);
"""
COLUMNS: Final = (
    "gateway_id, stream, result_id, trigger_id, source, received_at, passed, error_code, "
    "error_message, part_id, frame_id, total_ms, record"
)
BATCH: Final = 500


class PostgresHistory:
    """A result-bus sink; `queued` results wait locally for the database."""

    def __init__(self, config: PostgresHistoryConfig, gateway_id: str, outbox: Path | None):
        self.config = config
        self._gateway_id = gateway_id
        self._outbox_path = outbox
        self._outbox: Outbox | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False
        self.written = 0
        self.refused = 0
        self._insert = (
            f"INSERT INTO {config.table} ({COLUMNS}) VALUES "
            "(%s, %s, %s, %s, %s, to_timestamp(%s), %s, %s, %s, %s, %s, %s, %s::jsonb) "
            "ON CONFLICT (gateway_id, stream, result_id) DO NOTHING"
        )

    @property
    def queued(self) -> int:
        with self._lock:
            return 0 if self._outbox is None else len(self._outbox)

    @property
    def dropped(self) -> int:
        with self._lock:
            return 0 if self._outbox is None else self._outbox.dropped

    def open(self) -> None:
        self._outbox = Outbox(self._outbox_path, self.config.kept_offline)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="postgres-history", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        with self._lock:
            if self._outbox is not None:
                self._outbox.close()
                self._outbox = None

    def add(self, result: InspectionResult) -> None:
        """Bus sink (on the event loop): one local INSERT, the database is the thread's."""
        row = self._row(result)
        with self._lock:
            if self._outbox is None:
                return
            self._outbox.append(result.stream, orjson.dumps(row))
        self._wake.set()

    def _row(self, result: InspectionResult) -> list[Any]:
        record = encode_result(result, ImageTransport.OMIT)  # the body the other sinks share
        return [
            self._gateway_id,
            result.stream,
            result.result_id,
            result.trigger_id,
            result.origin.value,
            result.received_at,
            result.passed,
            int(result.error_code),
            None if result.error is None else result.error.message,
            result.part_id,
            result.frame_id,
            result.timings.total_ms,
            record.decode(),
        ]

    # --- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        away_since_logged = False
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self.config.dsn.get_secret_value(),
                    connect_timeout=self.config.connect_timeout_s,
                ) as db:
                    self._create_table(db)
                    self.connected = True
                    if away_since_logged:
                        log.info("PostgreSQL back; sending the results kept", queued=self.queued)
                    away_since_logged = False
                    self._drain(db)
            except psycopg.OperationalError as exc:
                if not away_since_logged:
                    log.warning(
                        "PostgreSQL not reachable; results kept locally",
                        reason=redact(str(exc).strip().splitlines()[0] if str(exc) else "error"),
                        retry_in_s=self.config.retry_s,
                    )
                    away_since_logged = True
            self.connected = False
            self._stop.wait(self.config.retry_s)

    def _create_table(self, db: psycopg.Connection[Any]) -> None:
        try:
            db.execute(SCHEMA.format(table=self.config.table).encode())
            db.commit()
        except psycopg.errors.UniqueViolation:  # another gateway created it at the same moment
            db.rollback()

    def _drain(self, db: psycopg.Connection[Any]) -> None:
        """Move batches until stopped; returns only by raising when the database goes away."""
        while not self._stop.is_set():
            with self._lock:
                batch = [] if self._outbox is None else self._outbox.pending(0, BATCH)
            if not batch:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            rows = [orjson.loads(row) for _, _, row in batch]
            try:
                with db.cursor() as cursor:
                    cursor.executemany(self._insert, rows)
                db.commit()
            except psycopg.OperationalError:
                raise  # the database went away: the batch stays in the outbox
            except psycopg.Error:
                db.rollback()
                self._one_by_one(db, rows)
            with self._lock:
                if self._outbox is not None:
                    self._outbox.remove_through(batch[-1][0])
            self.written += len(batch)

    def _one_by_one(self, db: psycopg.Connection[Any], rows: list[list[Any]]) -> None:
        """A batch the database refused: each row on its own; a refused row is logged and
        counted (`refused`), never retried forever in front of the others."""
        for row in rows:
            try:
                db.execute(self._insert, row)
                db.commit()
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                db.rollback()
                self.refused += 1
                log.error("PostgreSQL refused a result", stream=row[1], reason=str(exc))
