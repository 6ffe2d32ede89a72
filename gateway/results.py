"""The result history: every result in SQLite (WAL) under the data directory, JPEG images of
failed parts (or all, or none), retention by age and count, queries with filters and paging.

Results arrive from the result bus on the event loop and are written by one writer thread, so
the trigger path never waits on the disk. Each result is committed on its own (a kill -9 loses
at most the result being written), and result ids continue after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson
import structlog

from gateway.config import HistoryConfig
from gateway.model import InspectionResult
from gateway.result_ids import DurableIds
from gateway.result_rows import CSV_COLUMNS, ResultQuery, csv_row, row_entry
from gateway.serialise import encode_jpeg, is_image
from gateway.wire import ImageTransport, result_body

log = structlog.get_logger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    result_id INTEGER NOT NULL,
    trigger_id TEXT NOT NULL,
    source TEXT NOT NULL,
    received_at REAL NOT NULL,
    passed INTEGER,
    error_code INTEGER NOT NULL,
    error_message TEXT,
    part_id INTEGER,
    frame_id INTEGER,
    total_ms REAL,
    record BLOB NOT NULL,
    image TEXT
);
CREATE INDEX IF NOT EXISTS results_stream_time ON results (stream, received_at);
CREATE INDEX IF NOT EXISTS results_time ON results (received_at);
"""
CHECKPOINT_S: Final = 1.0
"""How often the writer folds the WAL into the database when it has nothing else to do."""
BATCH: Final = 200
"""Results committed together at most: one commit for a burst, not one per result."""


class ResultStore:
    def __init__(self, config: HistoryConfig) -> None:
        self.config = config
        self.directory = config.directory()
        self.images_dir = self.directory / "images"
        self.path = self.directory / "results.db"
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=10_000)
        self._writer: threading.Thread | None = None
        self.dropped = 0
        self.written = 0
        self._inline: sqlite3.Connection | None = None
        """The event loop's own connection: rows without an image are committed at once."""
        self.ids = DurableIds(self.path)
        """Result ids per stream, reserved in this database (never reused after a crash)."""

    # --- lifecycle -----------------------------------------------------------------------------

    def open(self) -> None:
        self.images_dir.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)
        self.ids.open(self.last_result_ids())
        self.apply_retention()
        self._inline = self._connect()
        self._inline.execute("PRAGMA wal_autocheckpoint=0")  # the writer thread checkpoints
        self._inline.execute("PRAGMA busy_timeout=0")  # never wait on the loop: queue instead
        self._writer = threading.Thread(target=self._write_loop, name="history", daemon=True)
        self._writer.start()

    def close(self) -> None:
        """Write what is queued, then stop."""
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout=30)
            self._writer = None
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        self.ids.close()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.row_factory = sqlite3.Row
        return db

    # --- writing -------------------------------------------------------------------------------

    def add(self, result: InspectionResult) -> asyncio.Future[None] | None:
        """A result-bus sink: never blocks the loop; a full queue drops (and counts) results.

        Returns a future done once the result is committed: whoever answers the trigger waits
        for it, so an answered result is a stored one even if the gateway is killed next."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # used from plain code (tools, tests): nobody waits
            loop = None
        if loop is not None and not self._wants_image(result) and self._store_now(result):
            return None  # committed already: nothing to wait for
        committed = None if loop is None else loop.create_future()
        kept = result if self._wants_image(result) else result.without_frame()
        try:
            self._queue.put_nowait(_Pending(kept, committed, loop))
        except queue.Full:
            self.dropped += 1
            return None
        return committed if self.config.answer_after_store else None

    def _store_now(self, result: InspectionResult) -> bool:
        """A row without an image, committed on the calling (event loop) thread: one INSERT in
        WAL mode, a fraction of a millisecond, no hop to the writer thread. False when the
        writer has the database (then the row queues behind it) or the write failed."""
        if self._inline is None or self.config.answer_after_store is False:
            return False
        if not self._queue.empty():
            return False  # keep the order: behind what is already queued
        try:
            self._insert(self._inline, result)
        except sqlite3.OperationalError:  # locked by the writer's batch: queue it instead
            return False
        except Exception:
            log.exception("cannot store result", stream=result.stream)
            return False
        self.written += 1
        return True

    def last_result_ids(self) -> dict[str, int]:
        """The highest result_id per stream, so counters continue after a restart."""
        with self._connect() as db:
            rows = db.execute("SELECT stream, MAX(result_id) FROM results GROUP BY stream")
            return {row[0]: int(row[1]) for row in rows}

    def _write_loop(self) -> None:
        db = self._connect()
        last_retention = time.monotonic()
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                if batch:
                    self._write_batch(db, batch)
                with contextlib.suppress(sqlite3.Error):  # rows the loop wrote, into the db
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                if time.monotonic() - last_retention > 60.0:
                    self.apply_retention(db)
                    last_retention = time.monotonic()
        finally:
            db.close()

    def _next_batch(self) -> list[_Pending] | None:
        """What is queued, up to BATCH results, waiting a second at most for the first (then
        the batch is empty: time to checkpoint); None once closed."""
        try:
            first = self._queue.get(timeout=CHECKPOINT_S)
        except queue.Empty:
            return []
        if first is None:
            return None
        batch = [first]
        while len(batch) < BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # close after this batch
                break
            batch.append(item)
        return batch

    def _write_batch(self, db: sqlite3.Connection, batch: list[_Pending]) -> None:
        """One transaction for the batch (group commit), then every waiter is told."""
        try:
            db.execute("BEGIN")
            for pending in batch:
                try:
                    self._insert(db, pending.result)
                    self.written += 1
                except Exception:  # one bad row must not lose the others
                    log.exception("cannot store result", stream=pending.result.stream)
            db.execute("COMMIT")
        except sqlite3.Error:  # a disk problem must not stop the history for good
            log.exception("cannot commit results", count=len(batch))
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        for pending in batch:
            if pending.loop is not None and pending.committed is not None:
                with contextlib.suppress(RuntimeError):  # the loop may be closing
                    pending.loop.call_soon_threadsafe(_release, pending.committed)

    def _wants_image(self, result: InspectionResult) -> bool:
        mode = self.config.save_images
        failed = result.passed is False or result.error is not None
        return mode == "all" or (mode == "failed" and failed)

    def _image_of(self, result: InspectionResult) -> np.ndarray[Any, Any] | None:
        """The first image output (e.g. a visualisation), else the frame the workflow saw."""
        for value in result.outputs.values():
            if is_image(value):
                return value  # type: ignore[no-any-return]
        return result.image if is_image(result.image) else None

    def _insert(self, db: sqlite3.Connection, result: InspectionResult) -> None:
        image_name = self._store_image(result)
        record = result_body(result, ImageTransport.OMIT)  # the JPEG is on disk, not inlined
        db.execute(
            "INSERT INTO results (stream, result_id, trigger_id, source, received_at, passed, "
            "error_code, error_message, part_id, frame_id, total_ms, record, image) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                result.stream,
                result.result_id,
                result.trigger_id,
                result.origin.value,
                result.received_at,
                None if result.passed is None else int(result.passed),
                int(result.error_code),
                None if result.error is None else result.error.message,
                result.part_id,
                result.frame_id,
                result.timings.total_ms,
                orjson.dumps(record),
                image_name,
            ),
        )

    def _store_image(self, result: InspectionResult) -> str | None:
        """The JPEG's path under images/, or None; a failure loses the image, never the row."""
        image = self._image_of(result) if self._wants_image(result) else None
        if image is None:
            return None
        day = time.strftime("%Y-%m-%d", time.gmtime(result.received_at))
        stream, trigger = _file_part(result.stream), _file_part(result.trigger_id)
        name = f"{day}/{stream}-{result.result_id}-{trigger}.jpg"
        try:
            target = self.images_dir / name
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(encode_jpeg(image, self.config.jpeg_quality))
        except (OSError, ValueError):
            log.exception("cannot store the image of a result", stream=result.stream)
            return None
        return name

    # --- retention -----------------------------------------------------------------------------

    def apply_retention(self, db: sqlite3.Connection | None = None) -> int:
        """Delete results (and their images) older than max_age_days or beyond max_count."""
        own = db is None
        conn = self._connect() if db is None else db
        retention = self.config.retention
        doomed: list[tuple[int, str | None]] = []
        try:
            if retention.max_age_days is not None:
                cutoff = time.time() - retention.max_age_days * 86400.0
                doomed += conn.execute(
                    "SELECT id, image FROM results WHERE received_at < ?", (cutoff,)
                ).fetchall()
            if retention.max_count is not None:
                doomed += conn.execute(
                    "SELECT id, image FROM results ORDER BY id DESC LIMIT -1 OFFSET ?",
                    (retention.max_count,),
                ).fetchall()
            ids = sorted({row[0] for row in doomed})
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                conn.execute(
                    f"DELETE FROM results WHERE id IN ({','.join('?' * len(chunk))})", chunk
                )
            for _, image in doomed:
                if image:
                    (self.images_dir / image).unlink(missing_ok=True)
            return len(ids)
        finally:
            if own:
                conn.close()

    # --- reading -------------------------------------------------------------------------------

    def query(self, query: ResultQuery) -> tuple[list[dict[str, Any]], int]:
        """Newest first: (results, total matching)."""
        where, values = query.where()
        with self._connect() as db:
            total = db.execute(f"SELECT COUNT(*) FROM results{where}", values).fetchone()[0]
            rows = db.execute(
                f"SELECT * FROM results{where} ORDER BY id DESC LIMIT ? OFFSET ?",
                [*values, query.limit, query.offset],
            ).fetchall()
        return [row_entry(row) for row in rows], int(total)

    def get(self, entry_id: int) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM results WHERE id = ?", (entry_id,)).fetchone()
        return None if row is None else row_entry(row)

    def image_path(self, entry_id: int) -> Path | None:
        entry = self.get(entry_id)
        if entry is None or entry["image"] is None:
            return None
        path = self.images_dir / entry["image"]
        return path if path.is_file() else None

    def csv_rows(self, query: ResultQuery) -> Iterator[str]:
        """CSV text in chunks, every matching result (no paging), oldest first: one column per
        output (`outputs.<name>`, nested values as JSON), so a spreadsheet can sort by them.
        The outputs' names are gathered in a first pass over the same rows."""
        where, values = query.where()
        sql = f"SELECT * FROM results{where} ORDER BY id"
        with self._connect() as db:
            names: dict[str, None] = {}
            for (record,) in db.execute(sql.replace("SELECT *", "SELECT record", 1), values):
                names.update(dict.fromkeys(orjson.loads(record).get("outputs", {})))
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow([*CSV_COLUMNS, *(f"outputs.{name}" for name in names)])
            for row in db.execute(sql, values):
                writer.writerow(csv_row(row_entry(row), list(names)))
                if buffer.tell() > 64 * 1024:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()


def _file_part(text: str) -> str:
    """Up to 16 safe characters of an id for a file name (no path separators, no NUL)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text[:16]) or "_"


@dataclass(frozen=True, slots=True)
class _Pending:
    result: InspectionResult
    committed: asyncio.Future[None] | None
    loop: asyncio.AbstractEventLoop | None


def _release(committed: asyncio.Future[None]) -> None:
    if not committed.done():
        committed.set_result(None)
