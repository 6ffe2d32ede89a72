"""Result ids that are never handed out twice, a kill -9 included.

Each stream numbers its results 1, 2, 3, ... across restarts. An id is only handed out from a
block already reserved (and committed) in the history database, so a crash can lose results
but never reuse their ids: after a crash numbering goes on past the reserved block; after a
clean stop the unused rest of the block is given back and numbering goes on without a gap.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Final

BLOCK: Final = 1000
"""Ids reserved per commit: one small write to the database every thousand results."""

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS result_ids (stream TEXT PRIMARY KEY, reserved_upto INTEGER NOT NULL);
"""


class DurableIds:
    def __init__(self, path: Path, block: int = BLOCK) -> None:
        self._path = path
        self._block = block
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._next: dict[str, int] = {}
        self._upto: dict[str, int] = {}

    def open(self, stored_max: dict[str, int]) -> None:
        """Start numbering after both the highest stored id and the highest reserved one."""
        db = sqlite3.connect(self._path, timeout=10, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
        reserved = dict(db.execute("SELECT stream, reserved_upto FROM result_ids").fetchall())
        for stream in {*stored_max, *reserved}:
            last = max(stored_max.get(stream, 0), reserved.get(stream, 0))
            self._next[stream] = last + 1
            self._upto[stream] = last  # nothing reserved for this run yet
        self._db = db

    def next_id(self, stream: str) -> int:
        with self._lock:
            value = self._next.get(stream, 1)
            if value > self._upto.get(stream, 0):
                self._reserve(stream, value + self._block - 1)
            self._next[stream] = value + 1
            return value

    def _reserve(self, stream: str, upto: int) -> None:
        assert self._db is not None, "open() first"
        self._db.execute(
            "INSERT INTO result_ids (stream, reserved_upto) VALUES (?, ?) "
            "ON CONFLICT (stream) DO UPDATE SET reserved_upto = excluded.reserved_upto",
            (stream, upto),
        )
        self._upto[stream] = upto

    def close(self) -> None:
        """A clean stop gives back what was reserved and not used: no gap after a restart."""
        with self._lock:
            if self._db is None:
                return
            for stream, value in self._next.items():
                if stream in self._upto:
                    self._reserve(stream, value - 1)
            self._db.close()
            self._db = None
