"""PubSub for one node: the local registry of subscriptions every adapter shares.

`PubSub` keeps the local subscribers and dispatches to them; the adapters add how a broadcast
leaves the node: `_mesh.MeshPubSub` (the default, a link to every peer) and `_redis.RedisPubSub`
(through a Redis server). Helpers both adapters use: `Backoff` (capped, exponential, cut short by
a sign of life), `dial` and `until_first_ends` (one connection's tasks).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from ._bugs import Bugs
from ._outbox import OutboxOverflow
from ._trace import Tracer

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 2.0
BACKOFF_START = 0.05
BACKOFF_MAX = 2.0


class Backoff:
    """A capped exponential backoff between attempts that a sign of life cuts short: `wake()`
    (the peer dialed us: it is back) ends the current wait and starts over from the shortest
    delay, so a restarted peer is redialed at once while a dead one costs at most one attempt
    per `BACKOFF_MAX` seconds."""

    def __init__(self) -> None:
        self.delay = BACKOFF_START
        self.woken = 0  # waits a sign of life cut short
        self._woken = trio.Event()

    def reset(self) -> None:
        self.delay = BACKOFF_START

    def wake(self) -> None:
        self._woken.set()

    async def wait(self) -> None:
        with trio.move_on_after(self.delay):
            await self._woken.wait()
        if self._woken.is_set():
            self.woken += 1
            self._woken = trio.Event()
            self.delay = BACKOFF_START
        else:
            self.delay = min(self.delay * 2, BACKOFF_MAX)


async def dial(
    host: str, port: int, on_refused: Callable[[], None], backoff: Backoff | None = None
) -> trio.SocketStream:
    """Connect, retrying with `backoff` (a new one by default) until it works (or we are
    cancelled); `on_refused` runs after each failed attempt."""
    backoff = backoff or Backoff()
    while True:
        try:
            with trio.fail_after(CONNECT_TIMEOUT):
                return await trio.open_tcp_stream(host, port)
        except (OSError, trio.TooSlowError):
            on_refused()
            await backoff.wait()


async def until_first_ends(*jobs: Callable[[], Awaitable[None]]) -> None:
    """Run the jobs of one connection side by side until one ends (returns, or meets a broken
    connection), then cancel the others. Connection errors are caught inside each task: out of
    a nursery they would come wrapped in an ExceptionGroup."""

    async def one(nursery: trio.Nursery, job: Callable[[], Awaitable[None]]) -> None:
        with contextlib.suppress(
            OSError, trio.BrokenResourceError, trio.ClosedResourceError, OutboxOverflow
        ):
            await job()
        nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        for job in jobs:
            nursery.start_soon(one, nursery, job)


@dataclass(eq=False)
class Delivery:
    """One broadcast on its way to local subscribers; `wire` caches its bytes per serializer."""

    topic: str
    event: str
    payload: Any
    origin: str
    wire: dict[str, bytes] = field(default_factory=dict)


class Subscriber(Protocol):
    def deliver(self, delivery: Delivery) -> None: ...


class PubSub:
    """The local topic registry every adapter shares; adapters add how broadcasts leave the node
    (`broadcast`), their background tasks (`serve`) and their part of `/stats` (`snapshot`)."""

    adapter = "local"

    def __init__(self, node: str, *, bugs: Bugs) -> None:
        self.node = node
        self.bugs = bugs
        self.link_delay = 0.0  # `--link-delay`: links are first dialled this long after start
        self._local: dict[str, dict[int, Subscriber]] = {}
        self.trace = Tracer(node)  # `--trace`: replaced by the node with one that writes

    def subscribe(self, topic: str, subscriber: Subscriber) -> None:
        if topic not in self._local:
            self._topics_changed({"subscribe": topic})
        self._local.setdefault(topic, {})[id(subscriber)] = subscriber

    def unsubscribe(self, topic: str, subscriber: Subscriber) -> None:
        subscribers = self._local.get(topic)
        if subscribers is not None:
            subscribers.pop(id(subscriber), None)
            if not subscribers:
                del self._local[topic]
                self._topics_changed({"unsubscribe": topic})

    def _topics_changed(self, message: dict[str, Any]) -> None:
        """The set of topics with local subscribers changed (adapters may tell their peers)."""

    def subscriber_counts(self) -> dict[str, int]:
        return {topic: len(subs) for topic, subs in sorted(self._local.items())}

    def broadcast(
        self, topic: str, event: str, payload: Any, *, exclude: Subscriber | None = None
    ) -> None:
        """Send to the other nodes (adapters override), then to local subscribers."""
        self.local_broadcast(topic, event, payload, exclude=exclude)

    def local_broadcast(
        self, topic: str, event: str, payload: Any, *, exclude: Subscriber | None = None
    ) -> None:
        self._dispatch(Delivery(topic, event, payload, self.node), exclude)

    def _dispatch(self, delivery: Delivery, exclude: Subscriber | None = None) -> None:
        for subscriber in list(self._local.get(delivery.topic, {}).values()):
            if subscriber is not exclude:
                subscriber.deliver(delivery)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    def snapshot(self) -> dict[str, Any]:
        return {"adapter": self.adapter, "links": {}}
