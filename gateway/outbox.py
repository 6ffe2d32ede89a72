"""Results waiting for a broker (or database) that is away, kept on disk so a gateway restart
loses none.

A bounded FIFO in SQLite (WAL) beside the history: appended while the broker is away, sent in
order once it is back, and each entry removed when the broker acknowledged it. Past `limit`
the oldest entries are dropped and counted. Without a data directory it lives in memory.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
"""


class Outbox:
    def __init__(self, path: Path | None, limit: int) -> None:
        self._limit = limit
        target = ":memory:" if path is None else str(path)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._count = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        """Kept in step with the table: every published result asks, the database need not."""
        self.dropped = 0

    def __len__(self) -> int:
        return self._count

    def append(self, topic: str, payload: bytes) -> None:
        """Keep one message; past the limit the oldest go (counted in `dropped`)."""
        if self._limit <= 0:
            self.dropped += 1
            return
        self._db.execute("INSERT INTO outbox (topic, payload) VALUES (?, ?)", (topic, payload))
        self._count += 1
        excess = self._count - self._limit
        if excess > 0:
            self._db.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)",
                (excess,),
            )
            self._count -= excess
            self.dropped += excess

    def pending(self, after: int = 0, count: int = 500) -> list[tuple[int, str, bytes]]:
        """The oldest waiting messages after id `after`: (id, topic, payload), in order."""
        rows = self._db.execute(
            "SELECT id, topic, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
            (after, count),
        )
        return [(int(row[0]), str(row[1]), bytes(row[2])) for row in rows]

    def remove(self, entry_id: int) -> None:
        """The broker acknowledged it."""
        self._count -= self._db.execute("DELETE FROM outbox WHERE id = ?", (entry_id,)).rowcount

    def remove_through(self, entry_id: int) -> None:
        """Everything up to and including `entry_id` was delivered (a database commit)."""
        self._count -= self._db.execute("DELETE FROM outbox WHERE id <= ?", (entry_id,)).rowcount

    def close(self) -> None:
        self._db.close()
