"""The broadcast proxy: faults on single remote broadcasts between nodes.

Toxiproxy works on whole links (its users have asked for message-aware toxics for years:
Shopify/toxiproxy #50, #518), and the interesting bugs of a channel system live in single
remote broadcasts. So when a scenario has a message-level fault (`harness.faults.broadcasts`)
each node-to-node link gets this proxy behind its Toxiproxy proxy:

    n1 --> Toxiproxy `n1->n2` --> broadcast proxy `n1->n2` --> n2        (mesh)
    n2 --> Toxiproxy `n2->redis` --> broadcast proxy `n2->redis` --> Redis  (pubsub: redis)

It cuts the traffic into frames (`_framing`: mesh lines, or RESP values) and hands each remote
broadcast to the rules in force (`_rules`), which may drop it, duplicate it, hold it back behind
the next broadcast of its origin on its topic (reorder) or delay it (that broadcast and all
that follows it on the connection wait, in order, as a latency spike would). Every other frame,
and every byte while no rule is in force, passes as it came. On a mesh link the broadcasts are
the dialer's lines (n1's, received by n2); on a Redis link they are the `message` pushes Redis
sends to the node (received by it), so a direction `n1->n2` means n1's broadcasts as n2
receives them with either PubSub; Redis's echo of a node's own publish (which the node skips)
passes untouched and is never counted as taken.

Everything binds 127.0.0.1; the proxy lives as long as `open_broadcast_proxy`'s block, and
closes both sides of every connection when either side closes.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

import trio

from ._framing import Frame, Framer, MeshFramer, RespFramer
from ._rules import Rule, Rules, Taken

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
REORDER_HOLD = 1.0  # a broadcast held for reordering goes after this long if nothing passes it
CHUNK = 65536


@dataclass(frozen=True, slots=True)
class Route:
    """One link through the proxy: its name, where it leads, what it carries."""

    link: str  # `n1->n2` (mesh) or `n2->redis`
    upstream: tuple[str, int]
    framing: Literal["mesh", "resp"]

    @property
    def receiver(self) -> str:
        """The node that receives the broadcasts this link carries."""
        source, _, target = self.link.partition("->")
        return target if self.framing == "mesh" else source


@dataclass(slots=True)
class BroadcastProxy:
    """The running proxy: where each link listens, and the rules in force."""

    addresses: dict[str, tuple[str, int]] = field(default_factory=dict)
    rules: Rules = field(default_factory=Rules)
    connections: int = 0

    def add_rule(self, rule: Rule) -> Taken:
        return self.rules.add(rule)

    def remove_rule(self, rule: Rule) -> None:
        self.rules.remove(rule)


@asynccontextmanager
async def open_broadcast_proxy(routes: Iterable[Route]) -> AsyncIterator[BroadcastProxy]:
    proxy = BroadcastProxy()
    async with trio.open_nursery() as nursery:
        for route in routes:
            listeners = await trio.open_tcp_listeners(0, host=HOST)
            proxy.addresses[route.link] = listeners[0].socket.getsockname()[:2]
            nursery.start_soon(_accept, proxy, route, listeners)
        try:
            yield proxy
        finally:
            nursery.cancel_scope.cancel()


async def _accept(
    proxy: BroadcastProxy, route: Route, listeners: list[trio.SocketListener]
) -> None:
    async def serve(downstream: trio.SocketStream) -> None:
        proxy.connections += 1
        await _connection(proxy.rules, route, downstream)

    await trio.serve_listeners(serve, listeners)


async def _connection(rules: Rules, route: Route, downstream: trio.SocketStream) -> None:
    try:
        upstream = await trio.open_tcp_stream(*route.upstream)
    except OSError as exc:
        log.info("broadcast proxy %s: upstream refused: %s", route.link, exc)
        await downstream.aclose()
        return
    async with downstream, upstream, trio.open_nursery() as nursery:

        async def pump(src: trio.SocketStream, dst: trio.SocketStream, filtered: bool) -> None:
            try:
                if filtered:
                    framer: Framer = MeshFramer() if route.framing == "mesh" else RespFramer()
                    await _filter(src, _Out(dst, nursery), framer, rules, route.receiver)
                else:
                    while data := await src.receive_some(CHUNK):
                        await dst.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
            nursery.cancel_scope.cancel()  # one side closed: close the other

        mesh = route.framing == "mesh"
        nursery.start_soon(pump, downstream, upstream, mesh)
        nursery.start_soon(pump, upstream, downstream, not mesh)


class _Out:
    """One direction's sending side: in order, each piece no earlier than its release time."""

    def __init__(self, stream: trio.SocketStream, nursery: trio.Nursery) -> None:
        self.stream = stream
        self.queue: deque[tuple[float, bytes]] = deque()
        self.lock = trio.Lock()
        self.wake = trio.Event()
        self.drained = trio.Event()  # set whenever nothing waits to be sent
        self.drained.set()
        nursery.start_soon(self._drain)

    async def send(self, data: bytes, delay: float = 0.0) -> None:
        if not data:
            return
        if not self.queue and delay <= 0:
            async with self.lock:
                await self.stream.send_all(data)
            return
        release = trio.current_time() + delay
        if self.queue:  # in order: no earlier than what is ahead of it
            release = max(release, self.queue[-1][0])
        else:
            self.drained = trio.Event()
        self.queue.append((release, data))
        self.wake.set()

    async def flush(self) -> None:
        """Return once everything given to `send` has been sent."""
        await self.drained.wait()

    async def _drain(self) -> None:
        while True:
            if not self.queue:
                self.wake = trio.Event()
                await self.wake.wait()
                continue
            release, data = self.queue[0]
            await trio.sleep_until(release)
            async with self.lock:
                await self.stream.send_all(data)
            self.queue.popleft()
            if not self.queue:
                self.drained.set()


async def _filter(
    src: trio.SocketStream, out: _Out, framer: Framer, rules: Rules, receiver: str
) -> None:
    held: dict[tuple[str | None, str | None], bytes] = {}  # (origin, topic) -> held (reorder)
    while True:
        if not held:
            data = await src.receive_some(CHUNK)
        else:
            data = b""
            with trio.move_on_after(REORDER_HOLD) as waited:
                data = await src.receive_some(CHUNK)
            if waited.cancelled_caught:  # nothing came to pass them: they go as they are
                await out.send(b"".join(held.values()))
                held.clear()
                continue
        if not data:  # the sender closed: what is held or delayed still goes, then the close
            await out.send(b"".join(held.values()))
            await out.flush()
            return
        frames = framer.feed(data)
        if not rules and not held:
            await out.send(b"".join(f.raw for f in frames))
            continue
        passed = bytearray()
        for frame in frames:
            broadcast = frame.broadcast
            if broadcast is not None and broadcast.origin == receiver:
                broadcast = None  # Redis echoing its own publish: the node drops it, no rule
            rule = rules.decide(broadcast, receiver) if broadcast is not None and rules else None
            if rule is None:
                passed += frame.raw
                if broadcast is not None and held:
                    # right after the next one of its origin and topic, which passed it
                    passed += held.pop((broadcast.origin, broadcast.topic), b"")
            elif rule.action == "drop":
                continue
            elif rule.action == "duplicate":
                passed += frame.raw + frame.raw
            elif rule.action == "reorder":
                key = (broadcast.origin, broadcast.topic) if broadcast is not None else (None, None)
                passed += held.pop(key, b"")
                held[key] = frame.raw
            else:  # delay: this broadcast and everything behind it wait
                await out.send(bytes(passed))
                passed = bytearray()
                await out.send(frame.raw, rule.delay)
        await out.send(bytes(passed))


__all__ = ["BroadcastProxy", "Frame", "Route", "Rule", "Taken", "open_broadcast_proxy"]
