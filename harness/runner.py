"""The run loop: one nursery owns everything a run starts, and everything is gone at the end.

    set up     toxiproxy-server (ours, or the user's), one proxy per client->node and per
               directed node->node link (names unique to the run), the nodes, the swarm
    workload   publishers publish for `duration` while the nemesis applies faults on schedule
    heal       every fault undone (Toxiproxy reset, nodes resumed/started); then `settle`
    final read each room's stored messages, for the durability check
    tear down  swarm, nodes, proxies, toxiproxy-server (shielded: runs on Ctrl-C too)
    check      history.jsonl -> results.json, junit.xml; exit 0/1/3 (130 when interrupted)

The history is written as the run goes (`history.jsonl`, or one part per swarm worker merged at
the end), so an interrupted run keeps what it recorded. Progress is reported through a callback;
the CLI renders it.
"""

from __future__ import annotations

import logging
import random
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio
import yaml

from . import __version__, junit
from .checkers import CheckResult, check_all, combine
from .cluster import REFERENCE_COMMAND, LocalNode, mesh_specs, wait_links
from .errors import ClusterError, HarnessError
from .files import HistoryWriter, merge_parts, read_history, write_json, write_report
from .history import Op
from .nemesis import Nemesis, Targets, with_seed_faults
from .redis_server import RedisServer
from .scenario import CHECK_DESCRIPTIONS, Fault, Scenario
from .swarm import (
    Node,
    RunClock,
    Swarm,
    SwarmConfig,
    SwarmProcesses,
    plan_clients,
    read_rooms,
)
from .toxiproxy import ToxiproxyClient, ToxiproxyError, ToxiproxyServer

log = logging.getLogger(__name__)

EXIT_VALID, EXIT_INVALID, EXIT_INFRA, EXIT_INTERRUPTED = 0, 1, 3, 130
JOIN_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Progress:
    phase: str
    elapsed: float
    total: float
    clients: int = 0
    connected: int = 0
    joined: int = 0
    published: int = 0
    acknowledged: int = 0
    received: int = 0
    active_faults: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RunOptions:
    out: Path = Path("reports")
    seed: int | None = None
    toxiproxy: str | None = None  # host:port of a server to use instead of starting one
    junit_xml: Path | None = None
    progress: Callable[[Progress], None] | None = None
    join_timeout: float = JOIN_TIMEOUT


@dataclass(frozen=True, slots=True)
class RunResult:
    run_dir: Path
    seed: int
    results: tuple[CheckResult, ...] = ()
    error: str | None = None
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.error is not None:
            return EXIT_INFRA
        validity = combine(list(self.results))
        return {"valid": EXIT_VALID, "invalid": EXIT_INVALID}.get(validity, EXIT_INFRA)


def resolved(scenario: Scenario) -> dict[str, Any]:
    """The scenario as run: seed fixed, random faults expanded (replayable)."""
    data = dict(scenario.raw)
    data["seed"] = scenario.seed
    data["faults"] = [
        {
            "at": f"{f.at:g}s",
            **({"for": f"{f.duration:g}s"} if f.duration is not None else {}),
            "kind": f.kind,
            **_yaml_params(f),
        }
        for f in scenario.faults
    ]
    return data


def _yaml_params(fault: Fault) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fault.params.items():
        if key == "links":
            out["link"] = list(value) if len(value) > 1 else value[0]
        elif key == "groups":
            out[key] = [list(g) for g in value]
        elif isinstance(value, tuple):
            out[key] = list(value)
        elif key in ("latency", "jitter", "delay", "timeout") and fault.kind != "slicer":
            out[key] = f"{value}ms"
        elif key == "restart_after" and value is not None:
            out[key] = f"{value:g}s"
        elif value is not None:
            out[key] = value
    return out


def run_directory(out: Path, name: str, seed: int) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / name / f"{stamp}-seed{seed}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = out / name / f"{stamp}-seed{seed}-{suffix}"
    (path / "logs").mkdir(parents=True)
    return path


class Run:
    """State of one run; `execute` drives it."""

    def __init__(self, scenario: Scenario, options: RunOptions, run_dir: Path) -> None:
        self.scenario = scenario
        self.options = options
        self.run_dir = run_dir
        self.clock = RunClock()
        self.writer = HistoryWriter(
            run_dir / ("history.main.jsonl" if scenario.clients.workers > 1 else "history.jsonl")
        )
        self.prefix = f"h{int(time.time() * 1000) % 10**8}"
        self.toxiproxy_server: ToxiproxyServer | None = None
        self.toxiproxy: ToxiproxyClient | None = None
        self.created_proxies: list[str] = []
        self.redis: RedisServer | None = None
        self.nodes: dict[str, LocalNode] = {}
        self.client_urls: dict[str, str] = {}  # node -> ws URL through its clients proxy
        self.swarm: Swarm | SwarmProcesses | None = None
        self.nemesis: Nemesis | None = None
        self.phase = "setup"
        self.started = time.monotonic()

    def record(self, f: str, value: dict[str, Any]) -> None:
        self.writer.record(Op(self.clock.now(), "runner", "info", f, value))

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        self.record("phase", {"phase": phase})

    async def setup(self, nursery: trio.Nursery) -> Nemesis:
        """Toxiproxy, the proxied cluster, the joined swarm; the nemesis that can hurt them."""
        await self._start_toxiproxy()
        proxies = await self._start_cluster()
        await self._start_swarm(nursery)
        assert self.toxiproxy is not None
        assert self.swarm is not None
        self.nemesis = Nemesis(
            Targets(self.nodes, proxies),
            self.toxiproxy,
            self.writer,
            self.clock,
            self.swarm,
            random.Random(f"{self.scenario.seed}/nemesis"),
        )
        return self.nemesis

    async def execute(self) -> None:
        s = self.scenario
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._report_progress)
            await self.setup(nursery)
            assert self.nemesis is not None
            self.set_phase("workload")
            start = self.clock.now()
            with trio.move_on_after(s.duration + 1.0):
                async with trio.open_nursery() as work:
                    work.start_soon(self._publish, s.duration)
                    work.start_soon(self.nemesis.run, s.faults, start)
                    await trio.sleep(s.duration)
                    work.cancel_scope.cancel()
            self.set_phase("heal")
            await self.nemesis.heal()
            self.set_phase("settle")
            await trio.sleep(s.settle)
            self.set_phase("final_read")
            direct = [Node(n.name, n.url) for n in self.nodes.values()]
            await read_rooms(direct, s.clients.topics, self.writer, self.clock)
            self.set_phase("teardown")
            nursery.cancel_scope.cancel()

    async def _publish(self, duration: float) -> None:
        if isinstance(self.swarm, Swarm):
            await self.swarm.publish(duration=duration)
        elif self.swarm is not None:
            await self.swarm.publish(duration)
            await trio.sleep(duration)

    async def _start_toxiproxy(self) -> None:
        if self.options.toxiproxy:
            host, _, port = self.options.toxiproxy.rpartition(":")
            self.toxiproxy = ToxiproxyClient(host or "127.0.0.1", int(port))
        else:
            self.toxiproxy_server = ToxiproxyServer(self.run_dir / "logs" / "toxiproxy.log")
            await self.toxiproxy_server.start()
            self.toxiproxy = self.toxiproxy_server.client
        version = await self.toxiproxy.version()
        pid = self.toxiproxy_server.pid if self.toxiproxy_server is not None else None
        self.record("setup", {"toxiproxy": version, "toxiproxy_pid": pid})

    async def _proxy(self, link: str, upstream: str) -> tuple[str, int]:
        assert self.toxiproxy is not None
        name = f"{self.prefix}_{link.replace('->', '_to_')}"
        proxy = await self.toxiproxy.create_proxy(name, upstream)
        self.created_proxies.append(name)
        return name, proxy.port

    async def _start_cluster(self) -> dict[str, str]:
        s = self.scenario
        names = s.cluster.node_names
        store = f"sqlite:///{(self.run_dir / 'store.sqlite').resolve()}"
        specs = mesh_specs(names, store=store, bugs=s.cluster.bugs)
        proxies: dict[str, str] = {}
        by_name = {spec.name: spec for spec in specs}
        for spec in specs:
            proxy, port = await self._proxy(f"clients->{spec.name}", f"127.0.0.1:{spec.port}")
            proxies[f"clients->{spec.name}"] = proxy
            self.client_urls[spec.name] = f"ws://127.0.0.1:{port}/socket"
        wired = []
        if s.cluster.pubsub == "redis":
            self.redis = RedisServer(self.run_dir / "logs" / "redis.log")
            await self.redis.start()
            self.record("setup", {"redis": self.redis.address, "redis_pid": self.redis.pid})
        for spec in specs:
            if self.redis is not None:
                link = f"{spec.name}->redis"
                proxy, port = await self._proxy(link, self.redis.address)
                proxies[link] = proxy
                wired.append(replace(spec, peers={}, pubsub=f"redis://127.0.0.1:{port}"))
                continue
            peers = {}
            for peer in spec.peers:
                link = f"{spec.name}->{peer}"
                proxy, port = await self._proxy(link, f"127.0.0.1:{by_name[peer].pubsub_port}")
                proxies[link] = proxy
                peers[peer] = ("127.0.0.1", port)
            wired.append(replace(spec, peers=peers))
        template = s.cluster.command or REFERENCE_COMMAND
        for spec in wired:
            node = LocalNode(spec, self.run_dir / "logs" / f"{spec.name}.log", template=template)
            self.nodes[spec.name] = node
            await node.start()
        self.record(
            "setup",
            {
                "nodes": {n: node.url for n, node in self.nodes.items()},
                "pids": {n: node.process.pid for n, node in self.nodes.items() if node.process},
                "proxies": proxies,
            },
        )
        pairs = [(a, b) for a, _, b in (link.partition("->") for link in s.cluster.node_links)]
        if pairs:
            try:
                await wait_links(self.nodes, "up", pairs, timeout=15)
            except ClusterError:
                if s.cluster.command is None:
                    raise  # the reference server always reports its links
        return proxies

    async def _start_swarm(self, nursery: trio.Nursery) -> None:
        s = self.scenario
        config = SwarmConfig(
            clients=s.clients.count,
            topics=s.clients.topics,
            topics_per_client=s.clients.topics_per_client,
            placement=s.clients.placement,  # type: ignore[arg-type]
            on_reconnect=s.clients.on_reconnect,  # type: ignore[arg-type]
            publishers=s.workload.publishers,
            rate=s.workload.rate,
            publish_timeout=s.workload.publish_timeout,
            publish_retries=s.workload.retries,
            timings=s.clients.timings,
            seed=s.seed,
            rejoin_on_reconnect=s.clients.rejoin,
            duplicate_join=s.clients.duplicate_join,
        )
        nodes = [Node(name, self.client_urls[name]) for name in s.cluster.node_names]
        plans = plan_clients(config, nodes)
        self.set_phase("connect")
        if s.clients.workers > 1:
            processes = SwarmProcesses(
                config, plans, self.clock, self.run_dir / "swarm", workers=s.clients.workers
            )
            self.swarm = processes
            await processes.start(nursery)
            await processes.wait_joined(timeout=self.options.join_timeout)
        else:
            swarm = Swarm(config, plans, self.writer, self.clock)
            self.swarm = swarm
            await nursery.start(swarm.run)
            try:
                await swarm.wait_joined(timeout=self.options.join_timeout)
            except trio.TooSlowError:
                stats = swarm.stats()
                raise ClusterError(
                    f"only {stats.joined}/{stats.clients} clients joined within "
                    f"{self.options.join_timeout:g}s; see {self.run_dir / 'logs'}"
                ) from None

    async def _report_progress(self) -> None:
        callback = self.options.progress
        if callback is None:
            return
        while True:
            stats = self.swarm.stats() if self.swarm is not None else None
            active = tuple(
                f"{f.kind}" for f in (self.nemesis.active.values() if self.nemesis else ())
            )
            callback(
                Progress(
                    phase=self.phase,
                    elapsed=self.clock.now(),
                    total=self.scenario.duration + self.scenario.settle,
                    clients=stats.clients if stats else 0,
                    connected=stats.connected if stats else 0,
                    joined=stats.joined if stats else 0,
                    published=stats.published if stats else 0,
                    acknowledged=stats.acknowledged if stats else 0,
                    received=stats.received if stats else 0,
                    active_faults=active,
                )
            )
            await trio.sleep(0.5)

    async def teardown(self) -> None:
        """Stop everything this run started. Shielded by the caller; each step bounded."""
        if isinstance(self.swarm, SwarmProcesses):
            with suppress(Exception):
                await self.swarm.stop()
        for node in self.nodes.values():
            with suppress(Exception):
                if node.paused:
                    node.resume()
                await node.stop(graceful=False, timeout=5)
        if self.toxiproxy is not None:
            for name in self.created_proxies:
                with suppress(ToxiproxyError):
                    await self.toxiproxy.delete_proxy(name)
        if self.toxiproxy_server is not None:
            await self.toxiproxy_server.stop()
        if self.redis is not None:
            await self.redis.stop()
        self.writer.close()


async def run_scenario(scenario: Scenario, options: RunOptions) -> RunResult:
    seed = options.seed if options.seed is not None else scenario.seed
    scenario = with_seed_faults(scenario, seed)
    run_dir = run_directory(options.out, scenario.name, seed)
    (run_dir / "scenario.yaml").write_text(
        f"# resolved from {scenario.source}\n" + yaml.safe_dump(resolved(scenario), sort_keys=False)
    )
    run = Run(scenario, options, run_dir)
    error: str | None = None
    interrupted = False
    started = time.monotonic()
    try:
        async with trio.open_nursery() as outer:

            async def watch_signals() -> None:
                nonlocal interrupted
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        interrupted = True
                        run.record("interrupted", {"phase": run.phase})
                        outer.cancel_scope.cancel()
                        return

            outer.start_soon(watch_signals)
            try:
                await run.execute()
            finally:
                outer.cancel_scope.cancel()
    except* (HarnessError, OSError) as group:
        error = "; ".join(str(e) for e in _leaves(group))
        log.debug("run failed: %s", error)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(30):
            await run.teardown()
    if scenario.clients.workers > 1:
        parts = [
            run_dir / "history.main.jsonl",
            *sorted((run_dir / "swarm").glob("history.*.jsonl")),
        ]
        merge_parts(parts, run_dir / "history.jsonl")
    if run.nemesis is not None and run.nemesis.errors and error is None:
        error = "nemesis: " + "; ".join(run.nemesis.errors)
    results: tuple[CheckResult, ...] = ()
    if error is None and not interrupted:
        results = tuple(check_run(run_dir, scenario))
    result = RunResult(run_dir, seed, results, error, interrupted)
    write_outputs(run_dir, scenario, result, time.monotonic() - started, options.junit_xml)
    return result


def _leaves(exc: BaseException) -> list[BaseException]:
    """The real errors inside trio's nested ExceptionGroups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def check_run(run_dir: Path, scenario: Scenario) -> list[CheckResult]:
    history = read_history(run_dir / "history.jsonl")
    return check_all(history, scenario.checks, CHECK_DESCRIPTIONS)


def write_outputs(
    run_dir: Path,
    scenario: Scenario,
    result: RunResult,
    duration: float,
    junit_path: Path | None = None,
) -> None:
    validity = (
        "interrupted"
        if result.interrupted
        else ("error" if result.error else combine(list(result.results)))
    )
    write_json(
        run_dir / "results.json",
        {
            "scenario": scenario.name,
            "source": scenario.source,
            "seed": result.seed,
            "validity": validity,
            "exit_code": result.exit_code,
            "error": result.error,
            "harness_version": __version__,
            "duration": round(duration, 3),
            "checks": [r.to_json() for r in result.results],
        },
    )
    xml = junit.render(
        scenario.name,
        scenario.source,
        result.results,
        seed=result.seed,
        duration=duration,
        properties={"harness": __version__},
        error=result.error or ("interrupted" if result.interrupted else None),
        report=str(run_dir / "report.html"),
    )
    (run_dir / "junit.xml").write_text(xml)
    write_report(run_dir)
    if junit_path is not None:
        junit_path.parent.mkdir(parents=True, exist_ok=True)
        junit_path.write_text(xml)


__all__ = [
    "Progress",
    "Run",
    "RunOptions",
    "RunResult",
    "check_run",
    "run_scenario",
    "write_outputs",
]
