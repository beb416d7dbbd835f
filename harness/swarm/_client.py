"""A swarm client: the sans-io `ClientSocket` driven over a websocket, recording everything.

The driver owns the I/O and the clock; the model owns every decision (when to reconnect, what to
rejoin, which frame is stale). One loop per client:

    while running:
        wait until the model wants a connection (timers keep running while disconnected)
        pick a node (same / next / random, as the scenario says), open the websocket
        run a reader (every frame that arrived -> model) and a ticker (deadlines -> model)
        until the socket dies
        tell the model it closed; record why

Every model notice becomes a history op (`harness.history` lists them). Sends go through one
lock and are taken from the model inside it, so frames leave in the model's order.

Connections being set up are limited per node and per trio loop (`connecting`): RFC 6455 §4.1
allows a client one connection in CONNECTING state per host; browsers relax that, and so does the
swarm (`CONNECTING_PER_NODE`). A slot is held from the handshake until the socket's first joins
are answered (or `CONNECT_TIMEOUT` after the handshake at most). Without it 10,000 clients that
start at once all wait in the nodes' accept queues and join queues, time out (5 s connect, 10 s
join) and come back as a retry herd: 3,455 of 10,002 joined in 90 s; with a limit on handshakes
only, 9,349, with a thousand join timeouts (`bench/capacity.py`). The connect timeout counts from
the start of the handshake, not from the wait for a slot.

Client-side faults for the nemesis: `close_transport()` (a client bug closes its socket; the
model was not told, so it reconnects) and `crash_transport()` (the TCP connection just dies,
no close handshake).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import trio

from .._clock import RunClock
from ..foreign import MAX_DEPTH, clip
from ..grammar.behaviour import Behaviour, ClientPlan, Endpoint
from ..grammar.templates import render
from ..history import Recorder
from ..phoenix import (
    Broadcast,
    ChannelClose,
    ChannelError,
    ClientSocket,
    Message,
    RemoteProtocolError,
    Reply,
    Role,
    V2JSONCodec,
)
from ._config import CONNECT_TIMEOUT, CONNECTING_PER_NODE, socket_url
from ._recording import Recording
from ._websocket import (
    ClientWebSocket,
    ConnectionClosed,
    HandshakeFailed,
    HandshakeRejected,
    open_websocket,
)

HEAD = 80  # bytes of a malformed frame kept in its `bad_frame` op
_CONNECTING: trio.lowlevel.RunVar[dict[str, trio.CapacityLimiter]] = trio.lowlevel.RunVar(
    "swarm_connecting"
)


def connecting(node_url: str) -> trio.CapacityLimiter:
    """The limit of handshakes in flight to one node from this trio loop."""
    try:
        limits = _CONNECTING.get()
    except LookupError:
        limits = {}
        _CONNECTING.set(limits)
    limit = limits.get(node_url)
    if limit is None:
        limit = limits[node_url] = trio.CapacityLimiter(CONNECTING_PER_NODE)
    return limit


class SwarmClient:
    """One client of `plan`, behaving as `behaviour` says, against the nodes at `endpoints`;
    `seed` seeds its choice of node on reconnect (`random_node`)."""

    def __init__(
        self,
        plan: ClientPlan,
        behaviour: Behaviour,
        endpoints: Sequence[Endpoint],
        recorder: Recorder,
        clock: RunClock,
        seed: int | str = 0,
    ) -> None:
        self.plan = plan
        self.id = plan.id
        self.topics = plan.topics
        self.behaviour = behaviour
        self.endpoints = tuple(endpoints)
        self.clock = clock
        self._seed = seed
        self._rng: random.Random | None = None  # made on first use: 2.5 KB a client otherwise
        clients = behaviour.clients
        self.model = ClientSocket(
            clients.timings,
            legacy_close_1000=clients.legacy_close_1000,
            rejoin_on_reconnect=clients.rejoin,
            duplicate_join=clients.duplicate_join,
        )
        self.codec = V2JSONCodec(max_depth=MAX_DEPTH)  # the foreign JSON rule
        self.node_index = plan.first_node % len(self.endpoints)
        self.recording = Recording(plan.id, behaviour, recorder, self._node_name, self._publish)
        values = {"client": plan.id, "run": behaviour.run_id}
        self.params = {k: str(render(v, values)) for k, v in behaviour.app.socket.params.items()}
        self.retries = behaviour.workload.retries if behaviour.publisher else 0
        self.ws: ClientWebSocket | None = None
        self._wake = trio.Event()
        self._sleeping_until: float | None = None  # the deadline the ticker sleeps until
        self._requested_close: tuple[int, str] | None = None
        self.published = 0
        self.ready = False  # connected and every topic joined (kept by `_record_notices`)
        self._slot: trio.CapacityLimiter | None = None  # held from connect until joined
        self._slot_until = 0.0  # trio time: the slot is given back then at the latest

    @property
    def node(self) -> Endpoint:
        return self.endpoints[self.node_index]

    def _node_name(self) -> str:
        return self.endpoints[self.node_index].name

    @property
    def received(self) -> int:
        return self.recording.received

    @property
    def acknowledged(self) -> int:
        return self.recording.acknowledged

    @property
    def refused(self) -> str | None:
        """The first refusal of a join or of the socket (the server's reason)."""
        return self.recording.refused

    @property
    def connected(self) -> bool:
        return self.model.connected

    def backlog(self) -> int:
        """Bytes received by the socket and not read yet."""
        return self.ws.pending_bytes() if self.ws is not None else 0

    def joined_topics(self) -> int:
        return sum(1 for t in self.topics if self.model.state(t).value == "joined")

    # -- commands from publishers and the nemesis ----------------------------------------------

    def publish(
        self,
        topic: str,
        payload: Mapping[str, Any],
        message_id: str,
        seq: int | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """Push the app's publish event; the outcome arrives as a publish ok/fail/info op."""
        value: dict[str, Any] = {
            "topic": topic,
            "id": message_id,
            "publisher": self.id,
        }
        if seq is not None:
            value["seq"] = seq
        self._publish(value, dict(payload), timeout, self.retries)

    def _publish(
        self,
        value: dict[str, Any],
        payload: dict[str, Any],
        timeout: float | None,
        retries_left: int,
    ) -> None:
        now = self.clock.now()
        topic, message_id = str(value["topic"]), str(value["id"])
        self.recording.publishes[message_id] = value
        self.recording.payloads[message_id] = (value, payload, timeout, retries_left)
        self.published += 1
        self.recording.record(now, "invoke", "publish", value)
        event = self.behaviour.app.publish.event
        self.model.push(topic, event, payload, now, push_id=message_id, timeout=timeout)
        self._wake.set()

    async def close_transport(self, code: int = 1000, reason: str = "client bug") -> None:
        """A bug in client code closes the socket; the model is not told, so it reconnects."""
        if self.ws is not None:
            await self.ws.aclose(code, reason, timeout=1)

    async def leave_and_rejoin(self, after: float) -> None:
        """The application leaves its first topic and joins it again `after` seconds later."""
        topic = self.topics[0]
        now = self.clock.now()
        value = {"topic": topic, "join_ref": self.model.join_ref(topic)}
        self.recording.record(now, "invoke", "leave", value)
        self.model.leave(topic, now)
        self._record_notices()
        self._wake.set()
        await trio.sleep(after)
        self.model.join(topic, self._join_params(topic), self.clock.now())
        self._record_notices()
        self._wake.set()

    async def crash_transport(self) -> None:
        """The TCP connection just dies: no close frame, the server sees EOF."""
        if self.ws is not None:
            self.ws.abort()

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            self.recording.flush_foreign(self.clock.now())

    async def _run(self) -> None:
        now = self.clock.now()
        for topic in self.topics:
            self.model.join(topic, self._join_params(topic), now)
        self.model.connect()
        self._record_notices()
        first = True
        while True:
            await self._wait_for_connect_wish()
            if not first:
                self._choose_node()
            first = False
            url = self._url()
            self.recording.record(self.clock.now(), "invoke", "connect", {"url": url})
            error: str | None = None
            slot = connecting(self.node.url)
            await slot.acquire_on_behalf_of(self)
            self._slot = slot
            try:
                ws = await open_websocket(url, CONNECT_TIMEOUT)
            except HandshakeRejected as exc:
                error = str(exc)
                self.recording.refused = self.recording.refused or (
                    f"{self.id}'s socket was {error} at {url.split('?')[0]}"
                )
            except (HandshakeFailed, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            except trio.TooSlowError:
                error = "connect timeout"
            else:
                self._slot_until = trio.current_time() + CONNECT_TIMEOUT
                self._opened(ws, url)
                await self._session(ws)
            finally:
                self._release_slot()
            if error is not None and not self.model.connected:
                now = self.clock.now()
                self.recording.record(now, "fail", "connect", {"url": url, "error": error})
                self.model.closed(now, None, error)
                self._record_notices()

    async def _wait_for_connect_wish(self) -> None:
        while not self.model.want_connect:
            await self._tick()

    async def _tick(self) -> None:
        """Sleep until the model's next deadline or a wake-up, then let the model advance."""
        deadline = self.model.next_deadline()
        self._sleeping_until = deadline
        wake_at = self._trio_time(deadline)
        if self._slot is not None:
            wake_at = min(wake_at, self._slot_until)
        with trio.move_on_at(wake_at):
            await self._wake.wait()
        self._wake = trio.Event()
        self.model.advance(self.clock.now())
        self._record_notices()
        if self._slot is not None and trio.current_time() >= self._slot_until:
            self._release_slot()

    def _release_slot(self) -> None:
        """The handshake and the first joins are over (answered, failed or out of time): the
        next client may connect to this node."""
        if self._slot is not None:
            self._slot.release_on_behalf_of(self)
            self._slot = None

    def _choose_node(self) -> None:
        count = len(self.endpoints)
        on_reconnect = self.behaviour.clients.on_reconnect
        if on_reconnect == "next_node":
            self.node_index = (self.node_index + 1) % count
        elif on_reconnect == "random_node":
            if self._rng is None:
                self._rng = random.Random(f"{self._seed}/{self.id}")
            self.node_index = self._rng.randrange(count)

    def _join_params(self, topic: str) -> Any:
        """The join payload; with `{cursor}` in it, a function the model calls on every join
        and rejoin (the phoenix.js params closure), so each carries the last cursor seen."""
        template = self.behaviour.app.join.payload
        values: dict[str, Any] = {"client": self.id, "topic": topic, "run": self.behaviour.run_id}
        if self.recording.cursor_path is None:
            payload = render(template, values)
            return payload if isinstance(payload, dict) else {}
        cursors = self.recording.cursors

        def params() -> dict[str, Any]:
            payload = render(template, {**values, "cursor": cursors.get(topic)})
            return payload if isinstance(payload, dict) else {}

        return params

    def _url(self) -> str:
        return socket_url(self.node.url, self.behaviour.app.socket.path, self.params)

    def _opened(self, ws: ClientWebSocket, url: str) -> None:
        now = self.clock.now()
        self.recording.record(now, "ok", "connect", {"url": url})
        self.ws = ws
        self.model.opened(now)
        self._record_notices()

    async def _session(self, ws: ClientWebSocket) -> None:
        """Until the socket closes: the loop's socket hub hands every batch of frames to
        `_on_messages` (no task of its own), a ticker task serves the model's deadlines."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._ticker, ws, nursery)
                await self._flush(ws)
                ws.push_to(self._on_messages)
                await ws.wait_closed()
                nursery.cancel_scope.cancel()
        finally:
            self.ws = None
            with trio.CancelScope(shield=True):
                await ws.aclose(timeout=0.5)
            reason = ws.closed
            code = reason.code if reason is not None else None
            text = reason.reason if reason is not None else ""
            if self._requested_close is not None:  # our own close: record what we asked for
                code, text = self._requested_close
                self._requested_close = None
            self.model.closed(self.clock.now(), code, text)
            self._record_notices()

    def _on_messages(self, messages: list[tuple[bool, bytes]]) -> None:
        """Frames that arrived together: into the model, into the history, answers out."""
        now = self.clock.now()
        for is_text, data in messages:
            self._receive(is_text, data, now)
        deadline = self.model.next_deadline()
        if self.model.close_request is not None or (
            deadline is not None
            and (self._sleeping_until is None or deadline < self._sleeping_until)
        ):
            self._wake.set()  # the ticker sleeps past the model's new deadline
        self._record_notices()
        ws = self.ws
        if ws is not None and self._send_outgoing(ws):
            self._wake.set()  # the ticker waits for the kernel to take the rest

    def _receive(self, is_text: bool, data: bytes, now: float) -> None:
        try:
            if is_text:
                event = self.codec.decode_text(data, sender=Role.SERVER)
            else:
                event = self.codec.decode(data, sender=Role.SERVER)
        except RemoteProtocolError as exc:
            head = data[:HEAD].decode("utf-8", "replace")
            value = {"error": clip(str(exc)), "head": head, "size": len(data), "text": is_text}
            self.recording.record(now, "info", "bad_frame", value)
            return
        assert isinstance(event, Reply | Message | Broadcast | ChannelError | ChannelClose)
        self.model.receive(event, now)

    async def _ticker(self, ws: ClientWebSocket, nursery: trio.Nursery) -> None:
        try:
            while True:
                await self._tick()
                await self._flush(ws)
                if self.model.close_request is not None:
                    code, reason = self.model.close_request
                    self.model.close_request = None
                    self._requested_close = (code, reason)
                    await ws.aclose(code, reason, timeout=1)
                    break
        except ConnectionClosed:
            pass
        nursery.cancel_scope.cancel()

    async def _flush(self, ws: ClientWebSocket) -> None:
        """Frames leave in the model's order: queued synchronously, drained only when the
        kernel's buffer is full."""
        if self._send_outgoing(ws):
            await ws.drain()

    def _send_outgoing(self, ws: ClientWebSocket) -> bool:
        """Queue the model's frames; whether some wait for the kernel's buffer."""
        for frame in self.model.take_outgoing():
            wire = self.codec.encode(frame)
            if isinstance(wire, str):
                ws.send_text(wire.encode())
            else:
                ws.send_binary(wire)
        return ws.backlogged

    def _trio_time(self, deadline: float | None) -> float:
        if deadline is None:
            return float("inf")
        return trio.current_time() + max(0.0, deadline - self.clock.now())

    # -- recording -------------------------------------------------------------------------

    def _record_notices(self) -> None:
        now = self.clock.now()
        changed = False
        for notice in self.model.take_notices():
            changed = self.recording.notice(notice, now) or changed
        if changed:
            self.ready = self.model.connected and self.joined_topics() == len(self.topics)
            if self.ready:
                self._release_slot()
