"""The run loop: every resource is an `open_*` context manager, entered in order and left in
reverse, however the run ends.

    set up     toxiproxy-server (ours, or the user's), the cluster behind its proxies
               (`open_cluster`: proxies, Redis, nodes), the readiness probe until the cluster
               has formed (`harness.run.probe`), the joined swarm (`open_swarm`)
    workload   publishers publish for `duration` while the nemesis applies faults on schedule
               (the probe measures how long the cluster takes to re-form after each heal)
    heal       every fault undone (Toxiproxy reset, nodes resumed/started); the probe again
               (the final read must see a whole cluster); then the rest of `settle`
    final read each room's stored messages, for the durability check
    tear down  swarm, nodes, Redis, proxies, toxiproxy-server (each shielded and bounded)
    check      history.jsonl -> results.json, junit.xml, report.html; exit 0/1/3, 130

The history is written as the run goes (`history.jsonl`, or one part per swarm worker merged at
the end), so an interrupted run keeps what it recorded. Progress is reported through a callback;
the CLI renders it.
"""

from __future__ import annotations

import logging
import random
import secrets
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from .._clock import RunClock
from .._gc import paused_gc
from ..checkers import Assessment, CheckResult, assess_facts, facts_of
from ..checkers._distress import explain
from ..cluster import Cluster, open_cluster
from ..errors import HarnessError, HistoryError, where
from ..exits import Exit, Outcome
from ..faults import BroadcastFault, cuts_node_links
from ..grammar.behaviour import Endpoint
from ..history import Op, OpName
from ..infra.descriptors import check_swarm, raise_limit
from ..infra.gauge import LoadGauge
from ..infra.toxiproxy import open_toxiproxy
from ..scenario import Scenario, plan_clients, resolve, resolved_yaml
from ..swarm import Swarm, SwarmStats, open_swarm, open_worker_hosts, read_rooms
from .nemesis import Nemesis
from .probe import Probe, Reformations, open_probe, probe_topic, remaining, wait_formed
from .rundir import HistoryWriter, RunDir, RunOutcome, read_lean, write_outcome
from .sizing import crowded, placement_of, record_exhausted

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Progress:
    phase: str
    elapsed: float
    total: float
    stats: SwarmStats
    active_faults: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RunOptions:
    out: Path = Path("reports")
    seed: int | None = None
    toxiproxy: str | None = None  # host:port of a server to use instead of starting one
    junit_xml: Path | None = None
    progress: Callable[[Progress], None] | None = None
    join_timeout: float = JOIN_TIMEOUT
    wheelhouse: Path | None = None  # what worker hosts install (default: `default_wheelhouse`)


@dataclass(frozen=True, slots=True)
class RunResult:
    run_dir: Path
    seed: int
    concluded: RunOutcome
    outcome: Outcome = "unknown"
    exit_code: int = Exit.INFRA

    @property
    def results(self) -> tuple[CheckResult, ...]:
        return self.concluded.results

    @property
    def error(self) -> str | None:
        return self.concluded.error

    @property
    def interrupted(self) -> bool:
        return self.concluded.interrupted

    def explain(self) -> str:
        """Why the run is not valid, in the report's words (for assertion messages)."""
        if self.error is not None:
            return f"{self.outcome}: {self.error}"
        return self.concluded.assessment.explain()


@dataclass(slots=True)
class Run:
    """One run's live resources, as `open_run` yields them (tests drive faults through it)."""

    scenario: Scenario
    run_dir: RunDir
    clock: RunClock
    writer: HistoryWriter
    cluster: Cluster
    swarm: Swarm
    nemesis: Nemesis
    probe: Probe | None = None  # None: `cluster.ready.probe: off`
    phase: str = "setup"
    run_id: str = ""
    workload_start: float | None = None  # run clock; the scenario's clock is 0 there

    def record(self, f: OpName, value: dict[str, Any]) -> None:
        self.writer.record(Op(self.clock.now(), "runner", "info", f, value))

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        self.record("phase", {"phase": phase})


@asynccontextmanager
async def open_run(
    scenario: Scenario,
    run_dir: RunDir,
    options: RunOptions,
    writer: HistoryWriter,
    clock: RunClock | None = None,
) -> AsyncIterator[Run]:
    """Toxiproxy, the cluster, the joined swarm and the nemesis; all gone when the block ends."""
    clock = clock or RunClock()

    def record(value: dict[str, Any]) -> None:
        writer.record(Op(clock.now(), "runner", "info", "setup", value))

    writer.record(Op(clock.now(), "runner", "info", "phase", {"phase": "setup"}))
    run_id = f"r{secrets.token_hex(3)}"  # in every message id: runs on one store never collide
    record({"run_id": run_id, "deliver": scenario.app.deliver.event, "clock_origin": clock.origin})
    gauge = LoadGauge(writer, clock, "runner", machine=True)
    async with AsyncExitStack() as stack:
        watch = await stack.enter_async_context(trio.open_nursery())
        watch.start_soon(gauge.run)
        stack.callback(watch.cancel_scope.cancel)
        limit = raise_limit()
        plan = plan_clients(scenario, (), run_id)
        hosts, clients = None, len(plan.clients)
        if not scenario.clients.hosts:
            check_swarm(clients, scenario.clients.processes, limit)
        else:  # each host's own limit, checked there
            hosts = await stack.enter_async_context(
                open_worker_hosts(scenario.clients.hosts, run_dir.logs, options.wheelhouse, clients)
            )
            record({"worker_hosts": hosts.described()})
        placement = placement_of(scenario, plan, limit, spread=not options.toxiproxy)
        if options.toxiproxy and placement.servers[0].descriptors > limit:
            record({"notice": crowded(options.toxiproxy, placement)})
        toxiproxy = await stack.enter_async_context(
            open_toxiproxy(
                run_dir.logs / "toxiproxy.log",
                options.toxiproxy,
                None if options.toxiproxy else placement,
            )
        )
        record(
            {
                "toxiproxy": toxiproxy.version,
                "toxiproxy_pid": toxiproxy.pid,
                "descriptors": {
                    "limit": limit,
                    "servers": {
                        load.server: {
                            "pid": toxiproxy.pids.get(load.server),
                            "clients": load.clients,
                            "links": load.links,
                            "descriptors": load.descriptors,
                        }
                        for load in placement.servers
                    },
                },
            }
        )
        cluster = await stack.enter_async_context(
            open_cluster(
                scenario.cluster,
                run_dir=run_dir.path,
                toxiproxy=toxiproxy,
                # unique per run (also in one millisecond): names its proxies, labels containers
                prefix=f"h{int(time.time() * 1000) % 10**8}{secrets.token_hex(2)}",
                record=record,
                broadcasts=any(isinstance(f, BroadcastFault) for f in scenario.faults),
                cuts=any(cuts_node_links(f) for f in scenario.faults),
                listen=hosts.address if hosts is not None else None,
            )
        )
        watch.start_soon(_watch_exits, cluster, writer, clock)
        gauge.server = lambda: sum(node.cpu_seconds() for node in cluster.nodes.values())
        names = scenario.cluster.node_names
        ready = scenario.cluster.ready
        probe = None
        if ready.probing is not None:
            topic = probe_topic(ready.probing.topic, scenario.clients.topics, run_id)
            record({"probe_topic": topic})
            direct = [Endpoint(name=n, url=cluster.nodes[n].url) for n in names]
            probe = await stack.enter_async_context(
                open_probe(direct, topic, scenario.app, writer, clock, run_id)
            )
            await wait_formed(probe, ready.timeout)
        endpoints = [Endpoint(name=n, url=cluster.client_urls[n]) for n in names]
        writer.record(Op(clock.now(), "runner", "info", "phase", {"phase": "connect"}))
        swarm = await stack.enter_async_context(
            open_swarm(
                plan.model_copy(update={"endpoints": tuple(endpoints)}),
                recorder=writer,
                clock=clock,
                directory=run_dir.swarm,
                workers=scenario.clients.workers,
                join_timeout=options.join_timeout,
                gauge=gauge,
                hosts=hosts,
            )
        )
        nemesis = Nemesis(
            cluster,
            toxiproxy,
            writer,
            clock,
            swarm,
            random.Random(f"{scenario.seed}/nemesis"),
            scenario.seed,
        )
        if probe is not None:
            nemesis.on_heal = Reformations(probe, ready.reform_timeout, watch).healed
        yield Run(
            scenario, run_dir, clock, writer, cluster, swarm, nemesis, probe, "connect", run_id
        )


async def _watch_exits(cluster: Cluster, writer: HistoryWriter, clock: RunClock) -> None:
    """A node whose process ends when the harness did not stop it is a `node_exit` op (the
    server crashed, or exited by itself), once per process."""
    seen: set[tuple[str, int | None]] = set()
    while True:
        for name, node in cluster.nodes.items():
            status = node.exited_by_itself()
            if status is not None and (name, node.pid) not in seen:
                seen.add((name, node.pid))
                value = {"node": name, "status": status, "pid": node.pid}
                writer.record(Op(clock.now(), "runner", "info", "node_exit", value, name))
        await trio.sleep(0.1)


async def _execute(run: Run, progress: Callable[[Progress], None] | None) -> None:
    s = run.scenario
    async with trio.open_nursery() as nursery:
        if progress is not None:
            nursery.start_soon(_report_progress, run, progress)
        run.set_phase("workload")
        start = run.workload_start = run.clock.now()
        with trio.move_on_after(s.duration + 1.0):
            async with trio.open_nursery() as work:
                work.start_soon(_publish, run.swarm, s.duration)
                work.start_soon(run.nemesis.run, s.faults, start)
                await trio.sleep(s.duration)
                work.cancel_scope.cancel()
        run.set_phase("heal")
        await run.nemesis.heal()
        healed = run.clock.now()
        run.set_phase("settle")
        if run.probe is not None:  # the read must see the cluster whole, when it can be
            timeout = s.cluster.ready.reform_timeout
            await run.probe.measure("final", timeout, after="the final heal")
        await trio.sleep(remaining(s.settle, run.clock.now() - healed))
        run.set_phase("final_read")
        direct = [Endpoint(name=n.name, url=n.url) for n in run.cluster.nodes.values()]
        await read_rooms(direct, s.clients.topics, run.writer, run.clock, s.app, run.run_id)
        run.set_phase("teardown")
        nursery.cancel_scope.cancel()


async def _publish(swarm: Swarm, duration: float) -> None:
    await swarm.publish(duration=duration)


async def _report_progress(run: Run, callback: Callable[[Progress], None]) -> None:
    while True:
        stats = run.swarm.stats()
        callback(
            Progress(
                phase=run.phase,
                elapsed=run.clock.now() - (run.workload_start or run.clock.now()),
                total=run.scenario.duration + run.scenario.settle,
                stats=stats,
                active_faults=tuple(f.kind_name() for f in run.nemesis.active.values()),
            )
        )
        await trio.sleep(0.5)


@dataclass(slots=True)
class _Stop:
    """The run's stop switch: the first SIGINT/SIGTERM cancels `scope`; later ones only count."""

    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    interrupted: bool = False
    on_first: Callable[[], None] = lambda: None


@dataclass(slots=True)
class _Attempt:
    error: str | None = None
    nemesis_errors: list[str] = field(default_factory=list)
    swarm_parts: list[Path] = field(default_factory=list)
    phase: str = "setup"


async def run_scenario(scenario: Scenario, options: RunOptions) -> RunResult:
    seed = options.seed if options.seed is not None else scenario.seed
    scenario = resolve(scenario, seed)
    run_dir = RunDir.create(options.out, scenario.name, seed)
    run_dir.write_scenario(resolved_yaml(scenario))
    workers = scenario.clients.in_processes
    writer = HistoryWriter(run_dir.main_history if workers else run_dir.history)
    started = time.monotonic()
    clock = RunClock()
    attempt = _Attempt()
    stop = _Stop()

    def record_interrupt() -> None:
        if not writer.closed:  # a signal during the checks: results.json says it instead
            value = {"phase": attempt.phase}
            writer.record(Op(clock.now(), "runner", "info", "interrupted", value))

    stop.on_first = record_interrupt
    # One signal receiver for the whole call: the first SIGINT/SIGTERM cancels the run, later
    # ones are absorbed, so a second Ctrl-C cannot abort the teardown (nodes, proxies, toxics)
    # half-way, and one during the checks cannot lose results.json; the watchdog covers the
    # harness being killed outright.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as guard:
            guard.start_soon(_absorb, signals, stop)
            try:
                await _attempt(scenario, options, run_dir, writer, clock, stop, attempt)
            finally:
                writer.close()
            result = _conclude(scenario, options, run_dir, workers, attempt, stop, started)
            for _ in range(3):  # let a signal that came during the checks reach `_absorb`
                await trio.lowlevel.checkpoint()
            if stop.interrupted and not result.interrupted:
                result = _conclude(scenario, options, run_dir, workers, attempt, stop, started)
            guard.cancel_scope.cancel()
    return result


async def _absorb(signals: AsyncIterator[int], stop: _Stop) -> None:
    async for _ in signals:
        if not stop.interrupted:
            stop.interrupted = True
            stop.on_first()
            stop.scope.cancel()


async def _attempt(
    scenario: Scenario,
    options: RunOptions,
    run_dir: RunDir,
    writer: HistoryWriter,
    clock: RunClock,
    stop: _Stop,
    attempt: _Attempt,
) -> None:
    """Set up, run and tear down; errors are kept in `attempt`, never raised."""
    try:
        with stop.scope:
            async with open_run(scenario, run_dir, options, writer, clock) as run:
                attempt.nemesis_errors = run.nemesis.errors
                try:
                    await _execute(run, options.progress)
                finally:
                    attempt.phase = run.phase
                    attempt.swarm_parts = list(getattr(run.swarm, "parts", []))
    except* (HarnessError, OSError) as group:
        attempt.error = "; ".join(str(e) for e in _leaves(group))
        log.debug("run failed: %s", attempt.error)
    except* Exception as group:  # a harness bug: exit 3 with what was recorded, never exit 1
        attempt.error = "the harness failed: " + "; ".join(where(e) for e in _leaves(group))
        log.exception("run failed")
    finally:
        record_exhausted(run_dir, writer, clock)


def _conclude(
    scenario: Scenario,
    options: RunOptions,
    run_dir: RunDir,
    workers: bool,
    attempt: _Attempt,
    stop: _Stop,
    started: float,
) -> RunResult:
    """Merge the history, run the checks, write every artefact (once per outcome)."""
    if workers and not run_dir.history.exists():
        parts = attempt.swarm_parts or sorted(run_dir.swarm.glob("history.*.jsonl"))
        run_dir.merge_history(parts)
    error, interrupted = attempt.error, stop.interrupted
    if attempt.nemesis_errors and error is None:
        error = "nemesis: " + "; ".join(attempt.nemesis_errors)
    if error is not None and not interrupted and run_dir.history.exists():
        with suppress(HistoryError, OSError):
            note = explain(run_dir.read_history())
            error = error if note is None else f"{error}; {note}"
    assessment = Assessment(())
    if error is None and not interrupted:
        assessment = check_run(run_dir, scenario)
    outcome = RunOutcome(
        scenario.name,
        scenario.source,
        scenario.seed,
        assessment,
        time.monotonic() - started,
        error,
        interrupted,
    )
    write_outcome(run_dir, outcome, options.junit_xml)
    return RunResult(run_dir.path, scenario.seed, outcome, outcome.outcome, outcome.exit_code)


def _leaves(exc: BaseException) -> list[BaseException]:
    """The real errors inside trio's nested ExceptionGroups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def check_run(run_dir: RunDir, scenario: Scenario) -> Assessment:
    """The scenario's checks over the run's history file, read lean (deliveries stay rows)."""
    with paused_gc(freeze=True):  # the history is read once, near the end of the process
        facts = facts_of(read_lean(run_dir.history))
        return assess_facts(facts, scenario.checks, scenario.checks_off)


__all__ = ["Progress", "Run", "RunOptions", "RunResult", "check_run", "open_run", "run_scenario"]
