"""Facts derived once from a history, shared by every checker.

* fault windows: from `fault` ops (`phase` start/stop with a shared `id`); a window never
  stopped ends at the final `heal`, or at the end of the history;
* publishes: each message id's topic, publisher, seq, invoke time and outcome;
* deliveries: `recv` ops of the app's delivery event (`new_msg` unless the run's `setup` op
  names another: `deliver`, from the scenario's `app.deliver.event`), as columns grouped once
  by (client, topic, message id), and the publishes as columns too (`_deliveries`: a history
  has a million deliveries and every safety and timing check walks them);
* connections: for each client, the intervals during which its socket was open, from a
  `connect` ok to the next `disconnect`; a *loss* is a disconnect that ends one (a failed connect
  attempt is reported as a disconnect too, as phoenix.js does, but there was nothing to lose);
* membership: for each (client, topic), the intervals during which the client was joined, from a
  `join` ok to the next `channel_error`, `channel_close` or `disconnect` of that client;
* final reads: `read` ok ops, the room contents after the run;
* the readiness probe (`harness.probe`): the ids of its probes (`probe` invoke ops), which no
  check counts wherever they are delivered, and its measurements of the cluster's formation
  (`probe` info ops): when each began (a heal) and how long the cluster took;
* the harness's own load (`load` ops) and the symptoms a slow harness shows (`heartbeat_timeout`,
  publishes that timed out), from which `harness.checkers._distress` finds the windows where the
  harness could not judge; `workload`, when the workload phase began.

Observation ends where the runner's `teardown` phase begins: the disconnects of its own shutdown
are not losses.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any, cast

import numpy as np

from .._gc import paused_gc
from ..history import Lean, Op, Row
from ._deliveries import Codes, Deliveries, Messages, deliveries_of, messages_of
from ._formation import Formation, formation

DELIVERY_EVENT = "new_msg"


@dataclass(frozen=True, slots=True)
class Distress:
    """A stretch of the run where the harness itself was too slow to judge timing."""

    start: float
    end: float
    reason: str
    figures: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "reason": self.reason,
            **self.figures,
        }


@dataclass(frozen=True, slots=True)
class Window:
    id: str
    kind: str
    target: str
    start: float
    end: float

    def overlaps(self, start: float, end: float, margin: float = 0.0) -> bool:
        return start <= self.end + margin and end >= self.start

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
        }


@dataclass(slots=True)
class Publish:
    id: str
    topic: str
    publisher: str
    seq: int | None
    invoked: float
    outcome: str = "invoke"  # ok | fail | info | invoke (never completed)
    completed: float | None = None


@dataclass(frozen=True, slots=True)
class Membership:
    client: str
    topic: str
    join_ref: str
    node: str | None
    start: float
    end: float  # inf if still joined at the end


@dataclass(slots=True)
class Facts:
    start: float = 0.0
    end: float = 0.0
    heal: float | None = None
    windows: list[Window] = field(default_factory=list)
    publishes: dict[str, Publish] = field(default_factory=dict)
    deliveries: Deliveries = field(default_factory=Deliveries)
    messages: Messages = field(default_factory=Messages)  # `publishes` as columns
    clients: Codes = field(default_factory=Codes)  # the codes of the columns
    topics: Codes = field(default_factory=Codes)
    stale: list[Op] = field(default_factory=list)
    pushes: list[Op] = field(default_factory=list)  # recv ops of any other event (`pushes`)
    memberships: dict[tuple[str, str], list[Membership]] = field(default_factory=dict)
    expected_topics: dict[str, set[str]] = field(default_factory=dict)
    losses: dict[str, list[Op]] = field(default_factory=dict)  # client -> disconnect ops
    connections: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # end: inf
    reads: dict[str, set[str]] | None = None
    unread: dict[str, str] = field(default_factory=dict)  # topic -> why its final read failed
    read_from: dict[str, float] = field(default_factory=dict)  # topic -> when its read began
    closed: set[tuple[str, str]] = field(default_factory=set)  # closed for good by phx_close
    channel_errors: list[Op] = field(default_factory=list)  # phx_error: the channel crashed
    workload: float | None = None  # when the workload phase began
    deliver_event: str = DELIVERY_EVENT
    load: list[Op] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # what set-up had to say (`setup` ops)
    probes: set[str] = field(default_factory=set)  # the readiness probe's message ids
    formations: list[Formation] = field(default_factory=list)
    symptoms: list[Op] = field(default_factory=list)
    distress: tuple[Distress, ...] = ()  # set by `assess`, read by the timing checks

    def windows_near(self, start: float, end: float, margin: float = 0.0) -> list[dict[str, Any]]:
        return [w.to_json() for w in self.windows if w.overlaps(start, end, margin)]


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
    records: list[Any] = field(default_factory=list)
    sources: list[Op | Row] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)  # deliveries after a leave (`state: closed`)
    deliver_set: int = -1  # where a `setup` op last named the delivery event


def _facts_of(history: Iterable[Op | Row]) -> Facts:
    if type(history) is list or isinstance(history, Lean):
        facts = _facts_of_list(history)
        if facts is not None:
            return facts
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
    if not ended and time is not None:
        facts.end = time
    return _finish(facts, scan)


def _facts_of_list(history: list[Op | Row] | Lean) -> Facts | None:
    """`_facts_of` over a history from `rundir.read_lean`, a million rows among a few ops: the
    ops walked one by one, the rows taken as a whole (a Python step for each of them cost ~2 s
    in a million). None if a `setup` op named the delivery event after the first row (then the
    rows are walked one by one)."""
    items = history.items if isinstance(history, Lean) else history
    if not items:
        return None
    is_row = np.zeros(len(items), np.bool_)
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
    for index in np.flatnonzero(~is_row).tolist():
        if _observe(facts, scan, cast(Op, items[index]), index):
            cut = index
            break
    ended = cut < len(items)
    kept = bisect_left(all_positions, cut)
    rows, positions = all_rows[:kept], all_positions[:kept]
    if positions and (positions[0] < scan.deliver_set or scan.records):
        return None  # rows before the event was named, or deliveries as ops among the rows
    first, last = items[0], items[cut - 1]
    facts.start = first[0] if type(first) is list else cast(Op, first).time
    if not ended:
        facts.end = last[0] if type(last) is list else cast(Op, last).time
    if not positions:
        return _finish(facts, scan)
    event = facts.deliver_event
    events = list(map(itemgetter(4), rows))
    if events.count(event) != len(rows):  # pushes of other events among the rows
        chosen = [k for k, e in enumerate(events) if e == event]
        facts.pushes.extend(
            Op.from_row(rows[k], positions[k]) for k, e in enumerate(events) if e != event
        )
        facts.pushes.sort(key=attrgetter("index"))
        rows, positions = [rows[k] for k in chosen], [positions[k] for k in chosen]
    if extras and 8 in set(map(len, rows)):
        scan.closed.extend(
            k for k, row in enumerate(rows) if len(row) == 8 and row[7].get("state") == "closed"
        )
    scan.records = rows
    scan.sources = cast(list[Op | Row], rows)
    scan.positions = positions
    return _finish(facts, scan)


def _deliver_row(facts: Facts, scan: _Scan, row: Row, index: int) -> None:
    if row[4] != facts.deliver_event:
        facts.pushes.append(Op.from_row(row, index))
        return
    if len(row) == 8 and row[7].get("state") == "closed":
        scan.closed.append(len(scan.records))
    scan.records.append(row)
    scan.sources.append(row)
    scan.positions.append(index)


def _observe(facts: Facts, scan: _Scan, op: Op, index: int) -> bool:
    """Take in one op (not a row); True once the run's `teardown` phase began."""
    f, v = op.f, op.value
    joined = scan.joined
    if f == "recv":
        if v.get("event") == facts.deliver_event:
            if v.get("state") == "closed":
                scan.closed.append(len(scan.records))
            topic, message_id = str(v.get("topic")), str(v.get("id"))
            scan.records.append((op.time, op.process, op.node, topic, "", message_id))
            scan.sources.append(op)
            scan.positions.append(op.index)
        else:
            facts.pushes.append(op)
    elif f == "phase":
        if v.get("phase") == "teardown":
            facts.end = op.time  # what the run's own shutdown does is not under test
            return True
        if v.get("phase") == "workload" and facts.workload is None:
            facts.workload = op.time
    elif f == "fault":
        phase = v.get("phase")
        if phase == "start":
            scan.open_windows[str(v.get("id"))] = (op, op.time)
        elif phase == "stop":
            started = scan.open_windows.pop(str(v.get("id")), None)
            if started is not None:
                facts.windows.append(_window(started[0], started[1], op.time))
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
        elif op.type == "ok":
            _close(facts, joined, (op.process, topic), op.time)
            joined[(op.process, topic)] = (str(v.get("join_ref")), op.node, op.time)
            facts.closed.discard((op.process, topic))
    elif f in ("channel_error", "channel_close"):
        if f == "channel_error" and (op.process, str(v.get("topic"))) in joined:
            facts.channel_errors.append(op)
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
        facts.windows.append(_window(start_op, at, max(end_of_faults, at)))
    for key in list(scan.joined):
        _close(facts, scan.joined, key, float("inf"))
    for client, since in scan.connected.items():
        facts.connections.setdefault(client, []).append((since, float("inf")))
    facts.windows.sort(key=lambda w: w.start)
    facts.reads = scan.reads or None
    if facts.probes and scan.records:  # probes delivered on a workload topic: not the workload's
        _drop_probes(scan, facts.probes)
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
    )
    return facts


def _drop_probes(scan: _Scan, probes: set[str]) -> None:
    keep = [k for k, record in enumerate(scan.records) if record[5] not in probes]
    if len(keep) == len(scan.records):
        return
    closed = set(scan.closed)
    scan.closed = [new for new, k in enumerate(keep) if k in closed]
    scan.records = [scan.records[k] for k in keep]
    scan.sources = [scan.sources[k] for k in keep]
    scan.positions = [scan.positions[k] for k in keep]


def _window(op: Op, start: float, end: float) -> Window:
    v = op.value
    return Window(str(v.get("id")), str(v.get("kind")), str(v.get("target", "")), start, end)


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


def describe(op: Op) -> dict[str, Any]:
    """An op as a witness: the fields a reader needs, nothing else."""
    out: dict[str, Any] = {
        "time": round(op.time, 3),
        "client": op.process,
        "f": op.f,
        "type": op.type,
    }
    if op.node:
        out["node"] = op.node
    for key in (
        "topic",
        "id",
        "join_ref",
        "frame_join_ref",
        "code",
        "reason",
        "seq",
        "publisher",
        "error",
    ):
        if key in op.value and op.value[key] is not None:
            out[key] = op.value[key]
    return out
