"""Compact delivery rows as columns, for the checkers: `numeric_rows` and `Columns`.

A history's compact rows (`harness.rows`) are numbers and nulls only. Read as JSON, each is a
Python list of eight objects, and every column the checkers need is then a pass over a million
lists (~40 ms each, a dozen of them). Here the lines that hold only numbers are cut out of the
file with numpy and parsed by one `np.loadtxt` call into a (rows, 8) array: a million rows
read in about what orjson's parse of the same lines takes, each column a slice. A row is made a
list only when a witness asks for it. orjson's own parse has no mode that gives arrays, and
the rows' other readers (the line parser, `harness history`) still read them as JSON.

Not imported by the swarm's workers (numpy is not loaded there).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from operator import index as as_index
from typing import NamedTuple, overload

import numpy as np
import numpy.typing as npt

from .rows import NAMED, NODE, PUBLISHER, SEQ, SEQ_LIMIT, WIDTH, Row

JOIN_REF = 7  # a compact row's join_ref: an integer (a counter), else a string or null
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]

_TO_TEXT = bytes.maketrans(b"[]", b"  ")
_EXACT = 2.0**53  # integers below it are exact in a float64


class Split(NamedTuple):
    """A history file cut in two by `numeric_rows`."""

    numeric: Flags  # each line: a compact row of numbers and nulls only
    matrix: Floats  # those rows, (rows, `WIDTH`), null as nan
    others: bytes  # every other line, in order, each with its newline


def numeric_rows(data: bytes) -> Split | None:
    """Which lines of `data` (newline-terminated, none blank) are compact rows of numbers and
    nulls only (`[t,1,2,3,4,5,17,1]`: a bracket at each end, no string, list or object
    inside), those rows as numbers and the other lines as they are; None if such a line does
    not parse as `WIDTH` numbers (then the caller reads the file as JSON and says where).
    `np.loadtxt` parses the rows (C, about twice `np.fromstring`'s speed here) and refuses a
    line with another count of columns or a token that is no number."""
    buf = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.empty_like(ends)
    starts[0], starts[1:] = 0, ends[:-1] + 1
    quoted = np.logical_or.reduceat(buf == 34, starts)  # a string (an object's keys are)
    numeric = (buf[starts] == 91) & (buf[ends - 1] == 93) & ~quoted
    count = int(numeric.sum())
    if not count:
        return Split(numeric, np.zeros((0, WIDTH)), data)
    inside = np.repeat(numeric, ends - starts + 1)
    text = buf[inside].tobytes()
    if text.count(b"[") != count or text.count(b"]") != count or b"{" in text:
        return None  # a list or an object inside a row
    text = text.translate(_TO_TEXT).replace(b"null", b"nan ")
    try:
        values = np.loadtxt(io.BytesIO(text), np.float64, delimiter=",", ndmin=2)
    except ValueError:
        return None
    if values.shape != (count, WIDTH):
        return None
    others = buf[~inside].tobytes() if count < len(numeric) else b""
    return Split(numeric, values, others)


class Columns(Sequence[Row]):
    """Compact delivery rows as columns (`WIDTH` float64s a row, null as nan), each row built as
    a list only when asked for (a witness). A row the numbers cannot hold (an object of its
    value's other keys at its end, a join_ref that is no counter) keeps its list in `odd`, by
    index; its numbers are in the columns too (nan where a string is)."""

    __slots__ = ("_matrix", "_odd")

    def __init__(self, matrix: Floats, odd: Mapping[int, Row] | None = None) -> None:
        self._matrix = matrix
        self._odd: dict[int, Row] = dict(odd or {})

    def __len__(self) -> int:
        return len(self._matrix)

    @overload
    def __getitem__(self, i: int) -> Row: ...
    @overload
    def __getitem__(self, i: slice) -> Columns: ...
    def __getitem__(self, i: int | slice) -> Row | Columns:
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        k = as_index(i)
        k = k + len(self) if k < 0 else k
        odd = self._odd.get(k)
        if odd is not None:
            return odd
        values = self._matrix[k].tolist()
        row: Row = [values[0]]
        row += (None if math.isnan(v) else int(v) for v in values[1:])
        return row

    def column(self, k: int) -> Floats:
        """Position `k` of every row (nan where null)."""
        return self._matrix[:, k]

    def codes(self, k: int) -> Ints:
        """Position `k` of every row as integers (a position that is never null)."""
        return self._matrix[:, k].astype(np.int64)

    def take(self, keep: Iterable[int] | Ints) -> Columns:
        """The rows at the ascending indices `keep`."""
        chosen = np.asarray(keep, np.int64).reshape(-1)
        odd: dict[int, Row] = {}
        if self._odd and len(chosen):
            old = np.array(sorted(self._odd), np.int64)
            at = np.minimum(np.searchsorted(chosen, old), len(chosen) - 1)
            for k, new in zip(old.tolist(), at.tolist(), strict=True):
                if chosen[new] == k:
                    odd[new] = self._odd[k]
        return Columns(self._matrix[chosen], odd)

    def longest(self) -> int:
        """The most elements a row has (`WIDTH`, or one more with an object at its end)."""
        return max(map(len, self._odd.values()), default=WIDTH)

    def closed(self) -> list[int]:
        """The rows whose object says `state: closed` (a delivery after a leave)."""
        return [
            k
            for k, row in sorted(self._odd.items())
            if len(row) > WIDTH and type(row[-1]) is dict and row[-1].get("state") == "closed"
        ]

    def known(self, names: Sequence[str | None]) -> bool:
        """Every row's codes are names of the table (a node may be null), its id a publisher
        it names with a sequence below `SEQ_LIMIT` or none, its join_ref an integer or null,
        and its time a number: on whole columns."""
        m = self._matrix
        if not len(m):
            return True
        named = np.array([name is not None for name in names] + [False], np.bool_)

        def codes_named(column: Floats) -> bool:
            whole = np.isfinite(column) & (column == np.floor(column))
            inside = whole & (column >= 0) & (column < len(names))
            if not inside.all():
                return False
            return bool(named[column.astype(np.int64)].all())

        for k in NAMED:
            column = m[:, k]
            if k == NODE:
                column = column[~np.isnan(column)]
            if not codes_named(column):
                return False
        publisher, seq = m[:, PUBLISHER], m[:, SEQ]
        none = np.isnan(publisher)
        if not np.array_equal(none, np.isnan(seq)) or not codes_named(publisher[~none]):
            return False
        seq = seq[~none]
        if not ((seq == np.floor(seq)) & (seq >= 0) & (seq < SEQ_LIMIT)).all():
            return False
        join_ref = m[:, JOIN_REF]
        join_ref = join_ref[~np.isnan(join_ref)]
        if not ((join_ref == np.floor(join_ref)) & (np.abs(join_ref) < _EXACT)).all():
            return False
        return bool(np.isfinite(m[:, 0]).all())
