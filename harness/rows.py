"""Delivery rows on disk, and the names table that makes them short.

A delivery (`recv` ok) is most of any history: ~90% of the lines of a busy run. Written with its
strings (`[time, "c6467", "n2", "room:0", "new_msg", "rb08508-p1-17", "1"]`) it costs ~63 bytes;
the same row *compact* costs ~30:

    [time, process, node, topic, event, publisher, seq, join_ref]            8 elements
    [time, process, node, topic, event, publisher, seq, join_ref, {...}]     the other value keys

`process`, `node`, `topic`, `event` and `publisher` are codes in the file's names table; the
message id is the publisher's name followed by `seq` in decimal (`rb08508-p1-` + `17`: the ids
the harness makes end in `-<sequence>`; `publisher` and `seq` are both null when the frame had no
id); a `join_ref` that is a decimal counter (phoenix.js's) is written as the integer, any other
string as itself. `node` is null when the client had none.

The table is written into the file as it grows, one line before the first row that uses a new
name, which is not an op (it has no index): `{"names": {"17": "room:3"}}`. A file may hold many
such lines (one writer's growing table, or a merge's table at the top); a code means the name
it was given last before the row. Each writer has its own table (each swarm worker's part), and
`rundir.merge_parts` gives the merged file one.

A delivery that does not fit (an id the harness did not make, a topic that is not a string, a
table already at `LIMIT` names: a server that sends a flood of distinct topics costs a row of
strings each, never a table that grows without bound) is written with its strings as before,
and every reader still reads those rows and the files written before the table existed.

Read for the checkers, the compact rows become columns (`harness.columns`).

Measured in `bench/checkers.py` (bytes per delivery row, and the read and check of a million
events against the orjson floor of the same file).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

LIMIT = 1 << 16  # names in one table; past it, new names are written as strings
ROW_KEYS = frozenset({"topic", "event", "id", "join_ref"})
ROW_DEFAULTS: dict[str, Any] = {"frame_join_ref": None, "state": "joined"}
SEQ_LIMIT = 10**14  # a sequence below it: 14 digits at most (the checkers key it in 47 bits)
_SEQUENCED = re.compile(r"(.*-)(0|[1-9][0-9]{0,13})", re.DOTALL)
_COUNTER = re.compile(r"0|[1-9][0-9]{0,14}")

Row = list[Any]
NAMED = (1, 2, 3, 4)  # a compact row's codes: process, node (may be null), topic, event
NODE = 2
PUBLISHER, SEQ = 5, 6  # the id: the publisher's code and the sequence (both null: no id)
WIDTH = 8  # a compact row's positions before the object of its other keys


class Names:
    """A writer's table: each name's code, and the names coded since the last `take`."""

    __slots__ = ("codes", "new")

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.new: dict[str, int] = {}

    def code(self, name: str) -> int | None:
        code = self.codes.get(name)
        if code is None:
            if len(self.codes) >= LIMIT:
                return None
            code = self.codes[name] = len(self.codes)
            self.new[name] = code
        return code

    def take(self) -> dict[str, str]:
        """The names line's entries for the names coded since the last call (code: name)."""
        entries = {str(code): name for name, code in self.new.items()}
        self.new = {}
        return entries


def compact(
    time: float, process: str, node: str | None, value: Mapping[str, Any], names: Names
) -> Row | None:
    """The compact row of a delivery, or None if it does not fit (then it is written with its
    strings). New names are left in `names.new` for the line that must precede the row."""
    topic, event, message_id = value.get("topic"), value.get("event"), value.get("id")
    if type(topic) is not str or type(event) is not str:
        return None
    publisher: int | None = None
    seq: int | None = None
    if message_id is not None:
        if type(message_id) is not str:
            return None
        sequenced = _SEQUENCED.fullmatch(message_id)
        if sequenced is None:
            return None
        publisher, seq = names.code(sequenced[1]), int(sequenced[2])
        if publisher is None:
            return None
    join_ref = value.get("join_ref")
    if type(join_ref) is str and _COUNTER.fullmatch(join_ref):
        join_ref = int(join_ref)
    elif join_ref is not None and type(join_ref) is not str:
        return None
    who, where = names.code(process), None if node is None else names.code(node)
    channel, kind = names.code(topic), names.code(event)
    if who is None or channel is None or kind is None or (node is not None and where is None):
        return None
    row: Row = [round(time, 6), who, where, channel, kind, publisher, seq, join_ref]
    extra = extras(value)
    if extra:
        row.append(extra)
    return row


def extras(value: Mapping[str, Any]) -> dict[str, Any] | None:
    """A delivery's value keys that its row's positions do not hold and that differ from the
    defaults (`frame_join_ref` null, `state` joined): the object at a row's end, if any."""
    if len(value) == 6 and value.get("frame_join_ref") is None and value.get("state") == "joined":
        return None
    return {
        k: v
        for k, v in value.items()
        if k not in ROW_KEYS and ROW_DEFAULTS.get(k, ROW_DEFAULTS) != v
    }


def is_compact(row: Row) -> bool:
    return type(row[1]) is int


def names_of(item: Any) -> dict[int, str] | None:
    """The entries of a names line (a decoded line that is one), else None; ValueError if it
    looks like one and is not well formed."""
    if type(item) is not dict or "names" not in item or "f" in item:
        return None
    entries = item["names"]
    if len(item) != 1 or type(entries) is not dict:
        raise ValueError('a names line is {"names": {code: name, ...}}')
    table: dict[int, str] = {}
    for code, name in entries.items():
        if not code.isdigit() or type(name) is not str:
            raise ValueError("a names line maps decimal codes to strings")
        table[int(code)] = name
    return table


def expand(row: Row, table: Mapping[int, str] | Sequence[str | None]) -> Row:
    """The row with its strings (`[time, process, node, topic, event, id, join_ref, {}?]`) of a
    compact row; ValueError if it is not one or names a code the table lacks."""
    if not 8 <= len(row) <= 9:
        raise ValueError("a compact delivery row has 8 or 9 elements")
    try:
        time, process, node, topic, event, _, _, join_ref = row[:8]
        out: Row = [time, table[process], None if node is None else table[node]]
        out += (table[topic], table[event])
        out.append(row_id(row, table))
    except (IndexError, KeyError, TypeError):
        raise ValueError("a compact delivery row names a code its table lacks") from None
    if None in out[1:2] + out[3:5]:
        raise ValueError("a compact delivery row names a code its table lacks")
    out.append(str(join_ref) if type(join_ref) is int else join_ref)
    if len(row) == 9:
        if type(row[8]) is not dict:
            raise ValueError("the 9th element of a compact delivery row must be an object")
        out.append(row[8])
    return out


def row_id(row: Row, table: Mapping[int, str] | Sequence[str | None]) -> str | None:
    """A compact row's message id: its publisher's name and its sequence, None when it has
    neither; ValueError when it has one without the other (or a sequence out of range), and the
    table's own error for a code it lacks."""
    publisher, seq = row[PUBLISHER], row[SEQ]
    if publisher is None and seq is None:
        return None
    if type(publisher) is int and type(seq) is int and 0 <= seq < SEQ_LIMIT:
        return f"{table[publisher]}{seq}"
    raise ValueError("a compact row's id is a publisher code and a sequence")
