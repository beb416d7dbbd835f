"""Facts derived once from a history, shared by every checker.

* fault windows: from `fault` ops (`phase` start/stop with a shared `id`); a window never
  stopped ends at the final `heal`, or at the end of the history;
* publishes: each message id's topic, publisher, seq, invoke time and outcome;
* deliveries: `recv` ops of the app's delivery event (`new_msg` unless the run's `setup` op
  names another: `deliver`, from the scenario's `app.deliver.event`), each as a `Delivery`
  whose fields are taken out of the op once, and grouped once by (client, topic, message id):
  `first` (its first delivery) and `repeats` (every delivery of a key delivered more than once).
  A history has a million of them and every safety and timing check walks them: tuple fields
  and one grouping cost a fraction of `op.value.get` per check (`bench/checkers.py`);
* connections: for each client, the intervals during which its socket was open, from a
  `connect` ok to the next `disconnect`; a *loss* is a disconnect that ends one (a failed connect
  attempt is reported as a disconnect too, as phoenix.js does, but there was nothing to lose);
* membership: for each (client, topic), the intervals during which the client was joined, from a
  `join` ok to the next `channel_error`, `channel_close` or `disconnect` of that client;
* final reads: `read` ok ops, the room contents after the run;
* the harness's own load (`load` ops) and the symptoms a slow harness shows (`heartbeat_timeout`,
  publishes that timed out), from which `harness.checkers._distress` finds the windows where the
  harness could not judge; `workload`, when the workload phase began.

Observation ends where the runner's `teardown` phase begins: the disconnects of its own shutdown
are not losses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from .._gc import paused_gc
from ..history import Op, Row

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


class Delivery(NamedTuple):
    """One delivery of the app's message event (the op stays for witnesses)."""

    time: float
    client: str
    topic: str
    id: str
    state: str | None
    repeat: bool  # the same message reached this client on this topic before
    source: Op | Row  # the op, or its row as read (`rundir.read_lean`)
    position: int = -1  # the row's index in the history

    @property
    def op(self) -> Op:
        """The delivery's op (made from its row when it was read lean: for witnesses)."""
        source = self.source
        return source if isinstance(source, Op) else Op.from_row(source, self.position)


DeliveryKey = tuple[str, str, str]  # (client, topic, message id)


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
    deliveries: list[Delivery] = field(default_factory=list)
    first: dict[DeliveryKey, Delivery] = field(default_factory=dict)
    repeats: dict[DeliveryKey, list[Delivery]] = field(default_factory=dict)
    stale: list[Op] = field(default_factory=list)
    pushes: list[Op] = field(default_factory=list)  # recv ops of any other event (`pushes`)
    memberships: dict[tuple[str, str], list[Membership]] = field(default_factory=dict)
    expected_topics: dict[str, set[str]] = field(default_factory=dict)
    losses: dict[str, list[Op]] = field(default_factory=dict)  # client -> disconnect ops
    connections: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # end: inf
    reads: dict[str, set[str]] | None = None
    unread: dict[str, str] = field(default_factory=dict)  # topic -> why its final read failed
    closed: set[tuple[str, str]] = field(default_factory=set)  # closed for good by phx_close
    channel_errors: list[Op] = field(default_factory=list)  # phx_error: the channel crashed
    workload: float | None = None  # when the workload phase began
    deliver_event: str = DELIVERY_EVENT
    load: list[Op] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # what set-up had to say (`setup` ops)
    symptoms: list[Op] = field(default_factory=list)
    distress: tuple[Distress, ...] = ()  # set by `assess`, read by the timing checks

    def windows_near(self, start: float, end: float, margin: float = 0.0) -> list[dict[str, Any]]:
        return [w.to_json() for w in self.windows if w.overlaps(start, end, margin)]


def facts_of(history: Iterable[Op | Row]) -> Facts:
    """The facts of a history: its ops, or what `rundir.read_lean` gives (deliveries as rows).
    Made with the cyclic collector paused (`harness._gc`: a million tuples that all live)."""
    with paused_gc():
        return _facts_of(history)


def _facts_of(history: Iterable[Op | Row]) -> Facts:
    facts = Facts()
    open_windows: dict[str, tuple[Op, float]] = {}
    joined: dict[tuple[str, str], tuple[str, str | None, float]] = {}
    connected: dict[str, float] = {}
    reads: dict[str, set[str]] = {}
    deliveries, first, repeats = facts.deliveries, facts.first, facts.repeats

    def deliver(
        time: float, client: str, topic: str, message_id: str, state: Any, source: Op | Row, at: int
    ) -> None:
        delivered = (client, topic, message_id)
        earlier = first.get(delivered)
        d = Delivery(time, client, topic, message_id, state, earlier is not None, source, at)
        deliveries.append(d)
        if earlier is None:
            first[delivered] = d
        else:
            repeats.setdefault(delivered, [earlier]).append(d)

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
            if row[4] != facts.deliver_event:
                facts.pushes.append(Op.from_row(row, index))
                continue
            extra = row[7] if len(row) == 8 else None
            state = extra.get("state", "joined") if extra else "joined"
            deliver(time, row[1], str(row[3]), str(row[5]), state, row, index)
            continue
        op = cast(Op, item)
        f, v = op.f, op.value
        time = op.time
        if index == 0:
            facts.start = time
        if f == "recv":
            if v.get("event") == facts.deliver_event:
                topic, message_id = str(v.get("topic")), str(v.get("id"))
                deliver(time, op.process, topic, message_id, v.get("state"), op, op.index)
            else:
                facts.pushes.append(op)
        elif f == "phase":
            if v.get("phase") == "teardown":
                facts.end = op.time  # what the run's own shutdown does is not under test
                ended = True
                break
            if v.get("phase") == "workload" and facts.workload is None:
                facts.workload = op.time
        elif f == "fault":
            phase = v.get("phase")
            if phase == "start":
                open_windows[str(v.get("id"))] = (op, op.time)
            elif phase == "stop":
                started = open_windows.pop(str(v.get("id")), None)
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
        elif f == "setup" and isinstance(v.get("notice"), str):
            facts.notices.append(v["notice"])
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
            connected[op.process] = op.time
        elif f == "disconnect":
            since = connected.pop(op.process, None)
            if since is not None:
                facts.losses.setdefault(op.process, []).append(op)
                facts.connections.setdefault(op.process, []).append((since, op.time))
            for key in [k for k in joined if k[0] == op.process]:
                _close(facts, joined, key, op.time)
        elif f == "read":
            topic = str(v.get("topic"))
            if op.type == "ok":
                reads[topic] = {str(i) for i in v.get("ids", ())}
                facts.unread.pop(topic, None)
            elif op.type == "invoke":
                facts.unread[topic] = "the read never completed"
            else:
                facts.unread[topic] = str(v.get("error") or "the read failed")
    if not ended and time is not None:
        facts.end = time
    end_of_faults = facts.heal if facts.heal is not None else facts.end
    for start_op, at in open_windows.values():
        facts.windows.append(_window(start_op, at, max(end_of_faults, at)))
    for key in list(joined):
        _close(facts, joined, key, float("inf"))
    for client, since in connected.items():
        facts.connections.setdefault(client, []).append((since, float("inf")))
    facts.windows.sort(key=lambda w: w.start)
    facts.reads = reads or None
    return facts


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
