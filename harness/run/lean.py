"""A history file read for the checkers: `read_lean`.

A run's history is a million lines, nine in ten of them deliveries. Read as ops, each line costs
two Python objects and a pass through the model; the checkers need neither for a delivery, only
its columns. So a clean file is read in two calls: its compact rows of numbers (`harness.rows`:
most of it) cut out and parsed by numpy (`harness.columns`), every other line
by one orjson call. Anything unusual (a blank or torn line, a line that is not one op, a code
given two names, a code the table lacks) leaves the file to the line parser
(`history.parse_lean`), which says where the problem is. Rows of strings (a file from before
the names table, an id the harness did not make) are read by orjson as lists, as before.

Measured in `bench/checkers.py`: a million events read and checked against orjson's parse of the
same file alone (the floor of any reader).
"""

from __future__ import annotations

from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from .._gc import paused_gc
from ..columns import Columns, numeric_rows
from ..history import Lean, Op, parse_lean, workload_start
from ..rows import NAMED, NODE, PUBLISHER, SEQ, SEQ_LIMIT, WIDTH, names_of


def read_lean(path: Path) -> Lean:
    """A history file for the checkers: on the workload clock, deliveries left as their rows
    (`history.parse_lean`), compact ones as columns (`harness.columns`)."""
    with paused_gc():
        data = path.read_bytes()
        shift = workload_start(data)
        whole = _parse_whole(data, shift)
        if whole is not None:
            return whole
        lines = data.splitlines(keepends=True)
        return Lean(list(parse_lean(lines, source=str(path), shift=shift)))


def _parse_whole(data: bytes, shift: float) -> Lean | None:
    """The file parsed whole, as `parse_lean` would read it, except that compact rows stay
    compact (with the file's names table); None if anything is unusual."""
    if not data.endswith(b"\n") or b"\n\n" in data:
        return None
    split = numeric_rows(data)
    if split is None:
        return None
    others = _loads(split.others)
    if others is None or len(others) != len(split.numeric) - len(split.matrix):
        return None
    if not len(split.matrix):
        return _lean_of(others, shift)
    if any(type(item) is list and len(item) > 1 and type(item[1]) is str for item in others):
        return _lean_of(_in_order(split.numeric, Columns(split.matrix), others), shift)  # mixed
    return _columns(split.numeric, split.matrix, others, shift)


def _loads(lines: bytes) -> list[Any] | None:
    """The newline-terminated JSON lines as a list, with one orjson call; None if one is not
    JSON."""
    if not lines:
        return []
    array = bytearray(b"[")
    array += lines.replace(b"\n", b",")
    array[-1] = ord("]")
    try:
        items: list[Any] = orjson.loads(array)
    except orjson.JSONDecodeError:
        return None
    return items


def _in_order(numeric: Any, rows: Columns, others: list[Any]) -> list[Any]:
    """Every line's item in file order, the numeric rows as lists (a file that mixes rows of
    strings with compact ones: rare, read as before)."""
    items: list[Any] = []
    row, other = iter(rows), iter(others)
    for is_row in numeric.tolist():
        items.append(next(row) if is_row else next(other))
    return items


def _columns(numeric: Any, matrix: Any, others: list[Any], shift: float) -> Lean | None:
    """The Lean of a file whose rows are all compact: the numeric rows' matrix, the compact rows
    orjson read (an object at the end, a join_ref that is no counter), the ops, the table."""
    other_lines = np.flatnonzero(~numeric)
    table: dict[int, str] = {}
    tables: list[int] = []  # which of `others` are names lines
    for k, item in enumerate(others):
        if type(item) is dict and "names" in item and "f" not in item:
            try:
                entries = names_of(item)
            except ValueError:
                return None
            for code, name in (entries or {}).items():
                if table.setdefault(code, name) != name:
                    return None  # a code given again: read line by line, in order
            tables.append(k)
    names: list[str | None] = [None] * (max(table) + 1 if table else 0)
    for code, name in table.items():
        names[code] = name
    dropped = np.zeros(len(numeric), np.int64)
    dropped[other_lines[tables]] = 1
    index_of = np.arange(len(numeric)) - np.cumsum(dropped)  # each line's item index
    items: list[Any] = [None] * (len(numeric) - len(tables))  # rows: in the columns
    odd: list[list[Any]] = []
    odd_positions: list[int] = []
    skip = set(tables)
    try:
        for k, (item, index) in enumerate(zip(others, index_of[other_lines].tolist(), strict=True)):
            if k in skip:
                continue
            if type(item) is list:
                odd.append(item)
                odd_positions.append(index)
            elif type(item) is dict:
                items[index] = Op.from_object(item, index, shift)
            else:
                return None
    except (ValueError, KeyError, TypeError):
        return None
    positions = index_of[np.flatnonzero(numeric)]
    by_row: dict[int, list[Any]] = {}
    if odd:
        fit = _rows_fit(odd, (WIDTH, WIDTH + 1))
        if fit is None or not _codes_known(odd, names):
            return None
        try:
            extra = np.array([[_number(v) for v in row[:WIDTH]] for row in odd], np.float64)
        except (TypeError, ValueError):
            return None
        order = np.argsort(np.concatenate((positions, odd_positions)), kind="stable")
        matrix = np.concatenate((matrix, extra))[order]
        positions = np.concatenate((positions, odd_positions))[order]
        first_odd = len(order) - len(odd)
        at = np.flatnonzero(order >= first_odd).tolist()
        for where in at:
            row = odd[int(order[where]) - first_odd]
            row[0] -= shift
            by_row[where] = row
    matrix[:, 0] -= shift
    rows = Columns(matrix, by_row)
    if not rows.known(names):
        return None
    return Lean(items, rows, positions, rows.longest() > WIDTH, names)


def _number(value: Any) -> float:
    """A compact row's position as a float: null (or a join_ref string) as nan."""
    if value is None or type(value) is str:
        return float("nan")
    if type(value) not in (int, float):
        raise TypeError("not a number")
    return float(value)


def _lean_of(items: list[Any], shift: float) -> Lean | None:
    """The Lean of a file's items (each line's JSON, in order) with rows as lists: rows of
    strings, compact rows among them kept compact."""
    is_row = np.fromiter(map(list.__instancecheck__, items), np.bool_, len(items))
    table: dict[int, str] = {}
    try:
        tables = [(i, names_of(items[i])) for i in np.flatnonzero(~is_row).tolist()]
    except ValueError:
        return None
    dropped = [i for i, entries in tables if entries is not None]
    for _, entries in tables:
        for code, name in (entries or {}).items():
            if table.setdefault(code, name) != name:
                return None  # a code given again: read line by line, in order
    if dropped:
        keep = np.ones(len(items), np.bool_)
        keep[dropped] = False
        items = list(map(items.__getitem__, np.flatnonzero(keep).tolist()))
        is_row = is_row[keep]
    positions: list[int] = np.flatnonzero(is_row).tolist()
    rows = list(map(items.__getitem__, positions))
    names: list[str | None] = [None] * (max(table) + 1 if table else 0)
    for code, name in table.items():
        names[code] = name
    kinds = set(map(type, map(itemgetter(1), rows)))
    if not kinds <= {str, int}:
        return None
    compact = rows if kinds == {int} else [row for row in rows if type(row[1]) is int]
    strings = rows if kinds == {str} else [row for row in rows if type(row[1]) is str]
    long_strings, long_compact = _rows_fit(strings, (7, 8)), _rows_fit(compact, (8, 9))
    if long_strings is None or long_compact is None:
        return None
    if compact and not _codes_known(compact, names):
        return None
    try:
        if shift:  # a time that is no number fails here (bool is an int, as for `parse_lean`)
            for row in rows:
                row[0] -= shift
        elif not set(map(type, map(itemgetter(0), rows))) <= {float, int, bool}:
            return None
        for index in np.flatnonzero(~is_row).tolist():
            item = items[index]
            if type(item) is not dict:
                return None
            items[index] = Op.from_object(item, index, shift)
    except (ValueError, KeyError, TypeError):
        return None
    extras = long_strings or long_compact
    return Lean(items, rows, positions, extras, names if compact else None)


def _rows_fit(rows: list[Any], lengths: tuple[int, int]) -> bool | None:
    """Whether some row has the longer of the two lengths (the value's other keys, an object at
    its end); None if a row has neither length or its end is no object."""
    found = set(map(len, rows))
    if not found <= set(lengths):
        return None
    if lengths[1] not in found:
        return False
    return all(type(r[-1]) is dict for r in rows if len(r) == lengths[1]) or None


def _codes_known(rows: list[Any], names: list[str | None]) -> bool:
    """Every code of the compact rows is one the table names (a node may be null), and every id
    a publisher it names with a small sequence (`rows.SEQ_LIMIT`), or neither: checked on the
    distinct values, not on each row."""

    def known(code: Any) -> bool:
        return type(code) is int and 0 <= code < len(names) and names[code] is not None

    for k in NAMED:
        codes = set(map(itemgetter(k), rows))
        if k == NODE:
            codes.discard(None)
        if not all(map(known, codes)):
            return False
    for publisher, seq in set(map(itemgetter(PUBLISHER, SEQ), rows)):
        if publisher is None and seq is None:
            continue
        if not (known(publisher) and type(seq) is int and 0 <= seq < SEQ_LIMIT):
            return False
    return True
