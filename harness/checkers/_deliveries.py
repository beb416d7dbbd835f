"""The deliveries of a history as columns: numpy arrays over small integer codes.

Every safety and timing check walks every delivery, and a history holds a million of them. As
one Python object each, grouped in dicts, reading and checking a million events took ~15 s on a
2-core box (`bench/checkers.py`); even a minimal pure-Python pass (one dict operation per
delivery and per check) took 7.8 s there: ~0.5 µs per dict operation is the floor, and it is
paid by each check. So each client, topic and message id gets a dense integer code once (one
dict lookup per string, `Codes`), and grouping by (client, topic, message), the joins with the
publishes and with the memberships, and the order scan are sorts and gathers in numpy, once.

A message code below `Deliveries.published` is the index of its publish in `Facts.publishes`;
the ids that were delivered but never published get the codes after those. Witnesses still come
from the ops (`Deliveries.op`), made from their rows only when a check needs one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import count, islice
from operator import itemgetter
from typing import Any, NamedTuple, overload

import numpy as np
import numpy.typing as npt

from ..columns import Columns
from ..foreign import MAX_ID, id_text
from ..history import Op, Row
from ..rows import PUBLISHER, SEQ, row_id

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]

_time, _client, _topic, _id = (itemgetter(i) for i in (0, 1, 3, 5))
KEY_LIMIT = 2**62  # keys made of codes stay below it (int64)


class Codes:
    """Dense integer codes for names, in order of first sight (`of` a column, `code` of one)."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._index: defaultdict[str, int] = defaultdict(count().__next__)
        self.of(list(names))

    def __len__(self) -> int:
        return len(self._index)

    def code(self, name: str) -> int:
        return self._index[name]

    def names(self, since: int = 0) -> list[Any]:
        """The names coded, from code `since` on."""
        return list(islice(self._index, since, None))

    def get(self, name: str) -> int | None:
        """The name's code, if it has one (none is made)."""
        return self._index.get(name)

    def of(self, names: Sequence[str]) -> Ints:
        return np.fromiter(map(self._index.__getitem__, names), np.int64, len(names))


class Named(Sequence[str]):
    """A column of names kept as codes (`names[codes[i]]`), named when read: a million
    deliveries' clients, topics or ids as strings cost ~0.1 s each to build, and the checks
    read a handful of them (witnesses)."""

    __slots__ = ("codes", "names")

    def __init__(self, codes: Ints, names: Sequence[str]) -> None:
        self.codes, self.names = codes, names

    def __len__(self) -> int:
        return len(self.codes)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return list(map(self.names.__getitem__, self.codes[i].tolist()))
        return self.names[int(self.codes[i])]

    def __iter__(self) -> Iterator[str]:
        return map(self.names.__getitem__, self.codes.tolist())


class Delivery(NamedTuple):
    """One delivery of the app's message event, as the report draws it."""

    time: float
    client: str
    topic: str
    id: str


@dataclass(eq=False, slots=True)
class Deliveries:
    """Columns, one entry per delivery in history order; `first` and `repeat` group them by
    (client, topic, message id)."""

    times: Floats = field(default_factory=lambda: np.zeros(0))
    clients: Sequence[str] = field(default_factory=list)
    topics: Sequence[str] = field(default_factory=list)
    ids: Sequence[str] = field(default_factory=list)
    client: Ints = field(default_factory=lambda: np.zeros(0, np.int64))
    topic: Ints = field(default_factory=lambda: np.zeros(0, np.int64))
    message: Ints = field(default_factory=lambda: np.zeros(0, np.int64))
    published: int = 0  # message codes below this were published
    closed: Flags = field(default_factory=lambda: np.zeros(0, np.bool_))  # after a leave
    pair: Ints = field(default_factory=lambda: np.zeros(0, np.int64))  # (client, topic)
    pairs: Ints | None = None  # pair -> client * span + topic when pairs are dense, else None
    span: int = 0  # the topic codes there were when the pairs were made
    key: Ints = field(default_factory=lambda: np.zeros(0, np.int64))  # (client, topic, message)
    first: Ints = field(default_factory=lambda: np.zeros(0, np.int64))  # ascending indices
    repeat: Flags = field(default_factory=lambda: np.zeros(0, np.bool_))
    sources: Sequence[Op | Row] = ()
    positions: Sequence[int] | Ints = ()
    messages: int = 0  # the message codes there were when the keys were made
    names: Sequence[str | None] = ()  # the file's table, for compact rows among `sources`
    _firsts: Ints | None = None  # the keys of first deliveries, sorted (`received`)
    _first_times: Floats | None = None  # their times, in the same order

    def __len__(self) -> int:
        return len(self.clients)

    def __iter__(self) -> Iterator[Delivery]:
        return map(Delivery, self.times.tolist(), self.clients, self.topics, self.ids)

    def op(self, i: int) -> Op:
        """The op of delivery `i` (made from its row when it was read lean: for witnesses)."""
        source = self.sources[i]
        if isinstance(source, Op):
            return source
        return Op.from_row(source, int(self.positions[i]), self.names)

    def received(self, client: str, topic: str, codes: tuple[Codes, Codes]) -> Ints:
        """The codes of the messages `client` received on `topic`, ascending."""
        c, t = codes[0].get(client), codes[1].get(topic)
        if c is None or t is None or t >= self.span or not len(self):
            return np.zeros(0, np.int64)
        pair = c * self.span + t
        if self.pairs is not None:
            pair = int(np.searchsorted(self.pairs, pair))
            if pair >= len(self.pairs) or self.pairs[pair] != c * self.span + t:
                return np.zeros(0, np.int64)
        if self._firsts is None:
            self._firsts = np.sort(self.key[self.first])
        firsts, width = self._firsts, self.messages
        low, high = np.searchsorted(firsts, (pair * width, (pair + 1) * width))
        return firsts[low:high] - pair * width

    def first_times(
        self, client: str, topic: str, codes: tuple[Codes, Codes]
    ) -> tuple[Ints, Floats]:
        """The codes of the messages `client` received on `topic`, ascending, and when each
        first arrived."""
        got = self.received(client, topic, codes)
        if not len(got):
            return got, np.zeros(0)
        if self._first_times is None:
            order = np.argsort(self.key[self.first], kind="stable")
            self._first_times = self.times[self.first][order]
        assert self._firsts is not None  # made by `received`
        c, t = codes[0].get(client), codes[1].get(topic)
        assert c is not None
        assert t is not None
        key = c * self.span + t
        if self.pairs is not None:
            key = int(np.searchsorted(self.pairs, key))
        at = np.searchsorted(self._firsts, key * self.messages + got)
        return got, self._first_times[at]

    def repeats(self) -> list[list[int]]:
        """Each key delivered more than once: the indices of all its deliveries, in order; the
        keys in the order their second delivery came."""
        if not self.repeat.any():
            return []
        _, inverse, counts = np.unique(self.key, return_inverse=True, return_counts=True)
        groups: dict[int, list[int]] = {}
        for i in np.flatnonzero(counts[inverse] > 1).tolist():
            groups.setdefault(int(inverse[i]), []).append(i)
        return sorted(groups.values(), key=lambda g: g[1])


def deliveries_of(
    records: Sequence[Sequence[Any]] | Columns,
    sources: Sequence[Op | Row],
    positions: Sequence[int] | Ints,
    closed: Iterable[int],
    message_codes: Codes,
    published: int,
    client_codes: Codes,
    topic_codes: Codes,
    names: Sequence[str | None] = (),
) -> Deliveries:
    """The columns of the deliveries whose records (rows, or row-shaped tuples of ops) are given:
    [time, client, node, topic, event, id, ...]; or, with the file's `names`, all compact rows
    (`harness.rows`: [time, client, node, topic, event, publisher, seq, ...], codes), coded
    through the table once per distinct name instead of once per row."""
    n = len(records)
    if not n:
        return Deliveries()
    clients: Sequence[str]
    topics: Sequence[str]
    ids: Sequence[str]
    if names:
        clients, client = _recoded(records, 1, names, client_codes)
        topics, topic = _recoded(records, 3, names, topic_codes)
        ids, message = _messages(records, names, message_codes)
    else:
        clients, client = _coded(list(map(_client, records)), client_codes)
        topics, topic = _coded(list(map(_topic, records)), topic_codes)
        ids, message = _coded(list(map(_id, records)), message_codes)
    # the key (client, topic, message) as one integer; the (client, topic) pairs are made dense
    # first when the product of the codes could overflow (then < n * (ids + publishes))
    span, width = len(topic_codes), len(message_codes)
    pair, pairs = client * span + topic, None
    if len(client_codes) * span * max(width, len(client_codes)) >= KEY_LIMIT:
        pairs, pair = np.unique(pair, return_inverse=True)
        pair = pair.reshape(-1).astype(np.int64)
    key = pair * width + message
    _, first = np.unique(key, return_index=True)  # a stable sort: each key's first delivery
    first.sort()
    repeat = np.ones(n, np.bool_)
    repeat[first] = False
    flags = np.zeros(n, np.bool_)
    flags[list(closed)] = True
    return Deliveries(
        times=records.column(0).copy()
        if isinstance(records, Columns)
        else np.fromiter(map(_time, records), np.float64, n),
        clients=clients,
        topics=topics,
        ids=ids,
        client=client,
        topic=topic,
        message=message,
        published=published,
        closed=flags,
        pair=pair,
        pairs=pairs,
        span=span,
        key=key,
        first=first.astype(np.int64),
        repeat=repeat,
        sources=sources,
        positions=positions,
        messages=width,
        names=names,
    )


def _first_sight(column: Ints) -> Ints:
    """The distinct values of the column in the order they first occur."""
    distinct, first = np.unique(column, return_index=True)
    return distinct[np.argsort(first, kind="stable")]


def _recoded(
    records: Sequence[Any] | Columns, k: int, names: Sequence[Any], codes: Codes
) -> tuple[Named, Ints]:
    """Column `k` of compact rows (codes in the file's table) in `codes`, which gives new names
    their codes in order of first sight, as `Codes.of` over the names would."""
    if isinstance(records, Columns):
        column = records.codes(k)
    else:
        column = np.fromiter(map(itemgetter(k), records), np.int64, len(records))
    table = np.zeros(len(names), np.int64)
    for code in _first_sight(column).tolist():
        table[code] = codes.code(names[code])
    coded = table[column]
    return Named(coded, codes.names()), coded


SEQ_BITS = 47  # a compact row's sequence is below 10**14 < 2**47 (`harness.rows.SEQ_LIMIT`)


def message_keys(records: Sequence[Any] | Columns) -> Ints | None:
    """Each compact row's (publisher, seq) as one integer, or None if some row has no id."""
    n = len(records)
    if isinstance(records, Columns):
        if np.isnan(records.column(PUBLISHER)).any():
            return None
        publisher, seq = records.codes(PUBLISHER), records.codes(SEQ)
    else:
        publishers = list(map(itemgetter(PUBLISHER), records))
        if None in publishers:
            return None
        publisher = np.fromiter(publishers, np.int64, n)
        seq = np.fromiter(map(itemgetter(SEQ), records), np.int64, n)
    return (publisher << SEQ_BITS) | seq


def key_ids(keys: Sequence[int], names: Sequence[Any]) -> list[str]:
    """The message ids of (publisher, seq) keys."""
    mask = (1 << SEQ_BITS) - 1
    return [f"{names[key >> SEQ_BITS]}{key & mask}" for key in keys]


def _messages(
    records: Sequence[Any] | Columns, names: Sequence[Any], codes: Codes
) -> tuple[Named, Ints]:
    """The message ids of compact rows in `codes` (new ids coded in order of first sight)."""
    keys = message_keys(records)
    if keys is None:  # rows with no id: each row's id, as for rows of strings
        _, message = _coded([row_id(row, names) for row in records], codes)
        return Named(message, codes.names()), message
    distinct, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    table = np.zeros(len(distinct), np.int64)
    table[order] = codes.of(key_ids(distinct[order].tolist(), names))
    coded = table[inverse.reshape(-1)]
    return Named(coded, codes.names()), coded


def _coded(column: list[Any], codes: Codes) -> tuple[list[str], Ints]:
    """The column as strings (a row's topic or id could be anything JSON allows) and its codes;
    the types are checked on the names that got new codes, not on every entry."""
    known = len(codes)
    coded = codes.of(column)
    if all(type(name) is str for name in codes.names(known)):
        return column, coded
    strings = list(map(str, column))
    return strings, codes.of(strings)


@dataclass(eq=False, slots=True)
class Messages:
    """The publishes as columns: entry i is the i-th of `Facts.publishes`."""

    invoked: Floats = field(default_factory=lambda: np.zeros(0))
    completed: Floats = field(default_factory=lambda: np.zeros(0))  # nan: never completed
    ok: Flags = field(default_factory=lambda: np.zeros(0, np.bool_))  # acknowledged
    topic: Ints = field(default_factory=lambda: np.zeros(0, np.int64))
    publisher: Ints = field(default_factory=lambda: np.zeros(0, np.int64))  # a client code

    @property
    def acknowledged(self) -> Floats:
        """When each message was acknowledged; nan if it never was."""
        return np.where(self.ok, self.completed, np.nan)


def messages_of(publishes: Sequence[Any], client_codes: Codes, topic_codes: Codes) -> Messages:
    """The columns of `Facts.publishes` values (`_facts.Publish`)."""
    n = len(publishes)
    nan = float("nan")
    return Messages(
        np.fromiter((p.invoked for p in publishes), np.float64, n),
        np.fromiter((nan if p.completed is None else p.completed for p in publishes), float, n),
        np.fromiter((p.outcome == "ok" for p in publishes), np.bool_, n),
        topic_codes.of([p.topic for p in publishes]),
        client_codes.of([p.publisher for p in publishes]),
    )


def canonical_ids(records: list[Any]) -> None:
    """Every delivery's id a string of bounded length (`harness.foreign.id_text`), in place: a
    history recorded before ids were made canonical may hold a list, an object or a megabyte
    there."""
    ids = list(map(itemgetter(5), records))
    kinds = set(map(type, ids))
    if kinds <= {str, type(None)} and max(map(len, filter(None, ids)), default=0) <= MAX_ID:
        return
    for k, record in enumerate(records):
        canonical = id_text(record[5])
        if canonical is not record[5]:
            records[k] = (*record[:5], canonical, *record[6:])


@dataclass(frozen=True, slots=True)
class Kept:
    """Which records are kept (`keep`, ascending), applied to the parallel lists (or columns)."""

    keep: list[int]

    def pick(
        self,
        records: list[Any] | Columns,
        sources: list[Any] | Columns,
        positions: list[int] | Ints,
        closed: list[int],
    ) -> tuple[list[Any] | Columns, list[Any] | Columns, list[int] | Ints, list[int]]:
        flagged = set(closed)
        if isinstance(records, Columns):
            kept = records.take(self.keep)
            return kept, kept, np.asarray(positions)[self.keep], self._flags(flagged)
        return (
            [records[k] for k in self.keep],
            [sources[k] for k in self.keep],
            [positions[k] for k in self.keep],
            self._flags(flagged),
        )

    def _flags(self, flagged: set[int]) -> list[int]:
        return [new for new, k in enumerate(self.keep) if k in flagged]


def without_probes(
    records: Sequence[Any] | Columns, probes: set[str], names: Sequence[Any] = ()
) -> Kept | None:
    """The records that are not the readiness probe's (`harness.run.probe`), or None if all are;
    with the file's `names`, all compact rows (their ids named once per distinct id)."""
    keys = message_keys(records) if names else None
    if keys is not None:
        distinct = np.unique(keys).tolist()
        probed = [k for k, i in zip(distinct, key_ids(distinct, names), strict=True) if i in probes]
        keep = np.flatnonzero(~np.isin(keys, probed)).tolist()
    elif names:
        ids = (row_id(row, names) for row in records)
        keep = [k for k, message_id in enumerate(ids) if message_id not in probes]
    else:
        keep = [k for k, record in enumerate(records) if record[5] not in probes]
    return None if len(keep) == len(records) else Kept(keep)
