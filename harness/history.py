"""The history of a run: one append-only list of operations, Jepsen's vocabulary.

An operation is *invoked* and then completes `ok`, `fail` (it definitely did not happen) or
`info` (the outcome is unknown: a timeout, a dropped socket). Observations that nobody invoked
(a message arriving, a socket closing) are single `ok` or `info` ops. Every op carries `time`,
seconds since the run started on the machine's monotonic clock (shared by every worker process
of the run), and `process`, who did it: a client id (`c12`), a publisher (`p1`), `nemesis`, a
node name.

    f                 type(s)              value keys
    connect           invoke/ok/fail       url                       (node = target)
    disconnect        info                 code, reason, by_client, reconnect_in
    join              invoke/ok/fail/info  topic, join_ref, [response | reason | error]
    leave             invoke/ok            topic, join_ref
    channel_error     info                 topic, join_ref, reason
    channel_close     ok                   topic, join_ref, reason
    recv              ok                   topic, event, id, join_ref, frame_join_ref, state
    recv_stale        ok                   topic, event, id, frame_join_ref, join_ref
    publish           invoke/ok/fail/info  topic, id, seq, [reason | error]
    heartbeat_timeout info                 ref
    fault             info                 phase (start|stop), kind, target, scheduled, ...
    read              invoke/ok/fail       topic, ids                (final reads)

This module is pure: it turns ops into JSON lines and back. Files live in `harness.files`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

from .errors import HarnessError

OpType = Literal["invoke", "ok", "fail", "info"]
OP_TYPES: frozenset[str] = frozenset({"invoke", "ok", "fail", "info"})


class HistoryError(HarnessError):
    """A history line that cannot be read."""


@dataclass(frozen=True, slots=True)
class Op:
    time: float
    process: str
    type: OpType
    f: str
    value: Mapping[str, Any] = field(default_factory=dict)
    node: str | None = None
    index: int = -1

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "index": self.index,
            "time": round(self.time, 6),
            "process": self.process,
            "type": self.type,
            "f": self.f,
            "value": dict(self.value),
        }
        if self.node is not None:
            data["node"] = self.node
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str, *, where: str = "") -> Op:
        try:
            data = json.loads(line)
            op_type = data["type"]
            if op_type not in OP_TYPES:
                raise ValueError(f"type {op_type!r} is not one of invoke/ok/fail/info")
            value = data.get("value", {})
            if not isinstance(value, dict):
                raise ValueError("value must be an object")
            return cls(
                time=float(data["time"]),
                process=str(data["process"]),
                type=cast(OpType, op_type),
                f=str(data["f"]),
                value=value,
                node=data.get("node"),
                index=int(data.get("index", -1)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise HistoryError(f"{where}: not a history op: {exc}") from None


def merge(parts: Iterable[Iterable[Op]]) -> list[Op]:
    """Merge per-process histories into one, ordered by time (stable), indices renumbered."""
    ops = sorted((op for part in parts for op in part), key=lambda op: op.time)
    return [replace(op, index=i) for i, op in enumerate(ops)]


def parse_lines(lines: Iterable[str], *, source: str = "history") -> Iterator[Op]:
    """Read JSONL; a truncated final line (a run killed mid-write) is skipped, not an error."""
    pending: tuple[int, str] | None = None
    for number, line in enumerate(lines, 1):
        if pending is not None:
            yield Op.from_json(pending[1], where=f"{source}:{pending[0]}")
        pending = (number, line) if line.strip() else None
    if pending is not None:
        try:
            yield Op.from_json(pending[1], where=f"{source}:{pending[0]}")
        except HistoryError:
            if pending[1].endswith("\n"):
                raise
