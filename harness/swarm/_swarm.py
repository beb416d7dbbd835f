"""The swarm: many clients and a few publishers in one trio loop, seeded and bounded.

It runs a `SwarmPlan` (`harness.grammar.behaviour`; made by `harness.scenario.plan_clients`): each
client's topics and first node, each role's behaviour. Publishers (`p1`, `p2`, ...) are clients
too, joined to every topic; together they publish the app's publish event at `workload.rate`
messages/s in total, each with an id unique to the run (`<run>-<publisher>-<seq>`) and the
publisher's sequence number, so checkers can test delivery, duplication and per-publisher order.
What goes on the wire is the scenario's application contract (`app:`).

Publishing is bounded by time and count and stops by itself. Large swarms run in several worker
processes (`harness.swarm.worker`), each an `InProcessSwarm` over its share of the clients; both
kinds are a `Swarm` (the interface the runner and the nemesis use).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from .._clock import RunClock
from .._gc import freeze_survivors
from ..errors import ClusterError
from ..grammar.behaviour import SwarmPlan
from ..grammar.templates import render
from ..history import Recorder
from ..infra.gauge import LoadGauge
from ._client import SwarmClient

FREEZE_AT = 1000  # clients: a swarm this large freezes what lives once joined


@dataclass(frozen=True, slots=True)
class SwarmStats:
    clients: int  # publishers included
    connected: int
    joined: int  # clients joined to every topic they should be in
    published: int
    acknowledged: int
    received: int
    publishers: int = 0  # of `clients`
    publishers_joined: int = 0  # of `joined`


class Swarm(Protocol):
    """What the runner and the nemesis use of a swarm, in-process or over worker processes."""

    def stats(self) -> SwarmStats: ...

    def client_ids(self) -> list[str]:
        """The clients a client fault may hit (publishers are not among them)."""
        ...

    async def wait_joined(self, *, timeout: float) -> None: ...

    async def publish(self, *, duration: float) -> None:
        """Publish at the configured rate; returns when `duration` is over."""
        ...

    async def client_fault(
        self, kind: str, client_ids: Sequence[str], duration: float | None = None
    ) -> None: ...


async def _close(client: SwarmClient, duration: float | None) -> None:
    await client.close_transport()


async def _crash(client: SwarmClient, duration: float | None) -> None:
    await client.crash_transport()


async def _leave(client: SwarmClient, duration: float | None) -> None:
    await client.leave_and_rejoin(duration or 0.0)


# What each client fault kind (`harness.faults.clients`) does to one client: the registry the
# swarm dispatches through (a new client fault is a kind there, a line here, a client method).
CLIENT_FAULTS: dict[str, Callable[[SwarmClient, float | None], Awaitable[None]]] = {
    "client_close": _close,  # a client bug closes the socket
    "client_crash": _crash,  # the TCP connection just dies
    "client_leave": _leave,  # the app leaves a topic and joins it again after `duration`
}


class InProcessSwarm:
    """Run a set of planned clients in this trio loop; publish; report statistics."""

    def __init__(
        self,
        plan: SwarmPlan,
        recorder: Recorder,
        clock: RunClock,
        gauge: LoadGauge | None = None,
    ) -> None:
        self.plan = plan
        self.clock = clock
        self.gauge = gauge
        if gauge is not None:
            gauge.backlog = self.backlog
        self.clients = {
            c.id: SwarmClient(c, plan.behaviour(c), plan.endpoints, recorder, clock, plan.seed)
            for c in plan.clients
        }

    @property
    def publishers(self) -> list[SwarmClient]:
        return [c for c in self.clients.values() if c.behaviour.publisher]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every client; runs until cancelled."""
        async with trio.open_nursery() as nursery:
            for client in self.clients.values():
                nursery.start_soon(client.run)
            task_status.started()

    async def freeze_when_joined(self) -> None:
        """Once every client has joined, a swarm of `FREEZE_AT` clients or more freezes what
        lives (`harness._gc.freeze_survivors`): the collector's full passes over its clients
        stood its loop still for up to a second at a time (10,000 clients in one process)."""
        if len(self.clients) < FREEZE_AT:
            return
        while self.stats().joined < len(self.clients):  # noqa: ASYNC110 (a count, no event)
            await trio.sleep(0.1)
        freeze_survivors()

    async def wait_joined(self, *, timeout: float) -> None:
        """Wait until every client is connected and joined to all its topics; fail at once with
        the server's reason when the app refuses one (a wrong contract never gets better)."""
        with trio.move_on_after(timeout):
            while self.stats().joined < len(self.clients):
                refused = self.refused()
                if refused is not None:
                    raise ClusterError(refused)
                await trio.sleep(0.02)
            return
        stats = self.stats()
        raise ClusterError(
            f"only {stats.joined}/{stats.clients} clients joined within {timeout:g}s"
        )

    async def publish(self, *, duration: float) -> None:
        await self.publish_some(duration=duration)

    async def publish_some(self, *, duration: float, max_messages: int | None = None) -> int:
        """Publish for `duration` seconds; return how many.

        Every publisher of the scenario publishes at rate / publishers, wherever it runs, so the
        total is the configured rate whether the publishers share one process or are spread over
        worker processes (each worker runs this with its own share of them)."""
        publishers = self.publishers
        behaviour = self.plan.publishing
        rate, every = behaviour.workload.rate, max(behaviour.workload.publishers, 1)
        if not publishers or rate <= 0:
            return 0
        interval = every / rate
        share = len(publishers) / every
        limit = (
            max_messages
            if max_messages is not None
            else int(duration * rate * share) + len(publishers)
        )
        end = self.clock.now() + duration
        sent = 0
        body = "x" * self.plan.body_size
        topics = behaviour.clients.topics
        timeout = behaviour.workload.publish_timeout

        async def one(publisher: SwarmClient, offset: float) -> None:
            nonlocal sent
            seq = 0
            next_at = self.clock.now() + offset
            while True:
                await self.clock.sleep_until(next_at)
                now = self.clock.now()
                if now >= end or sent >= limit:
                    return
                if self.gauge is not None:
                    self.gauge.publish_late(now - next_at)
                seq += 1
                sent += 1
                topic = topics[(seq - 1) % len(topics)]
                name = publisher.id
                message_id = behaviour.message_id(name, seq)
                values = {
                    "id": message_id,
                    "body": body,
                    "client": name,
                    "publisher": name,
                    "topic": topic,
                    "seq": seq,
                    "run": behaviour.run_id,
                }
                payload = render(behaviour.app.publish.payload, values)
                publisher.publish(topic, payload, message_id, seq, timeout=timeout)
                next_at += interval

        async with trio.open_nursery() as nursery:
            for k, publisher in enumerate(publishers):
                nursery.start_soon(one, publisher, k * interval / len(publishers))
        return sent

    def client_ids(self) -> list[str]:
        return [cid for cid, c in self.clients.items() if not c.behaviour.publisher]

    def refused(self) -> str | None:
        """The first refusal any client met (a join error reply, a socket rejected)."""
        return next((c.refused for c in self.clients.values() if c.refused), None)

    def backlog(self) -> int:
        """The largest receive backlog of any client, in bytes (sampled by the gauge)."""
        return max((c.backlog() for c in self.clients.values()), default=0)

    async def client_fault(
        self, kind: str, client_ids: Sequence[str], duration: float | None = None
    ) -> None:
        """The client fault `kind` (`CLIENT_FAULTS`) on each of `client_ids` (those in this
        swarm), side by side."""
        action = CLIENT_FAULTS[kind]
        async with trio.open_nursery() as nursery:
            for cid in client_ids:
                client = self.clients.get(cid)
                if client is not None:
                    nursery.start_soon(action, client, duration)

    def stats(self) -> SwarmStats:
        clients = list(self.clients.values())
        return SwarmStats(
            clients=len(clients),
            connected=sum(c.connected for c in clients),
            joined=sum(c.ready for c in clients),
            published=sum(c.published for c in clients),
            acknowledged=sum(c.acknowledged for c in clients),
            received=sum(c.received for c in clients),
            publishers=sum(c.behaviour.publisher for c in clients),
            publishers_joined=sum(c.ready and c.behaviour.publisher for c in clients),
        )
