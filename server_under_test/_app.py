"""The demo application: chat rooms on topics `room:<id>`, the contract scenarios rely on.

Events a client may push to a joined room:

    new_msg  {"id", ...}   persist (the store is the source of truth), then broadcast `new_msg`
                           with the same payload to every subscriber on every node, then reply
                           ok {"id"}. A repeated id is acknowledged again, never stored or
                           broadcast twice (idempotent publish).
    history  {}            reply ok {"messages": [payload, ...]} in store order
    ping     {}            reply ok {} (a round trip through the channel)
    shout    {...}         broadcast_from: every other subscriber gets `shout`
    kick     {"user_id"}   broadcast `disconnect` to that user's sockets (they close with 1001);
                           only your own user (a verified token's, `_auth`): anyone else's is
                           refused

Test knobs, so every protocol path can be exercised against a real process:

    join params  {"reject": REASON}  refuse the join with {"reason": REASON}
                 {"join_delay_ms": N} answer the join N ms late (a slow join)
                 {"tick_ms": N}      a recurring push `tick` {"n"} to this client only
                 {"user": NAME}      who the client is (only the timer_once_per_user bug reads it)
                 {"dedupe": true}    intercept `new_msg` (handle_out) and skip ids this channel
                                     has already pushed: per-channel state, as in point 6
                 {"since": N|null}   catch-up (`_catchup`): every stored message after position
                                     N, then the live ones, in order, each once (at least once)

Every `new_msg` broadcast carries the message's position in its room as `seq` (the store's).
    events       echo (reply ok with the payload), noreply (never answers), crash (the channel
                 raises: phx_error), stop (reply ok, then phx_close); any other event crashes the
                 channel, as a missing handle_in clause does in Phoenix.

After every join the channel pushes `welcome` {"node", "join_ref"} to its own client only.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import trio

from ._catchup import CatchUp, remember
from ._socket import Channel, ChannelContext, Error, HandleResult, JoinResult, NoReply, Ok, Stop

ROOM_PREFIX = "room:"
REPLAY_ON_JOIN = 100  # only with the duplicate_after_rejoin bug: "catch up" on the last 100
WRITE_BEHIND_DELAY = 0.5  # only with the ack_before_persist bug
REORDER_JITTER = 0.05  # only with the reorder_publisher bug
MAX_JOIN_DELAY_MS = 10_000  # test knobs are bounded: a 1e308 ms join would hold a reader for ever
MIN_TICK_MS = 10
_ACKED: dict[str, set[str]] = {}  # only with ack_before_persist: ids acknowledged by this node
_TIMERS: set[tuple[str, str]] = set()  # only with timer_once_per_user: (user, topic) ever ticked


class RoomChannel:
    """One client's membership of one room."""

    def __init__(self, context: ChannelContext) -> None:
        self.context = context
        self.intercept: frozenset[str] = frozenset()
        self.tick_ms: float | None = None
        self.user = ""
        self.pushed_ids: set[str] = set()
        self.catch_up: CatchUp | None = None

    async def join(self, params: Any) -> JoinResult:
        if not isinstance(params, dict):
            params = {}
        if params.get("reject"):
            return Error({"reason": str(params["reject"])})
        delay = params.get("join_delay_ms")
        if isinstance(delay, int | float) and delay > 0:
            if not delay <= MAX_JOIN_DELAY_MS:
                return Error({"reason": f"join_delay_ms must be at most {MAX_JOIN_DELAY_MS}"})
            await trio.sleep(delay / 1000)
        if params.get("dedupe"):
            self.intercept = frozenset({"new_msg"})
        if "since" in params:
            since = params["since"]
            if since is not None and (not isinstance(since, int) or since < 0):
                return Error({"reason": "since must be a position (an integer >= 0) or null"})
            self.catch_up = CatchUp(self.context, since)
            await self.catch_up.joined()
            self.intercept = frozenset({"new_msg"})
        tick = params.get("tick_ms")
        if isinstance(tick, int | float) and tick > 0:
            if not MIN_TICK_MS <= tick <= MAX_JOIN_DELAY_MS * 100:
                return Error({"reason": f"tick_ms must be between {MIN_TICK_MS} and 1000000"})
            self.tick_ms = tick
        self.user = str(params.get("user", ""))
        return Ok({"node": self.context.node})

    async def after_join(self) -> None:
        ctx = self.context
        ctx.push("welcome", {"node": ctx.node, "join_ref": ctx.join_ref})
        if ctx.services.bugs.on("duplicate_after_rejoin"):
            for message in await ctx.services.store.history(ctx.topic, limit=REPLAY_ON_JOIN):
                ctx.push("new_msg", message.payload())
        if self.catch_up is not None:
            ctx.start_soon(self.catch_up.run)
        if self.tick_ms is not None:
            if ctx.services.bugs.on("timer_once_per_user"):
                key = (self.user, ctx.topic)
                if key in _TIMERS:  # "its timer is already running" (it died with the channel)
                    return
                _TIMERS.add(key)
            ctx.start_soon(self._tick)

    async def _tick(self) -> None:
        assert self.tick_ms is not None
        n = 0
        while True:
            await trio.sleep(self.tick_ms / 1000)
            n += 1
            self.context.push("tick", {"n": n})

    async def handle_in(self, event: str, payload: Any) -> HandleResult:
        ctx = self.context
        body = payload if isinstance(payload, dict) else {}
        match event:
            case "new_msg":
                return await self._new_msg(body)
            case "history":
                messages = await ctx.services.store.history(ctx.topic)
                return Ok({"messages": [m.payload() for m in messages]})
            case "ping":
                return Ok({})
            case "echo":
                return Ok(payload)
            case "shout":
                ctx.broadcast_from("shout", body)
                return Ok({})
            case "kick":  # a user may end their own other sessions, nobody else's
                me = ctx.assigns.get("user_id")
                if not me or body.get("user_id") != me:
                    return Error({"reason": "you may only kick yourself"})
                ctx.services.pubsub.broadcast(f"user_socket:{me}", "disconnect", {})
                return Ok({})
            case "noreply":
                return NoReply()
            case "stop":
                return Stop(Ok({}))
            case "crash":
                raise RuntimeError("crash requested by the client")
        raise LookupError(f"no handle_in for event {event!r}")

    async def _new_msg(self, payload: dict[str, Any]) -> HandleResult:
        message_id = payload.get("id")
        if not isinstance(message_id, str) or not message_id:
            return Error({"reason": "new_msg needs a non-empty string id"})
        ctx = self.context
        services = ctx.services
        if services.bugs.on("ack_before_persist"):
            return self._write_behind(message_id, payload)
        pos = await services.store.append(ctx.topic, message_id, payload, ctx.node)
        if pos is not None:
            payload = {**payload, "seq": pos}
            if services.bugs.on("catch_up_from_memory"):
                remember(ctx.topic, payload)
        if pos is not None or services.bugs.on("broadcast_retried_publish"):
            if services.bugs.on("reorder_publisher"):
                services.spawn(lambda: self._broadcast_later(payload))
            else:
                ctx.broadcast("new_msg", payload)
        return Ok({"id": message_id})

    def _write_behind(self, message_id: str, payload: dict[str, Any]) -> HandleResult:
        """The ack_before_persist defect: acknowledge and broadcast now, write a bit later."""
        ctx = self.context
        if message_id not in _ACKED.setdefault(ctx.topic, set()):
            _ACKED[ctx.topic].add(message_id)
            ctx.broadcast("new_msg", payload)
            store, topic, node = ctx.services.store, ctx.topic, ctx.node

            async def persist() -> None:
                await trio.sleep(WRITE_BEHIND_DELAY)
                await store.append(topic, message_id, payload, node)

            ctx.services.spawn(persist)
        return Ok({"id": message_id})

    async def _broadcast_later(self, payload: dict[str, Any]) -> None:
        """The reorder_publisher defect: each broadcast from its own task, after a jitter."""
        await trio.sleep(random.uniform(0.0, REORDER_JITTER))
        self.context.broadcast("new_msg", payload)

    def handle_out(self, event: str, payload: Any) -> Any | None:
        if event == "new_msg" and self.catch_up is not None:
            self.catch_up.offer(payload)  # pushed by the catch-up, in position order
            return None
        if event == "new_msg" and isinstance(payload, dict):
            message_id = payload.get("id")
            if isinstance(message_id, str):
                if message_id in self.pushed_ids:
                    return None
                self.pushed_ids.add(message_id)
        return payload


def route(topic: str) -> Callable[[ChannelContext], Channel] | None:
    """The socket's `channel "room:*"` declarations."""
    if topic.startswith(ROOM_PREFIX) and len(topic) > len(ROOM_PREFIX):
        return RoomChannel
    return None
