"""The readiness probe: is the cluster one cluster yet, judged through the app's own delivery path.

A run must not start its workload before the cluster under test has formed, and no server owes
the harness a `/stats` to say when that is (a real Phoenix app clustered by libcluster forms
seconds after it answers health, and has none). So the harness asks the app itself: one probe
client per node (the swarm's client, with phoenix.js semantics, the scenario's socket params and
join payload, and short backoffs of its own) connects to that node directly (not through a
proxy: a fault on the client links is not the cluster's) and joins the probe topic, a topic of
the run's own (`room:probe-r1a2b3c`: the first workload topic's prefix, so the app's router takes
it, and a name no workload topic has). A measurement publishes one probe a node every
`INTERVAL` (the first as soon as that node's probe client is joined) through the app's own
publish event, with a run-unique id (`r1a2b3c-probe-n2-7`), and
is over when every probe client has received a probe of every node (its own included: the
publish and delivery path works at all) published since the measurement began. The time each
pair took is its formation time.

When: before the workload (`formed`; not within `ready.timeout` is exit 3, naming the pair),
after each heal of a fault on a node or a node-to-node link (`reformed`, measured while the
workload goes on, on the probe topic only), and after the final heal (`final`, before the final
read, so the read sees a whole cluster). A re-formation that never completes is recorded and the
run goes on: a server that never re-forms is for `delivery` to catch, not an infrastructure error.

History: the probe clients' own protocol ops are not the workload's and are not recorded; each
probe published is a `probe` invoke op (so its id is known to be a probe, and no checker counts
it), each measurement a `probe` info op when it ends, with its figures (`kind`, `after`,
`seconds`, `pairs`, `missing`, and `elapsed`: it began that long before the op), which
`harness.checkers` turns into results.json's `formation`.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import trio

from .._clock import RunClock
from ..errors import ClusterError
from ..grammar.behaviour import Behaviour, ClientPlan, ClientsSpec, Endpoint
from ..grammar.contract import AppSpec
from ..grammar.templates import render
from ..history import Op, Recorder
from ..swarm import SwarmClient

INTERVAL = 0.2  # between one node's probes while a measurement is on
TICK = 0.02  # how often a measurement looks for a probe client that has (re)joined
PROCESS = "probe"
# short backoffs: a probe client that waits out phoenix.js's 1 s rejoin would be measured, not
# the cluster
CLIENTS = ClientsSpec.model_validate(
    {
        "timings": {
            "reconnect_after": ["10ms", "20ms", "50ms"],
            "rejoin_after": ["50ms", "100ms", "200ms"],
            "timeout": "5s",
        }
    }
)
Kind = Literal["formed", "reformed", "final"]


def probe_topic(template: str | None, topics: Sequence[str], run_id: str) -> str:
    """The probe's topic: the scenario's template with `{run}` filled, or the first workload
    topic's prefix (up to its last `:`) and `probe-<run>`."""
    if template is not None:
        return str(render(template, {"run": run_id}))
    first = topics[0] if topics else ""
    prefix = first[: first.rfind(":") + 1] if ":" in first else ""
    return f"{prefix}probe-{run_id}"


@dataclass(frozen=True, slots=True)
class Formation:
    """One measurement: how long each pair of nodes took to carry a probe from one to the other
    (`pairs["n1->n2"]`: n2's probe client received a probe published on n1), from `started` (the
    run's clock). `seconds` is the whole cluster's (the slowest pair), None if some pair never
    got through within `timeout`."""

    kind: Kind
    started: float
    timeout: float
    pairs: Mapping[str, float | None]
    after: str = ""  # the fault whose heal began it ("kill n2"), or "the final heal"
    fault: str | None = None  # its id
    acknowledged: Mapping[str, bool] = field(default_factory=dict)  # node -> a probe was acked
    joined: Mapping[str, bool] = field(default_factory=dict)  # node -> its probe client joined
    refused: str | None = None  # the app refused the probe (a join or a publish), and why

    @property
    def seconds(self) -> float | None:
        values = list(self.pairs.values())
        if not values or any(v is None for v in values):
            return None
        return max(v for v in values if v is not None)

    @property
    def complete(self) -> bool:
        return self.seconds is not None

    @property
    def missing(self) -> list[str]:
        return [pair for pair, took in self.pairs.items() if took is None]

    def explain(self) -> str:
        """Why the measurement did not complete, pair by pair (first few), in words."""
        if self.refused is not None:
            return self.refused
        said: list[str] = []
        for pair in self.missing[:3]:
            origin, _, receiver = pair.partition("->")
            if not self.joined.get(receiver, False):
                said.append(f"{receiver}'s probe client never joined within {self.timeout:g} s")
                continue
            if not self.joined.get(origin, False):
                said.append(f"{origin}'s probe client never joined within {self.timeout:g} s")
                continue
            whose = "its own probe" if origin == receiver else f"{origin}'s probe"
            acked = (
                f"{origin} acknowledged it"
                if self.acknowledged.get(origin)
                else f"{origin} never acknowledged one"
            )
            said.append(f"{receiver} never received {whose} within {self.timeout:g} s; {acked}")
        more = len(self.missing) - len(said)
        text = "; ".join(dict.fromkeys(said))
        return text + (f" (and {more} more pairs)" if more > 0 else "")

    def to_value(self) -> dict[str, Any]:
        """The `probe` info op's value."""
        seconds = self.seconds
        return {
            "kind": self.kind,
            "after": self.after,
            "fault": self.fault,
            "seconds": None if seconds is None else round(seconds, 3),
            "pairs": {p: None if s is None else round(s, 3) for p, s in self.pairs.items()},
            "missing": self.missing,
            "timeout": self.timeout,
            **({"reason": self.explain()} if not self.complete else {}),
        }


@dataclass(slots=True)
class _Measurement:
    kind: Kind
    started: float
    first_seq: int
    timeout: float
    after: str
    fault: str | None
    got: dict[tuple[str, str], float] = field(default_factory=dict)
    done: trio.Event = field(default_factory=trio.Event)


class Probe:
    """One probe client per node, joined to the probe topic; `measure` publishes probes until
    every node has received every node's probe."""

    def __init__(
        self,
        nodes: Sequence[Endpoint],
        topic: str,
        app: AppSpec,
        recorder: Recorder,
        clock: RunClock,
        run_id: str,
    ) -> None:
        self.topic = topic
        self.names = tuple(n.name for n in nodes)
        self.app = app
        self.recorder = recorder
        self.clock = clock
        self.run_id = run_id
        self.seq = 0
        self.sent: dict[str, tuple[str, int]] = {}  # probe id -> (origin node, seq)
        self.acknowledged: dict[str, bool] = dict.fromkeys(self.names, False)
        self.refused: str | None = None
        self._active: list[_Measurement] = []
        behaviour = Behaviour(clients=CLIENTS, app=app, run_id=run_id, role="publisher")
        self.clients = {
            node.name: SwarmClient(
                ClientPlan(id=f"{PROCESS}-{node.name}", role="publisher", topics=(topic,)),
                behaviour,
                (node,),
                _Listener(self, node.name),
                clock,
                PROCESS,
            )
            for node in nodes
        }

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for client in self.clients.values():
                nursery.start_soon(client.run)
            task_status.started()

    def joined(self) -> dict[str, bool]:
        return {name: client.ready for name, client in self.clients.items()}

    async def measure(
        self, kind: Kind, timeout: float, *, after: str = "", fault: str | None = None
    ) -> Formation:
        """Publish probes every `INTERVAL` until every pair got through or `timeout`; record the
        figures as a `probe` info op and return them."""
        started = self.clock.now()
        m = _Measurement(kind, started, self.seq + 1, timeout, after, fault)
        self._active.append(m)
        last: dict[str, float] = {}
        try:
            with trio.move_on_after(timeout):
                while not m.done.is_set():
                    refused = self.refused or _refusal(self.clients.values())
                    if refused is not None and kind == "formed":
                        self.refused = refused
                        break
                    now = self.clock.now()
                    for name, client in self.clients.items():
                        if client.ready and now - last.get(name, -INTERVAL) >= INTERVAL:
                            self._publish(name, client)
                            last[name] = now
                    with trio.move_on_after(TICK):
                        await m.done.wait()
        finally:
            self._active.remove(m)
        pairs = {f"{a}->{b}": m.got.get((a, b)) for b in self.names for a in self.names}
        formation = Formation(
            kind,
            started,
            timeout,
            pairs,
            after,
            fault,
            dict(self.acknowledged),
            self.joined(),
            self.refused if kind == "formed" else None,
        )
        now = self.clock.now()
        value = {**formation.to_value(), "elapsed": round(now - started, 6)}
        self.recorder.record(Op(now, PROCESS, "info", "probe", value))
        return formation

    def _publish(self, name: str, client: SwarmClient) -> None:
        self.seq += 1
        probe_id = f"{self.run_id}-probe-{name}-{self.seq}"
        values = {
            "id": probe_id,
            "body": "probe",
            "client": client.id,
            "publisher": client.id,
            "topic": self.topic,
            "seq": self.seq,
            "run": self.run_id,
        }
        self.sent[probe_id] = (name, self.seq)
        value = {"id": probe_id, "topic": self.topic}
        self.recorder.record(Op(self.clock.now(), PROCESS, "invoke", "probe", value, name))
        payload = render(self.app.publish.payload, values)
        client.publish(self.topic, payload, probe_id, self.seq, timeout=CLIENTS.timings.timeout)

    def _received(self, receiver: str, probe_id: Any) -> None:
        sent = self.sent.get(probe_id) if isinstance(probe_id, str) else None
        if sent is None:
            return
        origin, seq = sent
        now = self.clock.now()
        for m in self._active:
            if seq >= m.first_seq and (origin, receiver) not in m.got:
                m.got[(origin, receiver)] = now - m.started
                if len(m.got) == len(self.names) ** 2:
                    m.done.set()

    def _outcome(self, op: Op) -> None:
        sent = self.sent.get(str(op.value.get("id")))
        if sent is None:
            return
        if op.type == "ok":
            self.acknowledged[sent[0]] = True
        elif op.type == "fail" and self.refused is None:
            self.refused = (
                f"{sent[0]} refused the readiness probe's publish on {self.topic}:"
                f" {op.value.get('reason')!r}; {_HINT}"
            )


_HINT = (
    "name a topic and publish the app accepts in `cluster.ready.probe.topic`, or turn the probe"
    " off with `cluster.ready: {probe: off}`"
)


def _refusal(clients: Any) -> str | None:
    for client in clients:
        if client.refused:
            return f"the readiness probe was refused: {client.refused}; {_HINT}"
    return None


class _Listener:
    """A probe client's recorder: what the probe needs of its ops (deliveries, publish
    outcomes), nothing written to the history."""

    def __init__(self, probe: Probe, node: str) -> None:
        self.probe = probe
        self.node = node

    def record(self, op: Op) -> None:
        if op.f == "recv" and op.value.get("topic") == self.probe.topic:
            if op.value.get("event") == self.probe.app.deliver.event:
                self.probe._received(self.node, op.value.get("id"))
        elif op.f == "publish" and op.type != "invoke":
            self.probe._outcome(op)


@asynccontextmanager
async def open_probe(
    nodes: Sequence[Endpoint],
    topic: str,
    app: AppSpec,
    recorder: Recorder,
    clock: RunClock,
    run_id: str,
) -> AsyncIterator[Probe]:
    """The probe clients, connected and joining; gone when the block ends."""
    probe = Probe(nodes, topic, app, recorder, clock, run_id)
    async with trio.open_nursery() as nursery:
        await nursery.start(probe.run)
        yield probe
        nursery.cancel_scope.cancel()


async def wait_formed(probe: Probe, timeout: float) -> Formation:
    """The first formation: exit 3 (a `ClusterError`) naming the pairs when it does not come."""
    formation = await probe.measure("formed", timeout)
    if not formation.complete:
        raise ClusterError(f"the cluster did not form: {formation.explain()}")
    return formation


class Reformations:
    """Measurements after heals (`Nemesis.on_heal`), each in the background while the workload
    goes on."""

    def __init__(self, probe: Probe, timeout: float, nursery: trio.Nursery) -> None:
        self.probe = probe
        self.timeout = timeout
        self.nursery = nursery

    def healed(self, fault_id: str, label: str) -> None:
        async def measure() -> None:
            await self.probe.measure("reformed", self.timeout, after=label, fault=fault_id)

        self.nursery.start_soon(measure)


def remaining(settle: float, spent: float) -> float:
    """What is left of `settle` after `spent` seconds (never negative, never NaN)."""
    left = settle - spent
    return left if math.isfinite(left) and left > 0 else 0.0
