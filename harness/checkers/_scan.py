"""How a history becomes its `Facts` (`_facts`): one pass over the ops, the delivery rows taken
as a whole where the history was read lean (`rundir.read_lean`), then the deliveries and
publishes made columns (`_deliveries`). What each fact means is said in `_facts`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any, cast

import numpy as np

from .._gc import paused_gc
from ..columns import Columns, Ints
from ..history import Lean, Op, Row, fault_edge
from ..rows import expand, is_compact
from ._deliveries import Codes, canonical_ids, deliveries_of, messages_of, without_probes
from ._facts import Facts, Membership, Publish, Window
from ._formation import formation


def facts_of(history: Iterable[Op | Row]) -> Facts:
    """The facts of a history: its ops, or what `rundir.read_lean` gives (deliveries as rows).
    Made with the cyclic collector paused (`harness._gc`: a million tuples that all live)."""
    with paused_gc():
        return _facts_of(history)


@dataclass(slots=True)
class _Scan:
    """What a pass over a history keeps while it goes, beyond the facts themselves."""

    open_windows: dict[str, tuple[Op, float]] = field(default_factory=dict)
    joined: dict[tuple[str, str], tuple[str, str | None, float]] = field(default_factory=dict)
    connected: dict[str, float] = field(default_factory=dict)
    reads: dict[str, set[str]] = field(default_factory=dict)
    # the deliveries' records (a row, or a row-shaped tuple of an op), their sources, positions
    records: list[Any] | Columns = field(default_factory=list)
    sources: list[Op | Row] | Columns = field(default_factory=list)
    positions: list[int] | Ints = field(default_factory=list)
    closed: list[int] = field(default_factory=list)  # deliveries after a leave (`state: closed`)
    deliver_set: int = -1  # where a `setup` op last named the delivery event
    names: list[str | None] | tuple[()] = ()  # the file's table when the records are compact


def _facts_of(history: Iterable[Op | Row]) -> Facts:
    if type(history) is list or isinstance(history, Lean):
        facts = _facts_of_list(history)
        if facts is not None:
            return facts
    if isinstance(history, Lean) and history.names is not None:  # compact rows: their strings
        names = history.names
        history = [expand(i, names) if type(i) is list and is_compact(i) else i for i in history]
    facts, scan = Facts(), _Scan()
    index = -1
    time: float | None = None
    ended = False
    for item in history:
        index += 1
        if type(item) is list:  # a delivery row (`history.parse_lean`): most of any history
            row: Row = item
            time = row[0]
            if index == 0:
                facts.start = time
            _deliver_row(facts, scan, row, index)
            continue
        op = cast(Op, item)
        time = op.time
        if index == 0:
            facts.start = time
        if _observe(facts, scan, op, index):
            ended = True
            break
    if ended:
        _after_teardown(facts, (item for item in history if type(item) is not list))
    elif time is not None:
        facts.end = time
    return _finish(facts, scan)


def _after_teardown(facts: Facts, ops: Iterable[Any]) -> None:
    """What set-up code said while the run was torn down (a node's process it had to stop) and
    the processes that ran out of descriptors (read from their logs at the end) still reach the
    warnings and the distress; nothing else of the teardown is judged."""
    for op in ops:
        if op.f == "setup" and isinstance(op.value.get("notice"), str):
            facts.notices.append(op.value["notice"])
        elif op.f == "exhausted":  # found in the logs once every process had stopped
            facts.exhausted.append(op)


def _facts_of_list(history: list[Op | Row] | Lean) -> Facts | None:
    """`_facts_of` over a history from `run.lean.read_lean`, a million rows among a few ops:
    the ops walked one by one, the rows taken as a whole (a Python step for each of them cost
    ~2 s in a million). None if a `setup` op named the delivery event after the first row (then
    the rows are walked one by one)."""
    items = history.items if isinstance(history, Lean) else history
    if not items:
        return None
    is_row = np.zeros(len(items), np.bool_)
    all_rows: list[Row] | Columns
    if isinstance(history, Lean) and history.rows is not None and history.row_positions is not None:
        all_rows, all_positions, extras = history.rows, history.row_positions, history.extras
        is_row[all_positions] = True
    else:
        is_row = np.fromiter(map(list.__instancecheck__, items), np.bool_, len(items))
        all_positions = np.flatnonzero(is_row).tolist()
        all_rows = cast(list[Row], list(map(items.__getitem__, all_positions)))
        extras = True
    facts, scan = Facts(), _Scan()
    cut = len(items)
    op_indices = np.flatnonzero(~is_row).tolist()
    for k, index in enumerate(op_indices):
        if _observe(facts, scan, cast(Op, items[index]), index):
            cut = index
            _after_teardown(facts, (items[i] for i in op_indices[k + 1 :]))
            break
    ended = cut < len(items)
    kept = int(np.searchsorted(all_positions, cut))
    rows, positions = all_rows[:kept], all_positions[:kept]
    if len(positions) and (positions[0] < scan.deliver_set or scan.records):
        return None  # rows before the event was named, or deliveries as ops among the rows
    names = history.names if isinstance(history, Lean) else None
    if isinstance(rows, list) and names is not None and _types(rows, 1) != {int}:
        rows = [expand(row, names) if is_compact(row) else row for row in rows]  # mixed
        names = None
    facts.start = _time_at(items, all_rows, all_positions, 0)
    if not ended:
        facts.end = _time_at(items, all_rows, all_positions, cut - 1)
    if not len(positions):
        return _finish(facts, scan)
    event = facts.deliver_event
    wanted = [event] if names is None else [c for c, name in enumerate(names) if name == event]
    if isinstance(rows, Columns):
        chosen = np.flatnonzero(np.isin(rows.codes(4), wanted))
        if len(chosen) != len(rows):  # pushes of other events among the rows
            others = np.setdiff1d(np.arange(len(rows)), chosen).tolist()
            facts.pushes.extend(
                Op.from_row(rows[k], int(positions[k]), names or ()) for k in others
            )
            facts.pushes.sort(key=attrgetter("index"))
            rows, positions = rows.take(chosen), np.asarray(positions)[chosen]
        if extras:
            scan.closed.extend(rows.closed())
    else:
        events = list(map(itemgetter(4), rows))
        if sum(map(events.count, wanted)) != len(rows):  # pushes of other events among the rows
            picked = [k for k, e in enumerate(events) if e in wanted]
            facts.pushes.extend(
                Op.from_row(rows[k], positions[k], names or ())
                for k, e in enumerate(events)
                if e not in wanted
            )
            facts.pushes.sort(key=attrgetter("index"))
            rows, positions = [rows[k] for k in picked], [positions[k] for k in picked]
        if extras and (7 if names is None else 8) < max(map(len, rows), default=0):
            scan.closed.extend(
                k
                for k, row in enumerate(rows)
                if type(row[-1]) is dict and row[-1].get("state") == "closed"
            )
    scan.names = names or ()
    scan.records = rows
    scan.sources = cast(list[Op | Row] | Columns, rows)
    scan.positions = positions
    return _finish(facts, scan)


def _types(rows: list[Row], k: int) -> set[type]:
    return set(map(type, map(itemgetter(k), rows)))


def _time_at(
    items: Sequence[Op | Row | None], rows: Sequence[Row] | Columns, positions: Any, at: int
) -> float:
    """The time of item `at`: an op's, a row's (a row read as columns is not in `items`)."""
    item = items[at]
    if item is None:
        return float(cast(Columns, rows).column(0)[int(np.searchsorted(positions, at))])
    return cast(float, item[0]) if type(item) is list else cast(Op, item).time


def _deliver_row(facts: Facts, scan: _Scan, row: Row, index: int) -> None:
    if row[4] != facts.deliver_event:
        facts.pushes.append(Op.from_row(row, index))
        return
    if len(row) == 8 and row[7].get("state") == "closed":
        scan.closed.append(len(scan.records))
    _append(scan, row, row, index)


def _append(scan: _Scan, record: Any, source: Op | Row, position: int) -> None:
    """A delivery met one by one (the rows as columns are taken whole, never appended to)."""
    cast(list[Any], scan.records).append(record)
    cast(list[Op | Row], scan.sources).append(source)
    cast(list[int], scan.positions).append(position)


def _observe(facts: Facts, scan: _Scan, op: Op, index: int) -> bool:
    """Take in one op (not a row); True once the run's `teardown` phase began."""
    f, v = op.f, op.value
    joined = scan.joined
    if f == "recv":
        if v.get("event") == facts.deliver_event:
            if v.get("state") == "closed":
                scan.closed.append(len(scan.records))
            topic, message_id = str(v.get("topic")), str(v.get("id"))
            _append(scan, (op.time, op.process, op.node, topic, "", message_id), op, op.index)
        else:
            facts.pushes.append(op)
    elif f == "phase":
        if v.get("phase") == "teardown":
            facts.end = op.time  # what the run's own shutdown does is not under test
            return True
        if v.get("phase") == "workload" and facts.workload is None:
            facts.workload = op.time
    elif f == "fault":
        edge = fault_edge(op)
        if edge == "start":
            scan.open_windows[str(v.get("id"))] = (op, op.time)
        elif edge == "stop":
            started = scan.open_windows.pop(str(v.get("id")), None)
            if started is not None:
                figures = v.get("figures")
                facts.windows.append(
                    _window(
                        started[0],
                        started[1],
                        op.time,
                        figures if isinstance(figures, dict) else {},
                    )
                )
    elif f == "heal" and op.type != "invoke":
        facts.heal = op.time
    elif f == "publish":
        _publish(facts, op)
        if op.type == "info" and v.get("error") == "timeout":
            facts.symptoms.append(op)
    elif f == "heartbeat_timeout":
        facts.symptoms.append(op)
    elif f == "load":
        facts.load.append(op)
    elif f == "setup" and isinstance(v.get("deliver"), str):
        facts.deliver_event = v["deliver"]
        scan.deliver_set = index
    elif f == "setup" and isinstance(v.get("notice"), str):
        facts.notices.append(v["notice"])
    elif f == "bad_frame":
        facts.bad_frames.append(op)
    elif f == "node_exit":
        facts.node_exits.append(op)
    elif f == "exhausted":
        facts.exhausted.append(op)
    elif f == "recv_foreign":
        count = v.get("count")
        if isinstance(count, int) and count > 0:
            facts.foreign[op.process] = facts.foreign.get(op.process, 0) + count
    elif f == "probe":
        if op.type == "invoke":
            facts.probes.add(str(v.get("id")))
        else:
            facts.formations.append(formation(op))
    elif f == "recv_stale":
        facts.stale.append(op)
    elif f == "join":
        topic = str(v.get("topic"))
        if op.type == "invoke":
            facts.expected_topics.setdefault(op.process, set()).add(topic)
            if "cursor" in v:  # the position it asked to be caught up from
                facts.cursors[(op.process, topic, str(v.get("join_ref")))] = v["cursor"]
        elif op.type == "ok":
            _close(facts, joined, (op.process, topic), op.time)
            joined[(op.process, topic)] = (str(v.get("join_ref")), op.node, op.time)
            facts.closed.discard((op.process, topic))
    elif f in ("channel_error", "channel_close"):
        if f == "channel_error" and (op.process, str(v.get("topic"))) in joined:
            reason = v.get("reason")
            if not (isinstance(reason, dict) and reason.get("source") == "transport"):
                facts.channel_errors.append(op)  # a transport's error is its socket's loss
        _close(facts, joined, (op.process, str(v.get("topic"))), op.time)
        if f == "channel_close":
            facts.closed.add((op.process, str(v.get("topic"))))
    elif f == "connect" and op.type == "ok":
        scan.connected[op.process] = op.time
    elif f == "disconnect":
        since = scan.connected.pop(op.process, None)
        if since is not None:
            facts.losses.setdefault(op.process, []).append(op)
            facts.connections.setdefault(op.process, []).append((since, op.time))
        for key in [k for k in joined if k[0] == op.process]:
            _close(facts, joined, key, op.time)
    elif f == "read":
        topic = str(v.get("topic"))
        if op.type == "ok":
            scan.reads[topic] = {str(i) for i in v.get("ids", ())}
            facts.unread.pop(topic, None)
        elif op.type == "invoke":
            facts.unread[topic] = "the read never completed"
            facts.read_from[topic] = op.time
        else:
            facts.unread[topic] = str(v.get("error") or "the read failed")
    return False


def _finish(facts: Facts, scan: _Scan) -> Facts:
    end_of_faults = facts.heal if facts.heal is not None else facts.end
    for start_op, at in scan.open_windows.values():
        facts.windows.append(_window(start_op, at, max(end_of_faults, at), {}))
    for key in list(scan.joined):
        _close(facts, scan.joined, key, float("inf"))
    for client, since in scan.connected.items():
        facts.connections.setdefault(client, []).append((since, float("inf")))
    facts.windows.sort(key=lambda w: w.start)
    facts.reads = scan.reads or None
    if facts.probes and scan.records:  # probes delivered on a workload topic: not the workload's
        kept = without_probes(scan.records, facts.probes, scan.names)
        if kept is not None:
            scan.records, scan.sources, scan.positions, scan.closed = kept.pick(
                scan.records, scan.sources, scan.positions, scan.closed
            )
    if isinstance(scan.records, list) and scan.records and not scan.names:  # compact: canonical
        canonical_ids(scan.records)
    clients, topics, ids = facts.clients, facts.topics, Codes(facts.publishes)
    facts.messages = messages_of(list(facts.publishes.values()), clients, topics)
    facts.deliveries = deliveries_of(
        scan.records,
        scan.sources,
        scan.positions,
        scan.closed,
        ids,
        len(facts.publishes),
        clients,
        topics,
        scan.names,
    )
    return facts


def _window(op: Op, start: float, end: float, figures: dict[str, Any]) -> Window:
    v = op.value

    def count(key: str) -> int | None:
        value = figures.get(key)
        return value if type(value) is int else None

    link_bytes = count("link_bytes")
    if link_bytes == 0 and count("link_connections"):
        link_bytes = None  # connections crossed, still open: their bytes not yet counted
    return Window(
        str(v.get("id")),
        str(v.get("kind")),
        str(v.get("target", "")),
        start,
        end,
        link_bytes,
        count("broadcasts_taken"),
        count("packets_dropped"),
    )


def _publish(facts: Facts, op: Op) -> None:
    v = op.value
    message_id = str(v.get("id"))
    if op.type == "invoke":
        existing = facts.publishes.get(message_id)
        if existing is None:  # a retry keeps the first invoke time
            seq = v.get("seq")
            facts.publishes[message_id] = Publish(
                message_id,
                str(v.get("topic")),
                op.process,
                seq if isinstance(seq, int) else None,
                op.time,
            )
        return
    publish = facts.publishes.get(message_id)
    if publish is None:
        return
    if publish.outcome != "ok":  # once acknowledged, a later timeout of a retry cannot undo it
        publish.outcome = op.type
        publish.completed = op.time


def _close(
    facts: Facts,
    joined: dict[tuple[str, str], tuple[str, str | None, float]],
    key: tuple[str, str],
    at: float,
) -> None:
    current = joined.pop(key, None)
    if current is not None:
        join_ref, node, since = current
        facts.memberships.setdefault(key, []).append(
            Membership(key[0], key[1], join_ref, node, since, at)
        )
