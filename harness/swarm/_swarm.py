"""The swarm: many clients and a few publishers in one trio loop, seeded and bounded.

`plan_clients` is pure: from the seed it decides each client's topics (a sample of
`topics_per_client` of the scenario's topics) and first node (round robin or random). Publishers
are clients too (`p1`, `p2`, ...), joined to every topic; together they publish `new_msg` at
`rate` messages/s in total, each with an id unique to the run (`<run>-<publisher>-<seq>`) and
the publisher's sequence number, so checkers can test delivery, duplication and per-publisher
order. What goes on the wire is the scenario's application contract (`app:`): the socket path
and params, the join payload, the publish event and payload templates, the delivery event and
where its id is.

Publishing is bounded by time and count and stops by itself. Large swarms run in several worker
processes (`harness.swarm.worker`), each an `InProcessSwarm` over its share of the clients; both
kinds are a `Swarm` (the interface the runner and the nemesis use).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import trio

from .._clock import RunClock
from .._gauge import LoadGauge
from ..errors import ClusterError
from ..history import Recorder
from ..phoenix import Timings
from ..scenario import Scenario, render
from ._client import SwarmClient
from ._config import ClientConfig, Endpoint, OnReconnect

Placement = Literal["round_robin", "random"]


@dataclass(frozen=True, slots=True)
class SwarmConfig:
    clients: int
    topics: tuple[str, ...]
    topics_per_client: int = 1
    placement: Placement = "round_robin"
    first_nodes: tuple[int, ...] | None = None  # indices clients start on (None: every node)
    on_reconnect: OnReconnect = "same_node"
    publishers: int = 1
    rate: float = 10.0
    publish_timeout: float | None = None
    publish_retries: int = 0
    timings: Timings = field(default_factory=Timings)
    seed: int = 0
    rejoin_on_reconnect: bool = True  # False: the non-standard client that forgets to rejoin
    duplicate_join: bool = False  # True: the client bug that sends every join twice
    body_size: int = 16
    # the application contract (`app:`), defaults = the reference demo app
    socket_path: str = "/socket/websocket"
    params: Mapping[str, str] = field(default_factory=dict)  # templates: {client} {run}
    join_payload: Mapping[str, Any] = field(default_factory=dict)  # {client} {topic} {run}
    publish_event: str = "new_msg"
    publish_payload: Mapping[str, Any] = field(
        default_factory=lambda: {"id": "{id}", "body": "{body}"}
    )
    deliver_event: str = "new_msg"
    deliver_id: str = "id"
    run_id: str = ""  # in every message id, so runs on one persistent store never collide

    def message_id(self, publisher: str, seq: int) -> str:
        return f"{self.run_id}-{publisher}-{seq}" if self.run_id else f"{publisher}-{seq}"

    @classmethod
    def of(cls, scenario: Scenario, run_id: str = "") -> SwarmConfig:
        c, w, app = scenario.clients, scenario.workload, scenario.app
        return cls(
            clients=c.count,
            topics=c.topics,
            topics_per_client=c.topics_per_client,
            placement=c.placement,
            first_nodes=None
            if c.nodes is None
            else tuple(scenario.cluster.node_names.index(n) for n in c.nodes),
            on_reconnect=c.on_reconnect,
            publishers=w.publishers,
            rate=w.rate,
            publish_timeout=w.publish_timeout,
            publish_retries=w.retries,
            timings=c.timings,
            seed=scenario.seed,
            rejoin_on_reconnect=c.rejoin,
            duplicate_join=c.duplicate_join,
            socket_path=app.socket.path,
            params=dict(app.socket.params),
            join_payload=dict(app.join.payload),
            publish_event=app.publish.event,
            publish_payload=dict(app.publish.payload),
            deliver_event=app.deliver.event,
            deliver_id=app.deliver.id,
            run_id=run_id,
        )


@dataclass(frozen=True, slots=True)
class SwarmStats:
    clients: int
    connected: int
    joined: int  # clients joined to every topic they should be in
    published: int
    acknowledged: int
    received: int


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


def plan_clients(config: SwarmConfig, nodes: Sequence[Endpoint]) -> list[ClientConfig]:
    """Every client's and publisher's configuration, decided by the seed alone."""
    if not 1 <= config.topics_per_client <= len(config.topics):
        raise ValueError("topics_per_client must be between 1 and the number of topics")
    rng = random.Random(config.seed)
    count = len(nodes)
    base = ClientConfig(
        client_id="",
        nodes=tuple(nodes),
        topics=(),
        on_reconnect=config.on_reconnect,
        timings=config.timings,
        join_params=config.join_payload,
        rejoin_on_reconnect=config.rejoin_on_reconnect,
        duplicate_join=config.duplicate_join,
        socket_path=config.socket_path,
        publish_event=config.publish_event,
        deliver_event=config.deliver_event,
        deliver_id=config.deliver_id,
        run_id=config.run_id,
    )

    def params(client_id: str) -> dict[str, str]:
        values = {"client": client_id, "run": config.run_id}
        return {k: str(render(v, values)) for k, v in config.params.items()}

    plans = []
    for i in range(config.clients):
        topics = tuple(sorted(rng.sample(config.topics, config.topics_per_client)))
        starts = config.first_nodes or range(count)
        pick = i % len(starts) if config.placement == "round_robin" else rng.randrange(len(starts))
        first = starts[pick]
        client_id = f"c{i + 1}"
        plans.append(
            replace(
                base, client_id=client_id, topics=topics, first_node=first, params=params(client_id)
            )
        )
    for k in range(config.publishers):
        plans.append(
            replace(
                base,
                client_id=f"p{k + 1}",
                params=params(f"p{k + 1}"),
                topics=config.topics,
                first_node=k % count,
                rejoin_on_reconnect=True,
                duplicate_join=False,
                publish_retries=config.publish_retries,
                publisher=True,
            )
        )
    return plans


class InProcessSwarm:
    """Run a set of planned clients in this trio loop; publish; report statistics."""

    def __init__(
        self,
        config: SwarmConfig,
        plans: Sequence[ClientConfig],
        recorder: Recorder,
        clock: RunClock,
        gauge: LoadGauge | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.gauge = gauge
        if gauge is not None:
            gauge.backlog = self.backlog
        self.clients = {
            plan.client_id: SwarmClient(plan, recorder, clock, config.seed) for plan in plans
        }

    @property
    def publishers(self) -> list[SwarmClient]:
        return [c for c in self.clients.values() if c.config.publisher]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every client; runs until cancelled."""
        async with trio.open_nursery() as nursery:
            for client in self.clients.values():
                nursery.start_soon(client.run)
            task_status.started()

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
        if not publishers or self.config.rate <= 0:
            return 0
        interval = max(self.config.publishers, 1) / self.config.rate
        share = len(publishers) / max(self.config.publishers, 1)
        limit = (
            max_messages
            if max_messages is not None
            else int(duration * self.config.rate * share) + len(publishers)
        )
        end = self.clock.now() + duration
        sent = 0
        body = "x" * self.config.body_size

        async def one(publisher: SwarmClient, offset: float) -> None:
            nonlocal sent
            seq = 0
            next_at = self.clock.now() + offset
            topics = self.config.topics
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
                name = publisher.config.client_id
                message_id = self.config.message_id(name, seq)
                values = {
                    "id": message_id,
                    "body": body,
                    "client": name,
                    "publisher": name,
                    "topic": topic,
                    "seq": seq,
                    "run": self.config.run_id,
                }
                payload = render(self.config.publish_payload, values)
                publisher.publish(
                    topic, payload, message_id, seq, timeout=self.config.publish_timeout
                )
                next_at += interval

        async with trio.open_nursery() as nursery:
            for k, publisher in enumerate(publishers):
                nursery.start_soon(one, publisher, k * interval / len(publishers))
        return sent

    def client_ids(self) -> list[str]:
        return [cid for cid, c in self.clients.items() if not c.config.publisher]

    def refused(self) -> str | None:
        """The first refusal any client met (a join error reply, a socket rejected)."""
        return next((c.refused for c in self.clients.values() if c.refused), None)

    def backlog(self) -> int:
        """The largest receive backlog of any client, in bytes (sampled by the gauge)."""
        return max((c.backlog() for c in self.clients.values()), default=0)

    async def client_fault(
        self, kind: str, client_ids: Sequence[str], duration: float | None = None
    ) -> None:
        """`client_close`: a client bug closes the socket; `client_crash`: the TCP link dies;
        `client_leave`: the app leaves a topic and joins it again after `duration`."""
        async with trio.open_nursery() as nursery:
            for cid in client_ids:
                client = self.clients.get(cid)
                if client is None:
                    continue
                if kind == "client_close":
                    await client.close_transport()
                elif kind == "client_crash":
                    await client.crash_transport()
                else:
                    nursery.start_soon(client.leave_and_rejoin, duration or 0.0)

    def stats(self) -> SwarmStats:
        clients = list(self.clients.values())
        return SwarmStats(
            clients=len(clients),
            connected=sum(c.connected for c in clients),
            joined=sum(c.ready for c in clients),
            published=sum(c.published for c in clients),
            acknowledged=sum(c.acknowledged for c in clients),
            received=sum(c.received for c in clients),
        )
