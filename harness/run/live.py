"""A cluster you drive by hand: the scenario's nodes, proxies and swarm, faults applied now.

A scenario run (`run_scenario`) follows its schedule; a team's own tests often want the parts
instead: "start my cluster behind proxies, connect a client with the phoenix.js semantics, kill
n2 now, then assert on what my client saw". `open_live` sets up exactly what a run sets up
(`open_run`: Toxiproxy, the cluster, the joined swarm, the nemesis) and hands out:

    live.urls                   node -> the ws URL clients use (through its `clients->` proxy)
    await live.apply(fault)     one fault now, written as in a scenario (no `at:`); returns its id
                                once it has started; `await live.stopped(id)` waits for its end
    await live.wait_joined()    until the swarm and the hand-made clients are joined again
    await live.client(...)      one more client of the swarm's kind (reconnect, rejoin, heartbeat
                                as phoenix.js), recording into the same history, joined on return
    live.ops()                  the history so far; `live.assess()` runs the scenario's checks on it

Everything is torn down when the block ends, as after a run (processes by PID, proxies of this
run only). The pytest plugin's fixtures are thin wrappers of this module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
import yaml
from pydantic import ValidationError

from ..checkers import Assessment, assess
from ..errors import HarnessError
from ..faults import KINDS, Grammar
from ..grammar.behaviour import ClientPlan, Endpoint
from ..grammar.templates import render
from ..history import Op, fault_edge
from ..scenario import Scenario, parse_scenario, plan_clients, read_scenario
from ..swarm import SwarmClient
from .rundir import HistoryWriter, RunDir, read_history
from .runner import Run, RunOptions, open_run


class LiveError(HarnessError):
    """A fault or a client asked of a live cluster that it cannot have."""


def load_scenario(scenario: Scenario | str | Path) -> Scenario:
    """A scenario from a model, a path to a YAML file, or YAML text."""
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, Path) or (
        "\n" not in scenario and scenario.endswith((".yaml", ".yml"))
    ):
        path = Path(scenario)
        return read_scenario(path)
    return parse_scenario(scenario, "<scenario text>")


class LiveClient:
    """One hand-made client; its ops are in the run's history under its id."""

    def __init__(self, live: Live, client: SwarmClient, scope: trio.CancelScope) -> None:
        self.live = live
        self.swarm_client = client
        self.id = client.id
        self._scope = scope

    @property
    def topics(self) -> tuple[str, ...]:
        return self.swarm_client.topics

    def joined(self) -> bool:
        return self.swarm_client.joined_topics() == len(self.topics)

    async def wait_joined(self, *, timeout: float = 10.0) -> None:
        await _wait(self.joined, timeout, f"{self.id} joined to {', '.join(self.topics)}")

    def ops(self) -> list[Op]:
        return [op for op in self.live.ops() if op.process == self.id]

    def received(self, topic: str | None = None) -> list[str]:
        """Ids of the app's deliveries this client received, in arrival order."""
        return [
            str(op.value.get("id"))
            for op in self.ops()
            if op.f == "recv"
            and op.value.get("event") == self.swarm_client.behaviour.app.deliver.event
            and (topic is None or op.value.get("topic") == topic)
        ]

    async def wait_received(
        self, message_id: str, topic: str | None = None, *, timeout: float = 10.0
    ) -> None:
        """Until the app delivered `message_id` to this client (on `topic`, if given)."""
        where = f" on {topic}" if topic else ""
        await _wait(
            lambda: message_id in self.received(topic),
            timeout,
            f"{self.id} received {message_id}{where}",
        )

    def publish(self, topic: str, body: str = "hello") -> str:
        """Push the app's publish event (its `app.publish` template); returns the message id."""
        self.live._published += 1
        seq = self.live._published
        message_id = f"{self.live.run.run_id}-{self.id}-{seq}"
        values: dict[str, Any] = {"id": message_id, "body": body, "client": self.id}
        values |= {"topic": topic, "seq": seq, "publisher": self.id, "run": self.live.run.run_id}
        payload = render(dict(self.live.scenario.app.publish.payload), values)
        self.swarm_client.publish(topic, payload, message_id, seq)
        return message_id

    async def close(self) -> None:
        self._scope.cancel()


class Live:
    def __init__(self, run: Run, nursery: trio.Nursery) -> None:
        self.run = run
        self.scenario = run.scenario
        self._nursery = nursery
        self._faults = 0
        self._clients = 0
        self._published = 0
        self._made: list[LiveClient] = []

    @property
    def urls(self) -> dict[str, str]:
        return dict(self.run.cluster.client_urls)

    @property
    def run_dir(self) -> Path:
        return self.run.run_dir.path

    def ops(self) -> list[Op]:
        self.run.writer.flush()
        return read_history(self.run.run_dir.history)

    def assess(self, checks: Sequence[str] | None = None) -> Assessment:
        """The scenario's checks (or those named, with the scenario's options) over the history
        recorded so far. `durability` needs the final read a run ends with: unknown here."""
        options = self.scenario.checks
        chosen = options if checks is None else {name: options.get(name, {}) for name in checks}
        return assess(self.ops(), chosen, self.scenario.checks_off if checks is None else ())

    async def apply(self, fault: Mapping[str, Any] | str) -> str:
        """Start one fault now (`{kind: kill, node: n2, restart_after: 1s}`); returns its id
        once the nemesis has recorded its start."""
        data = yaml.safe_load(fault) if isinstance(fault, str) else dict(fault)
        if not isinstance(data, dict) or data.get("kind") not in KINDS:
            raise LiveError(f"a fault is a mapping with a kind among {', '.join(KINDS)}: {fault}")
        grammar = Grammar(self.scenario.cluster.topology, None)
        try:
            parsed = KINDS[data["kind"]].model_validate({"at": 0.0, **data}, context=grammar)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'fault'}: {e['msg']}" for e in exc.errors()
            )
            raise LiveError(f"not a fault: {problems}") from None
        self._faults += 1
        fault_id = f"live{self._faults}"
        self._nursery.start_soon(self.run.nemesis.apply_now, fault_id, parsed)
        await _wait(lambda: self._phase(fault_id, "start"), 10, f"fault {fault_id} started")
        return fault_id

    async def stopped(self, fault_id: str, *, timeout: float = 60.0) -> None:
        await _wait(lambda: self._phase(fault_id, "stop"), timeout, f"fault {fault_id} stopped")

    async def wait_joined(self, *, timeout: float = 15.0) -> None:
        """Until the swarm and every hand-made client are joined to all their topics."""
        with trio.move_on_after(timeout) as scope:
            await self.run.swarm.wait_joined(timeout=timeout)
            for client in self._made:
                await client.wait_joined(timeout=timeout)
        if scope.cancelled_caught:
            raise LiveError(f"not within {timeout:g} s: every client joined again")

    async def heal(self) -> None:
        await self.run.nemesis.heal()

    async def client(
        self,
        node: str | None = None,
        topics: Sequence[str] | None = None,
        *,
        join_timeout: float = 10.0,
    ) -> LiveClient:
        """A new client on `node` (default: the first), joined to `topics` (default: the
        scenario's) with the scenario's timings and app contract; joined when this returns."""
        names = self.scenario.cluster.node_names
        node = node or names[0]
        if node not in names:
            raise LiveError(f"no node {node!r}; the cluster has {', '.join(names)}")
        endpoints = [Endpoint(name=n, url=self.run.cluster.client_urls[n]) for n in names]
        behaviour = plan_clients(self.scenario, endpoints, self.run.run_id).behaviours["client"]
        self._clients += 1
        client_id = f"live{self._clients}"
        plan = ClientPlan(
            id=client_id,
            topics=tuple(topics) if topics else self.scenario.clients.topics,
            first_node=names.index(node),
        )
        clock = self.run.clock
        swarm_client = SwarmClient(plan, behaviour, endpoints, self.run.writer, clock, client_id)
        scope = trio.CancelScope()

        async def run() -> None:
            with scope:
                await swarm_client.run()

        self._nursery.start_soon(run)
        live_client = LiveClient(self, swarm_client, scope)
        self._made.append(live_client)
        await live_client.wait_joined(timeout=join_timeout)
        return live_client

    def _phase(self, fault_id: str, phase: str) -> bool:
        return any(
            op.f == "fault" and op.value.get("id") == fault_id and fault_edge(op) == phase
            for op in self.ops()
        )


@asynccontextmanager
async def open_live(scenario: Scenario | str | Path, out: Path) -> AsyncIterator[Live]:
    """The scenario's cluster, proxies and joined swarm, ready to be driven by hand."""
    scenario = load_scenario(scenario)
    run_dir = RunDir.create(out, scenario.name, scenario.seed)
    writer = HistoryWriter(run_dir.history)
    try:
        async with (
            open_run(scenario, run_dir, RunOptions(out=out), writer) as run,
            trio.open_nursery() as nursery,
        ):
            run.set_phase("workload")
            yield Live(run, nursery)
            nursery.cancel_scope.cancel()
    finally:
        writer.close()


async def _wait(predicate: Any, timeout: float, what: str) -> None:
    with trio.move_on_after(timeout):
        while not predicate():  # noqa: ASYNC110 - state owned by other tasks and processes
            await trio.sleep(0.02)
        return
    raise LiveError(f"not within {timeout:g} s: {what}")
