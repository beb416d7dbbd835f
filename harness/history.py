"""The history of a run: one append-only list of operations, Jepsen's vocabulary.

An operation is *invoked* and then completes `ok`, `fail` (it definitely did not happen) or
`info` (the outcome is unknown: a timeout, a dropped socket). Observations that nobody invoked
(a message arriving, a socket closing) are single `ok` or `info` ops. Every op carries `time`,
seconds since the run started on the machine's monotonic clock (shared by every worker process
of the run; `workload_clock` moves 0 to the start of the workload, the scenario's clock), and
`process`, who did it: a client id (`c12`), a publisher (`p1`), `nemesis`,
`runner`, `reader`.

`OP_NAMES` (`harness.vocabulary`) is the whole vocabulary, written once: each name with the types it
takes and the keys of its value. Writers (swarm, nemesis, runner, final reader) and readers
(checkers, report) use these names; `Op.from_json` refuses a name that is not in the table, and a
test holds every op of a real run against it.

On disk (`history.jsonl`) each op is one JSON line, in time order; its index is its position
among the ops. Most ops are objects (`{"time", "process", "type", "f", "value", "node"?}`); a
delivery (`recv` ok, most of any history) is a row, the same op in ~30 bytes instead of ~200,
its strings coded in the file's names table (`harness.rows`: the table's lines are not ops);
a delivery that does not fit the table is a row of strings, as files before the table were:

    [time, process, node, topic, event, id, join_ref]          frame_join_ref null, state joined
    [time, process, node, topic, event, id, join_ref, {...}]   the other value keys that differ

`harness history RUN_DIR` prints every op as a full object (for jq and friends). Lines are
encoded and decoded with orjson (strict JSON, ~1 µs a line); `Encoder` writes them.

This module is pure: ops to JSON lines and back. Files live in `harness.run.rundir`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

import orjson

from .errors import HistoryError
from .rows import Names, compact, expand, extras, is_compact, names_of
from .vocabulary import OP_NAMES as OP_NAMES
from .vocabulary import OP_TYPES as OP_TYPES
from .vocabulary import OpName as OpName
from .vocabulary import OpShape as OpShape
from .vocabulary import OpType as OpType

if TYPE_CHECKING:
    from .columns import Columns, Ints


@dataclass(frozen=True, slots=True, init=False)
class Op:
    """One operation. Frozen; made by its own `__init__`, which sets the slots through their
    descriptors: the generated frozen `__init__` costs 2.2 µs an op, this one 1.1 µs, and a
    run makes one op per delivery (the swarm) and reads a million back (the checkers)."""

    time: float
    process: str
    type: OpType
    f: OpName
    value: Mapping[str, Any]
    node: str | None
    index: int

    def __init__(
        self,
        time: float,
        process: str,
        type: OpType,
        f: OpName,
        value: Mapping[str, Any] | None = None,
        node: str | None = None,
        index: int = -1,
    ) -> None:
        _set_time(self, time)
        _set_process(self, process)
        _set_type(self, type)
        _set_f(self, f)
        _set_value(self, {} if value is None else value)
        _set_node(self, node)
        _set_index(self, index)

    def to_line(self) -> bytes:
        """The op's line with no names table (no newline): a delivery as a row of strings,
        anything else an object. Files are written by an `Encoder`, which codes the rows."""
        value = self.value
        if self.f == "recv" and self.type == "ok":
            row: list[Any] = [
                round(self.time, 6),
                self.process,
                self.node,
                value.get("topic"),
                value.get("event"),
                value.get("id"),
                value.get("join_ref"),
            ]
            extra = extras(value)
            if extra:
                row.append(extra)
            return orjson.dumps(row)
        data: dict[str, Any] = {
            "time": round(self.time, 6),
            "process": self.process,
            "type": self.type,
            "f": self.f,
            "value": value if isinstance(value, dict) else dict(value),
        }
        if self.node is not None:
            data["node"] = self.node
        return orjson.dumps(data)

    def to_json(self) -> str:
        """The op as one JSON object (what `harness history` prints), index included."""
        data: dict[str, Any] = {"index": self.index, "time": round(self.time, 6)}
        data.update(process=self.process, type=self.type, f=self.f, value=dict(self.value))
        if self.node is not None:
            data["node"] = self.node
        return orjson.dumps(data).decode()

    @classmethod
    def from_json(cls, line: str | bytes, *, where: str = "", index: int = -1) -> Op:
        try:
            return cls._decode(line, index)
        except (ValueError, KeyError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
            raise HistoryError(f"{where}: not a history op: {exc}") from None

    @classmethod
    def _decode(cls, line: str | bytes, index: int, shift: float = 0.0) -> Op:
        data = orjson.loads(line)
        if isinstance(data, list):
            return cls._from_row(data, index, shift)
        return cls.from_object(data, index, shift)

    @classmethod
    def from_row(cls, row: Row, index: int, names: Sequence[str | None] = ()) -> Op:
        """The op of a row that `parse_lean` gave (its time already on the reader's clock); a
        compact row's codes are looked up in `names` (the file's table, code -> name)."""
        return cls._from_row(expand(row, names) if is_compact(row) else row, index)

    @classmethod
    def from_object(cls, data: dict[str, Any], index: int, shift: float = 0.0) -> Op:
        """The op of a decoded JSON object (its time shifted by `shift`); ValueError, KeyError
        or TypeError if it is not one."""
        op_type = data["type"]
        if op_type not in OP_TYPES:
            raise ValueError(f"type {op_type!r} is not one of invoke/ok/fail/info")
        name = data["f"]
        if name not in OP_NAMES:
            raise ValueError(f"f {name!r} is not an op of the history (harness.history)")
        value = data.get("value", {})
        if not isinstance(value, dict):
            raise ValueError("value must be an object")
        if shift and name == "fault" and isinstance(value.get("scheduled"), int | float):
            value["scheduled"] = round(value["scheduled"] - shift, 3)
        return cls(
            float(data["time"]) - shift,
            str(data["process"]),
            op_type,
            name,
            value,
            data.get("node"),
            int(data.get("index", index)),
        )

    @classmethod
    def _from_row(cls, row: Row, index: int, shift: float = 0.0) -> Op:
        _check_row(row)
        time, process, node, topic, event, message_id, join_ref = row[:7]
        value = {
            "topic": topic,
            "event": event,
            "id": message_id,
            "join_ref": join_ref,
            "frame_join_ref": None,
            "state": "joined",
        }
        if len(row) == 8:
            value.update(row[7])
        return cls(float(time) - shift, process, "ok", "recv", value, node, index)


Row = list[Any]  # a delivery as on disk: [time, process, node, topic, event, id, join_ref, {}?]
# or compact: [time, process, node, topic, event, publisher, seq, join_ref, {}?] (`harness.rows`)


def _check_row(row: Row) -> None:
    if not 7 <= len(row) <= 8:
        raise ValueError("a delivery row has 7 or 8 elements")
    if not isinstance(row[0], int | float) or not isinstance(row[1], str):
        raise ValueError("a delivery row starts with a time and a process")
    if len(row) == 8 and not isinstance(row[7], dict):
        raise ValueError("the 8th element of a delivery row must be an object")


class Encoder:
    """Ops to the lines of one file: deliveries as compact rows over the file's names table
    (`harness.rows`), a names line before the first row that uses a new name, anything else
    as `Op.to_line` writes it. Each file (each worker's part) has its own."""

    __slots__ = ("names",)

    def __init__(self) -> None:
        self.names = Names()

    def line(self, op: Op) -> bytes:
        """The op's line (no final newline), preceded by a names line when it coded new names."""
        if op.f != "recv" or op.type != "ok":
            return op.to_line()
        row = compact(op.time, op.process, op.node, op.value, self.names)
        line = op.to_line() if row is None else orjson.dumps(row)
        if self.names.new:  # also when the row did not fit after coding some of its names
            return orjson.dumps({"names": self.names.take()}) + b"\n" + line
        return line


_set_time, _set_process, _set_type, _set_f, _set_value, _set_node, _set_index = (
    Op.__dict__[name].__set__ for name in ("time", "process", "type", "f", "value", "node", "index")
)


@dataclass(frozen=True, slots=True)
class Lean:
    """A history read for the checkers (`run.lean.read_lean`): its ops and delivery rows in
    order (`items`), and where the rows are, found once while parsing, so the facts need not
    look at every item again (`checkers._facts`: ~0.3 s in a million). Compact rows read as
    `columns.Columns` are not in `items` (None where each is): iterating a Lean gives them as
    lists in their places."""

    items: list[Op | Row | None]
    rows: list[Row] | Columns | None = None  # None: not known, look
    row_positions: list[int] | Ints | None = None
    extras: bool = True  # some row may have its value's other keys (an object at its end)
    names: list[str | None] | None = None  # the file's table (code -> name): compact rows kept

    def __iter__(self) -> Iterator[Op | Row]:
        if self.rows is None or isinstance(self.rows, list) or self.row_positions is None:
            return iter(cast(list[Op | Row], self.items))
        whole = list(self.items)
        for k, position in enumerate(list(self.row_positions)):
            whole[position] = self.rows[k]
        return iter(cast(list[Op | Row], whole))

    def __len__(self) -> int:
        return len(self.items)


class Recorder(Protocol):
    """Where ops go as they happen (a history file, a worker's part)."""

    def record(self, op: Op) -> None: ...


FaultEdge = Literal["start", "stop", "error"]
_EDGES: dict[str, FaultEdge] = {"invoke": "start", "ok": "stop", "fail": "error"}


def fault_edge(op: Op) -> FaultEdge | None:
    """Which edge of its window a `fault` op is: its start (invoke), stop (ok) or error (fail).
    Histories written before the fault op was invoke/ok said it in a `phase` key."""
    said = op.value.get("phase") if op.type == "info" else _EDGES.get(op.type)
    return said if said in ("start", "stop", "error") else None


def workload_clock(ops: Sequence[Op]) -> list[Op]:
    """The ops on the scenario's clock: time 0 where the workload began (so a fault scheduled
    `at: 3s` is at 3 s, and set-up is negative). The file keeps the run's clock (from set-up);
    checkers and the report read it through this, so witnesses, distress windows and the
    timeline all speak the scenario's time. A history with no workload phase is left as is, and
    so is one already on this clock (its workload begins at 0: `rundir.read_history`)."""
    start = next(
        (op.time for op in ops if op.f == "phase" and op.value.get("phase") == "workload"), None
    )
    if not start:
        return list(ops)
    shifted = []
    for op in ops:
        value = op.value
        scheduled = value.get("scheduled") if op.f == "fault" else None
        if isinstance(scheduled, int | float):
            value = {**value, "scheduled": round(scheduled - start, 3)}
        shifted.append(Op(op.time - start, op.process, op.type, op.f, value, op.node, op.index))
    return shifted


def workload_start(data: bytes) -> float:
    """Where the workload began in a history file's bytes (0.0 if it never did): the time of
    the first `phase` op of phase `workload`, found without parsing the other lines (the
    marker cannot occur inside a JSON string, whose quotes are escaped)."""
    at = data.find(b'"phase":"workload"')
    while at >= 0:
        begin = data.rfind(b"\n", 0, at) + 1
        end = data.find(b"\n", at)
        line = data[begin : end if end >= 0 else len(data)]
        with suppress(ValueError, KeyError, TypeError):
            op = Op._decode(line, -1)
            if op.f == "phase" and op.value.get("phase") == "workload":
                return op.time
        at = data.find(b'"phase":"workload"', at + 1)
    return 0.0


def merge(parts: Iterable[Iterable[Op]]) -> list[Op]:
    """Merge per-process histories into one, ordered by time (stable), indices renumbered."""
    ops = sorted((op for part in parts for op in part), key=lambda op: op.time)
    return [
        Op(op.time, op.process, op.type, op.f, op.value, op.node, i) for i, op in enumerate(ops)
    ]


def parse_lines(
    lines: Iterable[str | bytes], *, source: str = "history", shift: float = 0.0
) -> Iterator[Op]:
    """Read JSONL; a truncated final line (a run killed mid-write) is skipped, not an error.
    An op's index is its position among the ops (names lines are not ops; a line may still
    carry its own index). `shift` is taken off every time (and every fault's `scheduled`):
    `workload_start` gives the one that puts the ops on the workload clock as they are read,
    with no second copy."""
    return cast(Iterator[Op], _parse(lines, source, shift, lean=False))


def parse_lean(
    lines: Iterable[str | bytes], *, source: str = "history", shift: float = 0.0
) -> Iterator[Op | Row]:
    """`parse_lines`, except that a delivery stays a row of strings (`Row`, its time shifted;
    a compact one is expanded) until someone asks for its op (`Op.from_row`): the checkers read
    a million of them and need a handful as ops, for witnesses. Measured with
    `bench/checkers.py`."""
    return _parse(lines, source, shift, lean=True)


def _parse(
    lines: Iterable[str | bytes], source: str, shift: float, *, lean: bool
) -> Iterator[Op | Row]:
    index = 0
    number = 0
    table: dict[int, str] = {}
    pending: str | bytes | None = None

    def decode(line: str | bytes) -> Op | Row | None:
        data = orjson.loads(line)
        if isinstance(data, list):
            row = expand(data, table) if is_compact(data) else data
            if not lean:
                return Op._from_row(row, index, shift)
            _check_row(row)
            row[0] = float(row[0]) - shift
            return row
        entries = names_of(data)
        if entries is not None:
            table.update(entries)
            return None
        return Op.from_object(data, index, shift)

    for line in lines:
        number += 1
        if pending is not None:
            try:
                item = decode(pending)
            except (ValueError, KeyError, TypeError) as exc:
                raise HistoryError(f"{source}:{number - 1}: not a history op: {exc}") from None
            if item is not None:
                yield item
                index += 1
            pending = None
        if len(line) > 1 or line.strip():
            pending = line
    if pending is not None:
        try:
            item = decode(pending)
        except (ValueError, KeyError, TypeError) as exc:
            last = pending
            complete = last.endswith(b"\n") if isinstance(last, bytes) else last.endswith("\n")
            if complete:
                raise HistoryError(f"{source}:{number}: not a history op: {exc}") from None
            return
        if item is not None:
            yield item
