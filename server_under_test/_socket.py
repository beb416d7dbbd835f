"""One Phoenix socket: the channel table of a connection and the protocol's rules.

This is the Python counterpart of `Phoenix.Socket` plus `Phoenix.Channel.Server`, following
`research/phoenix-protocol.md` §2 rule by rule:

* frames are handled in arrival order by one reader; a join blocks the reader until the channel
  answers (so the join reply precedes anything the channel pushes, §2.14);
* `heartbeat` on `phoenix` is answered before any channel state is looked at (§2.2);
* a join on an unroutable topic, and any event on a topic with no channel, get the
  `unmatched topic` error with a null join_ref (§2.3, §2.5); the 101st channel is refused;
* a duplicate join closes the old channel: the new join's reply goes out, then `phx_close`
  with the old join_ref (§2.9);
* an event with a stale join_ref is dropped without a reply (§2.4); a leave is answered `ok` and
  followed by `phx_close` (§2.6);
* a channel that raises sends `phx_error {"reason": "channel_crash"}` and is removed; one that
  returns `Stop` sends `phx_close` (§2.7-2.8);
* a malformed frame closes the socket with 1011, an idle socket (nothing received for
  `idle_timeout`) with 1001, never 1000 (§1.7-1.8); closing the socket ends every channel.

Broadcasts arrive through `deliver` on the fastlane: the frame for this socket's serializer is
built once per broadcast and shared by every subscriber; only intercepted events go through the
channel's `handle_out`, which costs one encode per subscriber, as in Phoenix.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from harness.phoenix import (
    HEARTBEAT_TOPIC,
    Broadcast,
    ChannelClose,
    ChannelError,
    Codec,
    Heartbeat,
    Join,
    Leave,
    Message,
    Push,
    RemoteProtocolError,
    Reply,
    Role,
    ServerEvent,
)

from ._bugs import Bugs
from ._edge import CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR, WebSocket, binary_frame, text_frame
from ._pubsub import Delivery, PubSub
from ._store import Store

log = logging.getLogger(__name__)

MAX_CHANNELS = 100
CHANNEL_CRASH = {"reason": "channel_crash"}
UNMATCHED_TOPIC = {"reason": "unmatched topic"}


@dataclass(frozen=True, slots=True)
class Ok:
    response: Any = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Error:
    response: Any = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NoReply:
    pass


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop the channel normally (`phx_close`), after the optional reply."""

    reply: Ok | Error | None = None


JoinResult = Ok | Error
HandleResult = Ok | Error | NoReply | Stop


class Channel(Protocol):
    """What an application channel implements (Phoenix.Channel's callbacks)."""

    intercept: frozenset[str]

    async def join(self, params: Any) -> JoinResult: ...

    async def after_join(self) -> None: ...

    async def handle_in(self, event: str, payload: Any) -> HandleResult: ...

    def handle_out(self, event: str, payload: Any) -> Any | None: ...


@dataclass(frozen=True, slots=True)
class NodeServices:
    """What every socket and channel of a node shares."""

    node: str
    store: Store
    pubsub: PubSub
    bugs: Bugs
    idle_timeout: float
    route: Callable[[str], Callable[[ChannelContext], Channel] | None]
    spawn: Callable[[Callable[[], Awaitable[None]]], None]


@dataclass(eq=False)
class ChannelContext:
    """A channel's handle on its socket: push to this client, broadcast, run tasks."""

    topic: str
    join_ref: str
    services: NodeServices
    assigns: dict[str, str]
    _socket: PhoenixSocket
    _scopes: list[trio.CancelScope] = field(default_factory=list)

    @property
    def node(self) -> str:
        return self.services.node

    def push(self, event: str, payload: Any) -> None:
        """`push/3`: a message to this client only, carrying the channel's join_ref."""
        self._socket.send(Message(self.topic, event, payload, self.join_ref))

    def broadcast(self, event: str, payload: Any) -> None:
        self.services.pubsub.broadcast(self.topic, event, payload)

    def broadcast_from(self, event: str, payload: Any) -> None:
        self.services.pubsub.broadcast(
            self.topic, event, payload, exclude=self._socket.entries.get(self.topic)
        )

    def start_soon(self, task: Callable[[], Awaitable[None]]) -> None:
        """Run a task for as long as the channel lives; if it raises, the channel crashes."""
        self._socket.start_channel_task(self, task)

    def cancel_tasks(self) -> None:
        for scope in self._scopes:
            scope.cancel()


@dataclass(eq=False)
class ChannelEntry:
    """A joined channel in the socket's table; subscribed to its topic on the fastlane."""

    topic: str
    join_ref: str
    channel: Channel
    context: ChannelContext
    socket: PhoenixSocket

    def deliver(self, delivery: Delivery) -> None:
        self.socket.deliver(self, delivery)


@dataclass(eq=False)
class _SocketIdSubscriber:
    """Subscribed to the socket id topic: a `disconnect` broadcast closes the socket (§2.12)."""

    socket: PhoenixSocket

    def deliver(self, delivery: Delivery) -> None:
        if delivery.event == "disconnect":
            self.socket.ws.close(CLOSE_GOING_AWAY, "disconnected")


class PhoenixSocket:
    """Drive one websocket connection for its whole life."""

    def __init__(
        self, services: NodeServices, ws: WebSocket, codec: Codec, assigns: dict[str, str]
    ) -> None:
        self.services = services
        self.ws = ws
        self.codec = codec
        self.assigns = assigns
        self.entries: dict[str, ChannelEntry] = {}
        self.zombies: list[
            ChannelEntry
        ] = []  # only with no_close_on_duplicate_join, deliver_after_leave
        self.socket_id = f"user_socket:{assigns['user_id']}" if assigns.get("user_id") else None
        self._id_subscriber = _SocketIdSubscriber(self)
        self._nursery: trio.Nursery | None = None

    async def run(self) -> None:
        pubsub = self.services.pubsub
        if self.socket_id:
            pubsub.subscribe(self.socket_id, self._id_subscriber)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._read_loop()
                nursery.cancel_scope.cancel()
        finally:
            if self.socket_id:
                pubsub.unsubscribe(self.socket_id, self._id_subscriber)
            for entry in [*self.entries.values(), *self.zombies]:
                self._remove(entry)

    async def _read_loop(self) -> None:
        while True:
            with trio.move_on_after(self.services.idle_timeout) as idle:
                data = await self.ws.receive()
            if idle.cancelled_caught:
                self.ws.close(CLOSE_GOING_AWAY, "idle timeout")
                return
            if data is None:
                return
            try:
                event = self.codec.decode(data, sender=Role.CLIENT)
            except RemoteProtocolError as exc:
                log.info("closing a socket that sent a malformed frame: %s", exc)
                self.ws.close(CLOSE_INTERNAL_ERROR, "malformed frame")
                return
            if self.ws.close_code is not None:
                return
            await self._handle(event)

    async def _handle(self, event: Any) -> None:
        match event:
            case Heartbeat(ref):
                self.send(Reply(HEARTBEAT_TOPIC, "ok", {}, ref, None))
            case Join():
                await self._join(event)
            case Leave():
                self._leave(event)
            case Push():
                await self._push(event)

    def send(self, event: ServerEvent) -> None:
        wire = self.codec.encode(event)
        if isinstance(wire, str):
            self.ws.send_text(wire)
        else:
            self.ws.send_binary(wire)

    # -- join / leave ------------------------------------------------------------------------

    async def _join(self, join: Join) -> None:
        factory = self.services.route(join.topic)
        if factory is None:
            log.warning("Ignoring unmatched topic %r", join.topic)
            self.send(Reply(join.topic, "error", UNMATCHED_TOPIC, join.ref, None))
            return
        old = self.entries.pop(join.topic, None)
        if old is not None:
            if self.services.bugs.on("no_close_on_duplicate_join"):
                self.zombies.append(old)
                old = None
            else:
                self._remove(old)
        if len(self.entries) >= MAX_CHANNELS:
            reason = {"reason": "too many channels joined"}
            self.send(Reply(join.topic, "error", reason, join.ref, join.join_ref))
            return
        context = ChannelContext(join.topic, join.join_ref, self.services, self.assigns, self)
        channel = factory(context)
        try:
            result = await channel.join(join.payload if join.payload is not None else {})
        except Exception:
            log.exception("join of %s crashed", join.topic)
            result = Error({"reason": "join crashed"})
        if isinstance(result, Ok):
            entry = ChannelEntry(join.topic, join.join_ref, channel, context, self)
            self.entries[join.topic] = entry
            self.services.pubsub.subscribe(join.topic, entry)
        self.send(
            Reply(
                join.topic,
                "ok" if isinstance(result, Ok) else "error",
                result.response,
                join.ref,
                join.join_ref,
            )
        )
        if old is not None:
            self.send(ChannelClose(join.topic, old.join_ref, {}))
        if isinstance(result, Ok):
            self.start_channel_task(context, channel.after_join)

    def _leave(self, leave: Leave) -> None:
        entry = self.entries.get(leave.topic)
        if entry is None:
            self.send(Reply(leave.topic, "ok", {}, leave.ref, leave.join_ref))
            return
        if leave.join_ref is not None and leave.join_ref != entry.join_ref:
            return  # the client raced a server close: no reply
        if self.services.bugs.on("deliver_after_leave"):
            del self.entries[entry.topic]  # closed, but still subscribed
            entry.context.cancel_tasks()
            self.zombies.append(entry)
        else:
            self._remove(entry)
        self.send(Reply(leave.topic, "ok", {}, leave.ref, entry.join_ref))
        self.send(ChannelClose(leave.topic, entry.join_ref, {}))

    def _remove(self, entry: ChannelEntry) -> None:
        if self.entries.get(entry.topic) is entry:
            del self.entries[entry.topic]
        if entry in self.zombies:
            self.zombies.remove(entry)
        self.services.pubsub.unsubscribe(entry.topic, entry)
        entry.context.cancel_tasks()

    # -- events to a channel -----------------------------------------------------------------

    async def _push(self, push: Push) -> None:
        entry = self.entries.get(push.topic)
        if entry is None:
            self.send(Reply(push.topic, "error", UNMATCHED_TOPIC, push.ref, None))
            return
        if push.join_ref is not None and push.join_ref != entry.join_ref:
            return  # stale join_ref: dropped silently
        try:
            result = await entry.channel.handle_in(push.event, push.payload)
        except Exception as exc:
            self._crash(entry, exc)
            return
        if self.entries.get(push.topic) is not entry:
            return  # the channel went away while the handler ran
        match result:
            case Ok(response):
                self.send(Reply(push.topic, "ok", response, push.ref, entry.join_ref))
            case Error(response):
                self.send(Reply(push.topic, "error", response, push.ref, entry.join_ref))
            case Stop(reply):
                if reply is not None:
                    status = "ok" if isinstance(reply, Ok) else "error"
                    self.send(Reply(push.topic, status, reply.response, push.ref, entry.join_ref))
                self._remove(entry)
                self.send(ChannelClose(push.topic, entry.join_ref, {}))

    def _crash(self, entry: ChannelEntry, exc: BaseException) -> None:
        log.info("channel %s (join_ref %s) crashed: %r", entry.topic, entry.join_ref, exc)
        if self.entries.get(entry.topic) is entry:
            self._remove(entry)
            self.send(ChannelError(entry.topic, entry.join_ref, CHANNEL_CRASH))

    def start_channel_task(
        self, context: ChannelContext, task: Callable[[], Awaitable[None]]
    ) -> None:
        assert self._nursery is not None
        scope = trio.CancelScope()
        context._scopes.append(scope)

        async def run() -> None:
            with scope:
                try:
                    await task()
                except Exception as exc:
                    entry = self.entries.get(context.topic)
                    if entry is not None and entry.context is context:
                        self._crash(entry, exc)

        self._nursery.start_soon(run)

    # -- broadcasts --------------------------------------------------------------------------

    def deliver(self, entry: ChannelEntry, delivery: Delivery) -> None:
        if delivery.event in entry.channel.intercept:
            payload = entry.channel.handle_out(delivery.event, delivery.payload)
            if payload is not None:
                self.send(Message(entry.topic, delivery.event, payload, entry.join_ref))
            return
        vsn = self.codec.vsn
        wire = delivery.wire.get(vsn)
        if wire is None:
            encoded = self.codec.encode(Broadcast(delivery.topic, delivery.event, delivery.payload))
            wire = text_frame(encoded) if isinstance(encoded, str) else binary_frame(encoded)
            delivery.wire[vsn] = wire
        self.ws.send_wire(wire)

    def snapshot(self) -> dict[str, Any]:
        return {topic: entry.join_ref for topic, entry in self.entries.items()}
