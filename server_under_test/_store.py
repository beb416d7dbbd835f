"""The source of truth: room messages in SQLite, shared by every node of a cluster.

Several node processes open the same file, so the database runs in WAL mode with a busy
timeout; `INSERT OR IGNORE` on the primary key (topic, id) makes publishing idempotent across
nodes without any coordination. `synchronous=NORMAL` keeps a committed row across a SIGKILL of
the process (WAL is fsynced at checkpoints, not per commit), which is the failure the harness
injects; it does not promise survival of a power cut.

sqlite3 blocks, so every call runs in a worker thread, one at a time per node.
`sqlite:///:memory:` gives a private, non-durable store (fine for a single node in a test).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from ._errors import StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    id TEXT NOT NULL,
    payload TEXT NOT NULL,
    node TEXT NOT NULL,
    stored_at REAL NOT NULL,
    UNIQUE (topic, id)
);
"""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    topic: str
    id: str
    payload_json: str
    node: str
    seq: int

    def payload(self) -> Any:
        return json.loads(self.payload_json)


def path_of(url: str) -> str:
    """`sqlite:///abs/path.db` -> `/abs/path.db`; `sqlite:///:memory:` -> `:memory:`."""
    prefix = "sqlite://"
    if not url.startswith(prefix):
        raise StoreError(f"store URL must start with sqlite://, got {url!r}")
    path = url[len(prefix) :]
    if path.startswith("/:memory:") or path == ":memory:":
        return ":memory:"
    if not path.startswith("/"):
        raise StoreError(f"store URL needs an absolute path (sqlite:///path), got {url!r}")
    return path


class Store:
    """Messages per room; every method is safe to call from many tasks."""

    def __init__(self, url: str) -> None:
        path = path_of(url)
        if path != ":memory:" and not Path(path).parent.is_dir():
            raise StoreError(f"store directory does not exist: {Path(path).parent}")
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout = 10000")
            if path != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {url}: {exc}") from exc
        self._limiter = trio.CapacityLimiter(1)
        self._path = None if path == ":memory:" else Path(path)

    def sibling(self, name: str) -> Path | None:
        """A file next to the database (None for an in-memory store)."""
        return None if self._path is None else self._path.with_name(f"{self._path.name}.{name}")

    async def append(self, topic: str, message_id: str, payload: Any, node: str) -> bool:
        """Store a message; True if it is new, False if (topic, id) was already there."""
        payload_json = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)

        def insert() -> bool:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO messages (topic, id, payload, node, stored_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (topic, message_id, payload_json, node, time.time()),
            )
            return cursor.rowcount == 1

        return await trio.to_thread.run_sync(insert, limiter=self._limiter)

    async def history(self, topic: str, limit: int | None = None) -> list[StoredMessage]:
        """The room's messages in store order; the last `limit` of them if given."""

        def select() -> list[StoredMessage]:
            rows = self._db.execute(
                "SELECT topic, id, payload, node, seq FROM messages WHERE topic = ?"
                " ORDER BY seq DESC LIMIT ?",
                (topic, -1 if limit is None else limit),
            ).fetchall()
            return [StoredMessage(*row) for row in reversed(rows)]

        return await trio.to_thread.run_sync(select, limiter=self._limiter)

    def close(self) -> None:
        self._db.close()
