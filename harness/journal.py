"""The history as it is written: `HistoryWriter` appends one JSON line per op, in batches
(`history.Encoder`: deliveries as compact rows over the file's names table).

Lines gather in memory and go to the file at most every `flush_interval` seconds (and on close),
one write per batch, so a run that is killed half-way leaves a readable prefix (the reader
skips a torn last line). An op whose value cannot be written (a foreign value the recorder did
not bound) is written bounded (`harness.foreign`), never lost and never an exception. Apart from
`harness.run.rundir` (which renders the report and loads numpy), so a swarm worker loads only this.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO

from .foreign import bounded
from .history import Encoder, Op


class HistoryWriter:
    """Append ops to a JSONL file as they happen, in batches: lines gather in memory and go to
    the file at most every `flush_interval` seconds (and on close), one write per batch.
    `HistoryWriter.over(fd)` writes to an open descriptor instead (a swarm worker's stdout,
    streamed back over its SSH channel), and `say(line)` puts a line of another kind between
    two batches, never inside one."""

    def __init__(
        self, path: Path | None, *, flush_interval: float = 0.05, fd: int | None = None
    ) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[bytes] = path.open("ab", buffering=0)
        else:
            assert fd is not None
            self._file = open(fd, "wb", buffering=0, closefd=False)  # noqa: SIM115
        self._batch: list[bytes] = []
        self._encoder = Encoder()
        self._flush_interval = flush_interval
        self._last_flush = time.monotonic()

    @classmethod
    def over(cls, fd: int, *, flush_interval: float = 0.05) -> HistoryWriter:
        """A writer to descriptor `fd` (left open when the writer closes)."""
        return cls(None, flush_interval=flush_interval, fd=fd)

    def say(self, line: bytes) -> None:
        """Write `line` (with its newline) now, after what is gathered so far."""
        self.flush()
        self._write(line)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._file.closed:  # a pipe may take part of a write
            written = self._file.write(view)
            view = view[written or 0 :]

    @property
    def closed(self) -> bool:
        return self._file.closed

    def record(self, op: Op) -> None:
        try:
            line = self._encoder.line(op)
        except (TypeError, ValueError):  # a foreign value the recorder did not bound
            bare = Op(op.time, op.process, op.type, op.f, bounded(op.value), op.node)
            line = self._encoder.line(bare)
        self._batch.append(line)
        now = time.monotonic()
        if now - self._last_flush >= self._flush_interval:
            self.flush()
            self._last_flush = now

    def flush(self) -> None:
        if self._batch and not self._file.closed:
            self._batch.append(b"")
            self._write(b"\n".join(self._batch))
            self._batch = []

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            if self.path is not None:
                os.fsync(self._file.fileno())
            self._file.close()
