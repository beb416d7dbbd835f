"""The nemesis: turns scenario faults into Toxiproxy calls, process signals and client faults.

Each fault runs as its own task on the run's clock: wait for `at`, apply, record a `fault` op
(`phase: start`, with `scheduled` and actual time), wait out its duration (or its own
`restart_after`), undo, record `phase: stop`. Faults may overlap. `heal()` is the final heal
Jepsen-style: every toxic removed and every proxy enabled (Toxiproxy `/reset`), paused nodes
resumed, dead nodes started; it records a `heal` op.

What each kind does:

    toxics (latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data)
        one toxic per link and stream; removed at the end (removing `timeout` closes the link)
    down         the link's proxy disabled: live connections closed, new ones refused
    partition    every node->node link from one group to another disabled (one_way: only
                 links leaving the first group); remote broadcasts across the cut are lost.
                 With pubsub: redis, one group holds `redis` and the nodes of the other
                 groups lose their `n->redis` link
    kill / terminate   SIGKILL / SIGTERM the node; started again after `restart_after`
    pause        SIGSTOP for the fault's duration, then SIGCONT
    restart      SIGTERM, wait, start again
    rolling_restart  restart each node in turn, `interval` apart
    client_close / client_crash   a client bug closes the socket / the TCP connection dies,
                 on `clients` clients (a count or a percentage) chosen by the seed
    client_leave the app on `clients` clients leaves its first topic, joins again after `for`
    random       expanded into concrete faults by `expand_random` before the run
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import trio

from .cluster import LocalNode
from .history import Op
from .scenario import CLIENT_KINDS, TOXIC_KINDS, Fault, Scenario
from .swarm import Recorder, RunClock
from .toxiproxy import ToxiproxyClient

log = logging.getLogger(__name__)


class ClientFaults(Protocol):
    """What the swarm offers the nemesis."""

    def client_ids(self) -> list[str]: ...

    async def client_fault(
        self, kind: str, client_ids: Sequence[str], duration: float | None = None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Targets:
    nodes: Mapping[str, LocalNode]
    proxies: Mapping[str, str]  # link name -> toxiproxy proxy name


def expand_random(scenario: Scenario, rng: random.Random) -> tuple[Fault, ...]:
    """Replace each `random` fault by `count` concrete faults drawn from its kinds, inside its
    window. Deterministic for a seed, so the resolved scenario replays."""
    nodes = scenario.cluster.node_names
    out: list[Fault] = []
    for fault in scenario.faults:
        if fault.kind != "random":
            out.append(fault)
            continue
        p = fault.params
        window = fault.duration or 0.0
        for _ in range(int(p["count"])):
            kind = rng.choice(list(p["kinds"]))
            length = rng.uniform(float(p["min_for"]), min(float(p["max_for"]), window))
            at = fault.at + rng.uniform(0.0, max(0.0, window - length))
            params: dict[str, Any]
            if kind == "down":
                params = {"links": (rng.choice(scenario.links),)}
            elif kind in TOXIC_KINDS:
                link = rng.choice(scenario.links)
                params = {"links": (link,), "stream": "both", "toxicity": 1.0}
                params.update(
                    {
                        "latency": {"latency": 500, "jitter": 100},
                        "bandwidth": {"rate": 1},
                        "slow_close": {"delay": 500},
                        "timeout": {"timeout": 0},
                        "reset_peer": {"timeout": 100},
                        "slicer": {"average_size": 64, "size_variation": 16, "delay": 100},
                        "limit_data": {"bytes": 4096},
                    }.get(kind, {})
                )
            elif kind == "partition":
                shuffled = list(nodes)
                if scenario.cluster.pubsub == "redis":
                    shuffled.append("redis")  # it ends up on one side; the other side loses it
                rng.shuffle(shuffled)
                cut = rng.randrange(1, len(shuffled)) if len(shuffled) > 1 else 1
                params = {
                    "groups": (tuple(shuffled[:cut]), tuple(shuffled[cut:])),
                    "one_way": False,
                }
            elif kind in ("kill", "terminate"):
                params = {"node": rng.choice(nodes), "restart_after": round(length, 3)}
            elif kind in ("pause", "restart"):
                params = {"node": rng.choice(nodes)}
            else:  # client faults
                params = {"clients": "10%"}
            instant = ("kill", "terminate", "restart", "client_close", "client_crash")
            duration = None if kind in instant else round(length, 3)
            out.append(Fault(kind, round(at, 3), duration, params, fault.line))
    return tuple(sorted(out, key=lambda f: f.at))


class Nemesis:
    def __init__(
        self,
        targets: Targets,
        toxiproxy: ToxiproxyClient,
        recorder: Recorder,
        clock: RunClock,
        clients: ClientFaults,
        rng: random.Random,
    ) -> None:
        self.targets = targets
        self.toxiproxy = toxiproxy
        self.recorder = recorder
        self.clock = clock
        self.clients = clients
        self.rng = rng
        self.active: dict[str, Fault] = {}
        self.errors: list[str] = []

    def _record(self, f: str, value: Mapping[str, Any]) -> None:
        self.recorder.record(Op(self.clock.now(), "nemesis", "info", f, value))

    async def run(self, faults: Sequence[Fault], start: float) -> None:
        """Run every fault on schedule; returns when all have stopped."""
        async with trio.open_nursery() as nursery:
            for index, fault in enumerate(faults):
                nursery.start_soon(self._one, f"f{index + 1}", fault, start)

    async def _one(self, fault_id: str, fault: Fault, start: float) -> None:
        await self.clock.sleep_until(start + fault.at)
        target = _target(fault)
        base = {
            "id": fault_id,
            "kind": fault.kind,
            "target": target,
            "params": _plain(fault.params),
        }
        self.active[fault_id] = fault
        self._record("fault", {**base, "phase": "start", "scheduled": round(start + fault.at, 3)})
        try:
            await self._apply(fault_id, fault)
        except Exception as exc:  # a fault that cannot be applied is recorded, not fatal
            log.exception("fault %s (%s) failed", fault_id, fault.kind)
            self.errors.append(f"{fault_id} {fault.kind}: {exc}")
            self._record("fault", {**base, "phase": "error", "error": str(exc)})
        finally:
            self.active.pop(fault_id, None)
            scheduled_end = start + fault.end if fault.end is not None else None
            self._record("fault", {**base, "phase": "stop", "scheduled": scheduled_end})

    async def _hold(self, fault: Fault, undo: Callable[[], Awaitable[None]]) -> None:
        try:
            await trio.sleep(fault.duration or 0.0)
        finally:
            with trio.CancelScope(shield=True):
                await undo()

    async def _apply(self, fault_id: str, fault: Fault) -> None:
        kind, p = fault.kind, fault.params
        if kind in TOXIC_KINDS:
            added = await self._add_toxics(fault_id, fault)

            async def remove() -> None:
                for proxy, name in added:
                    await self.toxiproxy.remove_toxic(proxy, name)

            await self._hold(fault, remove)
        elif kind == "down":
            await self._disable(p["links"], fault)
        elif kind == "partition":
            await self._disable(_cut_links(p["groups"], p["one_way"]), fault)
        elif kind in ("kill", "terminate"):
            node = self.targets.nodes[p["node"]]
            node.kill() if kind == "kill" else node.terminate()
            await node.wait_exit(timeout=10)
            if p.get("restart_after") is not None:
                await trio.sleep(float(p["restart_after"]))
                await node.start()
            else:
                await trio.sleep_forever()  # down until the final heal cancels this fault
        elif kind == "pause":
            node = self.targets.nodes[p["node"]]
            node.pause()

            async def resume() -> None:
                node.resume()

            await self._hold(fault, resume)
        elif kind == "restart":
            await self._restart(self.targets.nodes[p["node"]])
        elif kind == "rolling_restart":
            for name in p["nodes"]:
                await self._restart(self.targets.nodes[name])
                await trio.sleep(float(p["interval"]))
        elif kind in CLIENT_KINDS:
            chosen = self._choose_clients(p["clients"])
            self._record("client_fault", {"id": fault_id, "kind": kind, "clients": chosen})
            await self.clients.client_fault(kind, chosen, fault.duration)

    async def _restart(self, node: LocalNode) -> None:
        await node.stop(graceful=True)
        await node.start()

    async def _add_toxics(self, fault_id: str, fault: Fault) -> list[tuple[str, str]]:
        p = fault.params
        attributes = {k: v for k, v in p.items() if k in TOXIC_KINDS[fault.kind]}
        streams = ("upstream", "downstream") if p["stream"] == "both" else (p["stream"],)
        added = []
        for link in p["links"]:
            proxy = self.targets.proxies[link]
            for stream in streams:
                name = f"{fault_id}_{fault.kind}_{stream}"
                await self.toxiproxy.add_toxic(
                    proxy,
                    fault.kind,
                    attributes,
                    stream=stream,
                    toxicity=float(p["toxicity"]),
                    name=name,
                )
                added.append((proxy, name))
        return added

    async def _disable(self, links: Sequence[str], fault: Fault) -> None:
        proxies = [self.targets.proxies[link] for link in links]
        for proxy in proxies:
            await self.toxiproxy.set_enabled(proxy, False)

        async def enable() -> None:
            for proxy in proxies:
                await self.toxiproxy.set_enabled(proxy, True)

        await self._hold(fault, enable)

    def _choose_clients(self, share: int | str) -> list[str]:
        ids = sorted(self.clients.client_ids())
        if isinstance(share, str):
            count = max(1, round(len(ids) * float(share.rstrip("%")) / 100))
        else:
            count = share
        return sorted(self.rng.sample(ids, min(count, len(ids))))

    async def heal(self) -> None:
        """Remove every toxic, enable every proxy, resume and start every node."""
        self._record("heal", {"phase": "start"})
        await self.toxiproxy.reset()
        for node in self.targets.nodes.values():
            if node.paused:
                node.resume()
        for node in self.targets.nodes.values():
            if not node.alive:
                await node.start()
        self._record("heal", {"phase": "done"})


def _cut_links(groups: Sequence[Sequence[str]], one_way: bool) -> list[str]:
    """The links a partition disables: node->node between groups (mesh), or, when one group
    holds `redis`, the Redis link of every node in the other groups."""
    hub = next((g for g in groups if "redis" in g), None)
    if hub is not None:
        return [f"{n}->redis" for g in groups if g is not hub for n in g]
    sources = groups[:1] if one_way else groups
    links: list[str] = []
    for i, group in enumerate(sources):
        for j, other in enumerate(groups):
            if i != j:
                links.extend(f"{a}->{b}" for a in group for b in other)
    return links


def _target(fault: Fault) -> str:
    p = fault.params
    if "links" in p:
        return ",".join(p["links"])
    if "groups" in p:
        return "|".join(",".join(g) for g in p["groups"])
    if "node" in p:
        return str(p["node"])
    if "nodes" in p:
        return ",".join(p["nodes"])
    if "clients" in p:
        return f"clients:{p['clients']}"
    return ""


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def with_seed_faults(scenario: Scenario, seed: int) -> Scenario:
    """The scenario with `random` faults expanded for this seed (what the run directory keeps)."""
    return replace(scenario, seed=seed, faults=expand_random(scenario, random.Random(seed)))
