"""The nemesis: runs the scenario's faults on the run's clock, then the final heal.

Each fault runs as its own task: wait for `at`, record a `fault` op (`phase: start`, with
`scheduled` and actual time), `apply` it (the fault kind's own code, `harness.faults`), record
`phase: stop`. A fault that cannot be applied is recorded (`phase: error`) and reported, not
fatal. Faults may overlap. `heal()` is the final heal, Jepsen-style: every toxic of the run's
own proxies removed and those proxies enabled (never Toxiproxy's global `/reset`: the server may
be shared with other runs), paused nodes resumed, dead nodes started; it records a `heal` op.

The nemesis is the faults' `FaultContext`: it speaks to the cluster only through the `Node`
interface and to Toxiproxy through the run's proxies, so a fault works on any backend. Under
`network: isolated` a node link has no proxy: cutting it puts packet rules in the hub
(`harness.infra.netns`), and what they dropped is the fault's `packets_dropped` figure.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any, cast

import trio

from .._clock import RunClock
from ..broadcast_proxy import Rule
from ..broadcast_proxy._rules import Action
from ..cluster import Cluster, Node, PacketRule
from ..errors import HarnessError
from ..faults import Fault
from ..history import Op, OpName, OpType, Recorder
from ..infra.toxiproxy import Toxiproxy
from ..swarm import Swarm

log = logging.getLogger(__name__)


class Nemesis:
    def __init__(
        self,
        cluster: Cluster,
        toxiproxy: Toxiproxy,
        recorder: Recorder,
        clock: RunClock,
        swarm: Swarm,
        rng: random.Random,
        seed: int = 0,
    ) -> None:
        self.cluster = cluster
        self.toxiproxy = toxiproxy
        self.recorder = recorder
        self.clock = clock
        self.swarm = swarm
        self.rng = rng
        self.seed = seed  # the scenario's: message-level faults draw from it
        self.active: dict[str, Fault] = {}
        self.cut: dict[str, list[PacketRule]] = {}  # node link -> its packet rules in force
        self.errors: list[str] = []
        # called with (fault id, "kind target") when a fault that stopped a node or cut a node
        # link has healed and no other such fault is still active (the readiness probe)
        self.on_heal: Callable[[str, str], None] | None = None

    def record(self, f: OpName, value: Mapping[str, Any], type_: OpType = "info") -> None:
        self.recorder.record(Op(self.clock.now(), "nemesis", type_, f, value))

    async def run(self, faults: Sequence[Fault], start: float) -> None:
        """Run every fault on schedule; returns when all have stopped."""
        async with trio.open_nursery() as nursery:
            for index, fault in enumerate(faults):
                nursery.start_soon(self._one, f"f{index + 1}", fault, start)

    async def apply_now(self, fault_id: str, fault: Fault) -> None:
        """One fault from now (its `at` ignored), recorded like a scheduled one."""
        await self._one(fault_id, fault.model_copy(update={"at": 0.0}), self.clock.now())

    async def _one(self, fault_id: str, fault: Fault, start: float) -> None:
        await self.clock.sleep_until(start + fault.at)
        base = {
            "id": fault_id,
            "kind": fault.kind_name(),
            "target": fault.target(),
            "params": fault.params(),
        }
        self.active[fault_id] = fault
        self.record("fault", {**base, "scheduled": round(start + fault.at, 3)}, "invoke")
        context = _Context(self, fault_id)
        healed = False
        try:
            await fault.apply(context)
            healed = True
        except Exception as exc:  # a fault that cannot be applied is recorded, not fatal
            log.exception("fault %s (%s) failed", fault_id, fault.kind_name())
            self.errors.append(f"{fault_id} {fault.kind_name()}: {exc}")
            self.record("fault", {**base, "error": str(exc)}, "fail")
        finally:
            self.active.pop(fault_id, None)
            scheduled_end = start + fault.end if fault.end is not None else None
            if context.links:  # what crossed its links: none means it cut nothing
                with trio.CancelScope(shield=True), suppress(HarnessError):
                    proxies = [self.cluster.proxies[link] for link in sorted(context.links)]
                    carried = await self.toxiproxy.traffic(proxies)
                    if carried is not None:
                        context.figures["link_bytes"] = carried
                    if carried == 0:  # bytes are counted at a connection's close: any open?
                        accepted = await trio.to_thread.run_sync(self.toxiproxy.accepted, proxies)
                        if accepted is not None:
                            context.figures["link_connections"] = accepted
            figures = {"figures": context.figures} if context.figures else {}
            self.record("fault", {**base, "scheduled": scheduled_end, **figures}, "ok")
            others = any(f.reforms() for f in self.active.values())
            if healed and fault.reforms() and not others and self.on_heal is not None:
                self.on_heal(fault_id, f"{fault.kind_name()} {fault.target()}".strip())

    def choose_clients(self, share: int | str) -> list[str]:
        ids = sorted(self.swarm.client_ids())
        if isinstance(share, str):
            count = max(1, round(len(ids) * float(share.rstrip("%")) / 100))
        else:
            count = share
        return sorted(self.rng.sample(ids, min(count, len(ids))))

    async def heal(self) -> None:
        """Remove the run's toxics, enable its proxies, resume and start every node."""
        self.record("heal", {}, "invoke")
        await self.toxiproxy.heal(self.cluster.proxies.values())
        for rules in self.cut.values():
            for rule in rules:
                await rule.remove()
        self.cut.clear()
        for node in self.cluster.nodes.values():
            if node.paused:
                await node.resume()
        for node in self.cluster.nodes.values():
            if not node.alive:
                await node.start()
        self.record("heal", {}, "ok")


class _Context:
    """One fault's view of the world (`harness.faults.FaultContext`)."""

    def __init__(self, nemesis: Nemesis, fault_id: str) -> None:
        self.nemesis = nemesis
        self.fault_id = fault_id
        self.figures: dict[str, int] = {}  # what the fault did, recorded when it stops
        self.links: set[str] = set()  # the links it put a toxic on or cut

    @property
    def nodes(self) -> Mapping[str, Node]:
        return self.nemesis.cluster.nodes

    def _proxy(self, link: str) -> str:
        return self.nemesis.cluster.proxies[link]

    async def add_toxic(
        self, link: str, type_: str, attributes: Mapping[str, int], stream: str, toxicity: float
    ) -> Callable[[], Awaitable[None]]:
        proxy, name = self._proxy(link), f"{self.fault_id}_{type_}_{stream}"
        self.links.add(link)
        server = self.nemesis.toxiproxy.holder(proxy)  # the toxiproxy-server it is on
        await server.add_toxic(
            proxy, type_, dict(attributes), stream=stream, toxicity=toxicity, name=name
        )

        async def remove() -> None:
            await server.remove_toxic(proxy, name)

        return remove

    async def set_enabled(self, links: Sequence[str], enabled: bool) -> None:
        proxies = self.nemesis.cluster.proxies
        self.links.update(link for link in links if link in proxies)
        for link in links:
            if link in proxies:
                proxy = self._proxy(link)
                await self.nemesis.toxiproxy.holder(proxy).set_enabled(proxy, enabled)
            elif enabled:
                await self._drop(self.nemesis.cut.pop(link, []))
            else:
                self.nemesis.cut.setdefault(link, []).extend(await self._rules(link, 100))

    async def lose(self, links: Sequence[str], probability: float) -> Callable[[], Awaitable[None]]:
        percent = max(1, min(100, round(probability * 100)))
        rules = [rule for link in links for rule in await self._rules(link, percent)]

        async def remove() -> None:
            await self._drop(rules)

        return remove

    async def _rules(self, link: str, percent: int) -> list[PacketRule]:
        """Packet rules (in the hub, or on the SSH hosts) that drop `percent` of the link's
        packets: a node link one way (`n1->n2`), a Redis link both ways (one connection, as its
        proxy would be)."""
        rules = self.nemesis.cluster.rules
        if rules is None:
            raise HarnessError(
                f"link {link} has no proxy and the run has no packet rules to cut it"
            )
        source, _, target = link.partition("->")
        pairs = [(source, target), (target, source)] if target == "redis" else [(source, target)]
        if percent >= 100:
            return [await rules.cut(a, b) for a, b in pairs]
        return [await rules.lose(a, b, percent) for a, b in pairs]

    async def _drop(self, rules: Sequence[PacketRule]) -> None:
        """Take rules out, adding what they dropped to this fault's `packets_dropped`."""
        dropped = 0
        for rule in rules:
            dropped += await rule.dropped()
            await rule.remove()
        if rules:
            self.figures["packets_dropped"] = self.figures.get("packets_dropped", 0) + dropped

    async def add_broadcast_rule(
        self,
        action: str,
        *,
        directions: Sequence[str] | None,
        topic: str | None,
        event: str | None,
        every: int | None,
        probability: float | None,
        first: int | None,
        delay: float,
    ) -> Callable[[], Awaitable[None]]:
        proxy = self.nemesis.cluster.broadcasts
        if proxy is None:
            raise HarnessError("message-level faults need the broadcast proxy (none is running)")
        rule = Rule(
            self.fault_id,
            cast(Action, action),
            None if directions is None else frozenset(directions),
            topic,
            event,
            every,
            probability,
            first,
            delay,
            self.nemesis.seed,
        )
        taken = proxy.add_rule(rule)

        async def remove() -> None:
            proxy.remove_rule(rule)
            self.figures.update(broadcasts_matched=taken.matched, broadcasts_taken=taken.taken)

        return remove

    def choose_clients(self, share: int | str) -> list[str]:
        return self.nemesis.choose_clients(share)

    async def client_fault(self, kind: str, clients: Sequence[str], duration: float | None) -> None:
        await self.nemesis.swarm.client_fault(kind, clients, duration)

    def record(self, f: str, value: Mapping[str, Any]) -> None:
        assert f == "client_fault", f"a fault records only client_fault ops, not {f!r}"
        self.nemesis.record("client_fault", value)

    async def hold(self, seconds: float, undo: Callable[[], Awaitable[None]]) -> None:
        try:
            await trio.sleep(seconds)
        finally:
            with trio.CancelScope(shield=True):
                await undo()

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)

    async def sleep_forever(self) -> None:
        await trio.sleep_forever()
