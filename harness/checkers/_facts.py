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
* the readiness probe (`harness.run.probe`): the ids of its probes (`probe` invoke ops), which no
  check counts wherever they are delivered, and its measurements of the cluster's formation
  (`probe` info ops): when each began (a heal) and how long the cluster took;
* the harness's own load (`load` ops) and the symptoms a slow harness shows (`heartbeat_timeout`,
  publishes that timed out), from which `harness.checkers._distress` finds the windows where the
  harness could not judge; `workload`, when the workload phase began;
* what the server sent that was not the protocol (`bad_frame` ops), the phantoms of a flood that
  were only counted (`recv_foreign`), and nodes that exited when nothing stopped them
  (`node_exit`).

Observation ends where the runner's `teardown` phase begins: the disconnects of its own shutdown
are not losses. `_scan.facts_of` makes the facts of a history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..history import Op
from ._deliveries import Codes, Deliveries, Messages
from ._formation import Formation

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
    link_bytes: int | None = None  # what crossed the links it cut or slowed (Toxiproxy's count)
    broadcasts_taken: int | None = None  # what its message-level rules took
    packets_dropped: int | None = None  # what its packet rules dropped (network: isolated)

    @property
    def idle(self) -> bool:
        """It touched nothing: no byte ever crossed its links, its rules took no broadcast, or
        its packet rules dropped no packet. Its window then excuses nothing (`delivery`) and
        the run's warnings say so."""
        return 0 in (self.link_bytes, self.broadcasts_taken, self.packets_dropped)

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
    cursors: dict[tuple[str, str, str], Any] = field(default_factory=dict)  # a join's `cursor`
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
    foreign: dict[str, int] = field(default_factory=dict)  # client -> phantoms only counted
    bad_frames: list[Op] = field(default_factory=list)  # frames a client could not read
    node_exits: list[Op] = field(default_factory=list)  # nodes that ended when not stopped
    exhausted: list[Op] = field(default_factory=list)  # processes out of file descriptors
    formations: list[Formation] = field(default_factory=list)
    symptoms: list[Op] = field(default_factory=list)
    distress: tuple[Distress, ...] = ()  # set by `assess`, read by the timing checks

    def windows_near(self, start: float, end: float, margin: float = 0.0) -> list[dict[str, Any]]:
        return [w.to_json() for w in self.windows if w.overlaps(start, end, margin)]


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
