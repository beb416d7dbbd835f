"""The source of truth: room messages in SQLite, shared by every node of a cluster.

Several node processes open the same file, so the database runs in WAL mode with a busy
timeout; `INSERT OR IGNORE` on the key (topic, id) makes publishing idempotent across nodes
without any coordination. Each new message gets its topic's next position (`pos`: 1, 2, 3, ...
per topic, no gap), taken under SQLite's write lock (`BEGIN IMMEDIATE`), so every node agrees on
it: broadcasts carry it as `seq`, and a client that rejoins with `since` is caught up from it
(`_catchup`). `synchronous=NORMAL` keeps a committed row across a SIGKILL of
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
    pos INTEGER,
    UNIQUE (topic, id)
);
"""
_POSITIONS = "CREATE UNIQUE INDEX IF NOT EXISTS messages_pos ON messages (topic, pos)"
_COLUMNS = "topic, id, payload, node, seq, pos"


@dataclass(frozen=True, slots=True)
class StoredMessage:
    topic: str
    id: str
    payload_json: str
    node: str
    seq: int
    pos: int | None  # the message's position in its topic (None in a store older than it)

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
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(messages)")}
            if "pos" not in columns:  # a store made before positions
                self._db.execute("ALTER TABLE messages ADD COLUMN pos INTEGER")
            self._db.execute(_POSITIONS)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {url}: {exc}") from exc
        self._limiter = trio.CapacityLimiter(1)
        self._path = None if path == ":memory:" else Path(path)

    def sibling(self, name: str) -> Path | None:
        """A file next to the database (None for an in-memory store)."""
        return None if self._path is None else self._path.with_name(f"{self._path.name}.{name}")

    async def append(self, topic: str, message_id: str, payload: Any, node: str) -> int | None:
        """Store a message: its position in the topic if it is new, None if (topic, id) was
        already there."""
        payload_json = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)

        def insert() -> int | None:
            self._db.execute("BEGIN IMMEDIATE")  # the write lock first: MAX(pos) is current
            try:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO messages (topic, id, payload, node, stored_at, pos)"
                    " SELECT ?, ?, ?, ?, ?, COALESCE(MAX(pos), 0) + 1 FROM messages"
                    " WHERE topic = ?",
                    (topic, message_id, payload_json, node, time.time(), topic),
                )
                new = cursor.rowcount == 1
                pos = (
                    self._db.execute(
                        "SELECT pos FROM messages WHERE seq = ?", (cursor.lastrowid,)
                    ).fetchone()[0]
                    if new
                    else None
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return int(pos) if pos is not None else None

        return await trio.to_thread.run_sync(insert, limiter=self._limiter)

    async def history(self, topic: str, limit: int | None = None) -> list[StoredMessage]:
        """The room's messages in store order; the last `limit` of them if given."""

        def select() -> list[StoredMessage]:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE topic = ? ORDER BY seq DESC LIMIT ?",
                (topic, -1 if limit is None else limit),
            ).fetchall()
            return [StoredMessage(*row) for row in reversed(rows)]

        return await trio.to_thread.run_sync(select, limiter=self._limiter)

    async def after(
        self, topic: str, pos: int, limit: int | None = None, *, newest: bool = False
    ) -> list[StoredMessage]:
        """The topic's messages at positions after `pos`, in position order: the first `limit`
        of them, or with `newest` the last `limit`."""

        def select() -> list[StoredMessage]:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE topic = ? AND pos > ?"
                f" ORDER BY pos {'DESC' if newest else 'ASC'} LIMIT ?",
                (topic, pos, -1 if limit is None else limit),
            ).fetchall()
            found = [StoredMessage(*row) for row in rows]
            return found[::-1] if newest else found

        return await trio.to_thread.run_sync(select, limiter=self._limiter)

    async def last_pos(self, topic: str) -> int:
        """The topic's last position (0 when it has no message)."""

        def select() -> int:
            (pos,) = self._db.execute(
                "SELECT COALESCE(MAX(pos), 0) FROM messages WHERE topic = ?", (topic,)
            ).fetchone()
            return int(pos)

        return await trio.to_thread.run_sync(select, limiter=self._limiter)

    def close(self) -> None:
        self._db.close()
