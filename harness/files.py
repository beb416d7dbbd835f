"""The one module that writes run artefacts: the history journal and JSON files.

`HistoryWriter` appends one JSON line per op and flushes at most every `flush_interval`
seconds (and on close), so a run that is killed half-way leaves a readable prefix; the reader
skips a torn last line. Each worker process writes its own part file; `merge_parts` builds the
run's `history.jsonl` from them, ordered by time.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from .history import Op, merge, parse_lines


class HistoryWriter:
    """Append ops to a JSONL file as they happen; assigns indices in write order."""

    def __init__(self, path: Path, *, flush_interval: float = 0.05) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self._count = 0
        self._flush_interval = flush_interval
        self._last_flush = time.monotonic()

    def record(self, op: Op) -> None:
        if op.index < 0:
            op = Op(op.time, op.process, op.type, op.f, op.value, op.node, self._count)
        self._file.write(op.to_json() + "\n")
        self._count += 1
        now = time.monotonic()
        if now - self._last_flush >= self._flush_interval:
            self._file.flush()
            self._last_flush = now

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


def read_history(path: Path) -> list[Op]:
    with path.open(encoding="utf-8") as f:
        return list(parse_lines(f, source=str(path)))


def write_history(path: Path, ops: Iterable[Op]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for op in ops:
            f.write(op.to_json() + "\n")
    tmp.replace(path)


def merge_parts(parts: Iterable[Path], out: Path) -> list[Op]:
    ops = merge(read_history(p) for p in parts if p.exists())
    write_history(out, ops)
    return ops


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def write_report(run_dir: Path) -> Path:
    """Render `report.html` from the run directory's results and history."""
    from .report import render

    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    history = run_dir / "history.jsonl"
    ops = read_history(history) if history.exists() else []
    path = run_dir / "report.html"
    path.write_text(render(results, ops, run_dir), encoding="utf-8")
    return path
