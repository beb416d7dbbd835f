"""Catch-up on rejoin: at-least-once delivery on top of at-most-once PubSub, the way teams
write it on Phoenix.

A client that joins a room with `{"since": N}` (phoenix.js: `socket.channel(topic, () =>
({since: last}))`, a closure evaluated on every rejoin; `null` before it saw any) gets every
stored message of the room after position N, then the live ones, in position order, each once.
Every broadcast carries its message's position in the room (`seq`, from the store: 1, 2, 3, ...
per room, no gap), so the channel knows the next position it owes its client:

    join       the floor: N (or, with null, the room's last position now); the channel is
               subscribed before the replay below, so nothing published meanwhile is missed
    replay     the stored messages after the floor, in order
    live       a broadcast at the next position is pushed; one below it was already pushed
               (the seam between replay and live: skipped); one above it means a gap (a
               broadcast lost to a netsplit, a dead PubSub link or a killed node): the missing
               positions are read from the store and pushed first
    poll       every `POLL` seconds with nothing live, the store is asked for the room's last
               position, so the tail of a gap (nothing published after it) is caught up too

The store is the source of truth (every node's publishes are in it, whatever PubSub lost), so
this holds on mesh and Redis PubSub, after kills, restarts and netsplits.

Five deliberate defects live here (`_bugs.py`), each a mistake real catch-up code has made:
`catch_up_off_by_one` (the floor taken as inclusive: position N+1 is never sent),
`catch_up_from_memory` (replay and gaps from this node's own memory of what it saw, not the store),
`catch_up_subscribe_late` (the replay read before subscribing, and live messages trusted after it,
no gap filled: what was published in between is lost), `catch_up_no_dedupe` (live messages during
the replay pushed as they come: the seam duplicates) and `catch_up_capped` (only the last `CAP`
messages replayed).
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import trio

from ._socket import ChannelContext
from ._store import StoredMessage

POLL = 0.5  # seconds: how often an idle catch-up channel asks the store for its room's tail
CAP = 20  # only with catch_up_capped: the messages replayed
MEMORY = 10_000  # only with catch_up_from_memory: the messages a node remembers per room
_SEEN: dict[str, dict[int, Any]] = {}  # only with catch_up_from_memory: room -> pos -> payload


def remember(topic: str, payload: Any) -> None:
    """The catch_up_from_memory defect's node memory: every message this node saw."""
    pos = payload.get("seq") if isinstance(payload, dict) else None
    if isinstance(pos, int):
        seen = _SEEN.setdefault(topic, {})
        seen[pos] = payload
        if len(seen) > MEMORY:
            del seen[min(seen)]


def with_position(message: StoredMessage) -> Any:
    """A stored message as its broadcast carried it: the payload and its position."""
    payload = message.payload()
    return {**payload, "seq": message.pos} if isinstance(payload, dict) else payload


class CatchUp:
    """One channel's catch-up: what it owes its client and in which order."""

    def __init__(self, context: ChannelContext, since: int | None) -> None:
        self.context = context
        self.since = since
        self.next: int | None = None  # the next position owed; None: the first live one's
        self.live: deque[Any] = deque()
        self.wake = trio.Event()
        self.early: list[StoredMessage] = []  # only with catch_up_subscribe_late
        self.replaying = False

    def _on(self, bug: str) -> bool:
        return self.context.services.bugs.on(bug)

    async def joined(self) -> None:
        """At join, before the channel is subscribed: the floor (and, with the defect, the
        whole replay)."""
        store, topic = self.context.services.store, self.context.topic
        floor = self.since if self.since is not None else await store.last_pos(topic)
        if self._on("catch_up_off_by_one") and self.since is not None:
            floor += 1  # "since" taken as inclusive: the client already had N+1
        self.next = floor + 1
        if self._on("catch_up_subscribe_late"):
            self.early = await store.after(topic, floor)

    def offer(self, payload: Any) -> None:
        """A live broadcast for this channel (its handle_out): queued, in arrival order."""
        if self._on("catch_up_from_memory"):
            remember(self.context.topic, payload)
        if self._on("catch_up_no_dedupe") and self.replaying:
            self.context.push("new_msg", payload)  # pushed as it comes, replayed or not
            return
        self.live.append(payload)
        self.wake.set()

    async def run(self) -> None:
        """After the join (subscribed): the replay, then live messages in order, for ever."""
        self.replaying = True
        if self._on("catch_up_subscribe_late"):
            replay = self.early  # read before the subscription: what came between is lost
        else:
            assert self.next is not None
            replay = await self._read(self.next - 1, until=None)
            if self._on("catch_up_capped") and len(replay) > CAP:
                replay = replay[-CAP:]
                self.next = None if replay[0].pos is None else replay[0].pos
        for message in replay:
            self._push(with_position(message))
        self.replaying = False
        while True:
            with trio.move_on_after(POLL):
                await self.wake.wait()
            self.wake = trio.Event()
            if not self.live:
                await self._tail()
            while self.live:
                await self._deliver(self.live.popleft())

    async def _deliver(self, payload: Any) -> None:
        pos = payload.get("seq") if isinstance(payload, dict) else None
        if not isinstance(pos, int):
            self.context.push("new_msg", payload)
            return
        if self.next is None:
            self.next = pos
        if pos < self.next:
            return  # already pushed (the replay had it)
        if pos > self.next and not self._on("catch_up_subscribe_late"):
            await self._fill(pos - 1)  # (the defect trusts live messages: no gap is filled)
        self._push(payload)

    async def _tail(self) -> None:
        """Nothing live for a while: whatever the room has past the next position owed."""
        if self.next is None or self._on("catch_up_subscribe_late"):
            return
        store, topic = self.context.services.store, self.context.topic
        if self._on("catch_up_from_memory"):
            last = max(_SEEN.get(topic) or {0: None})
        else:
            last = await store.last_pos(topic)
        if last >= self.next:
            await self._fill(last)

    async def _fill(self, last: int) -> None:
        """Push the positions from the next owed up to `last`, read from the store."""
        assert self.next is not None
        for message in await self._read(self.next - 1, until=last):
            self._push(with_position(message))

    async def _read(self, after: int, until: int | None) -> list[StoredMessage]:
        topic = self.context.topic
        if self._on("catch_up_from_memory"):
            seen = _SEEN.get(topic, {})
            positions = sorted(p for p in seen if p > after and (until is None or p <= until))
            return [_remembered(topic, p, seen[p]) for p in positions]
        found = await self.context.services.store.after(
            topic, after, None if until is None else until - after
        )
        return [m for m in found if m.pos is not None]

    def _push(self, payload: Any) -> None:
        pos = payload.get("seq") if isinstance(payload, dict) else None
        if isinstance(pos, int) and self.next is not None:
            if pos < self.next:
                return
            self.next = pos + 1
        self.context.push("new_msg", payload)


def _remembered(topic: str, pos: int, payload: Any) -> StoredMessage:
    body = {k: v for k, v in payload.items() if k != "seq"} if isinstance(payload, dict) else {}
    return StoredMessage(topic, str(body.get("id", "")), json.dumps(body), "", 0, pos)
