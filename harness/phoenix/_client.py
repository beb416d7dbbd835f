"""The client side of Phoenix Channels, as phoenix.js 1.8.16 behaves, without I/O or clocks.

`ClientSocket` models one JS `Socket` with its `Channel`s (one per topic). A driver feeds it
what happened (`opened`, `closed`, `receive`, `advance(now)` when a deadline passes) and
commands (`join`, `leave`, `push`), then takes out what to do (`take_outgoing()`: frames to
send; `want_connect`; `close_request`) and what happened (`take_notices()`, for the history).
Time is always passed in (`now`, seconds on any monotonic clock), so tests drive it with a fake
clock and the trio driver with `trio.current_time()`.

Behaviour copied from `research/phoenix-protocol.md` §3, with its timings as data (`Timings`,
with the channel states and their table in `_channel.py`, the notices in `_notices.py`):
* reconnect backoff 10, 50, 100, 150, 200, 250, 500, 1000, 2000 ms then 5 s; the tries counter
  resets only when a connection opens. After any close the client did not ask for, it
  reconnects (1.8.16); `legacy_close_1000=True` gives ≤1.8.15's "a clean 1000 means stay down".
* heartbeat every `heartbeat_interval` after open or after the last ack; no ack within the same
  interval is a heartbeat timeout: every channel errors, the client closes the transport itself
  (1000, "heartbeat timeout") and reconnects.
* channel states closed, joining, joined, leaving, errored (`TRANSITIONS`). A refused or
  timed-out join is retried for ever on the rejoin schedule (1, 2, 5 s then 10 s); a join
  timeout sends a leave with the timed-out join_ref, then forgets it (joinPush.reset()), so the
  leave's reply and the `phx_close` after it are stale and the channel stays errored (an error
  while joining forgets it too). A transport failure errors every joined/joining channel; on
  the next open each errored channel rejoins with a new join_ref.
* pushes are sent only while joined; otherwise buffered, their timeout running from the moment
  of the push; on join ok the buffer is sent with fresh refs unless already timed out.
* frames with a non-null join_ref other than the channel's current one are dropped (and
  reported as `StaleDropped`, so server bugs stay visible); null join_ref frames reach the
  channel whatever its state, as in phoenix.js.
* frames queued while disconnected (a join before the first connect, a leave) are flushed on
  open before rejoins, minus stale ones (1.8.16). A join's params may be a closure (`payload`).

`rejoin_on_reconnect=False`: reconnects, never rejoins ("connected but deaf"). `duplicate_join`:
every join sent twice on one connection (the server must close the first). A broadcast to a channel
the client closed is `Received`, state `closed` (phoenix.js drops it; a harness must see it).
`phx_close` is final.
"""

from __future__ import annotations

import itertools
from typing import Any

from . import _notices as note
from ._channel import (
    DEFAULT_TIMINGS,
    TRANSITIONS,
    ChannelRecord,
    ChannelState,
    PendingPush,
    Timings,
)
from ._events import (
    HEARTBEAT_TOPIC,
    Broadcast,
    ChannelClose,
    ChannelError,
    ClientEvent,
    Heartbeat,
    Join,
    Leave,
    Message,
    Push,
    Reply,
    ServerEvent,
)


class ClientSocket:
    """One phoenix.js Socket and its channels, as a pure state machine."""

    def __init__(
        self,
        timings: Timings = DEFAULT_TIMINGS,
        *,
        legacy_close_1000: bool = False,
        rejoin_on_reconnect: bool = True,
        duplicate_join: bool = False,
    ) -> None:
        self.timings = timings
        self.legacy_close_1000 = legacy_close_1000
        self.rejoin_on_reconnect = rejoin_on_reconnect
        self.duplicate_join = duplicate_join
        self.connected = False
        self.want_connect = False
        self.close_request: tuple[int, str] | None = None
        self.channels: dict[str, ChannelRecord] = {}
        self.reconnect_tries = 0
        self._refs = itertools.count(1)
        self._timers: dict[tuple[str, str], float] = {}
        self._pushes: dict[str, PendingPush] = {}  # sent, awaiting a reply, by ref
        self._heartbeat_ref: str | None = None
        self._send_buffer: list[ClientEvent] = []
        self._outgoing: list[ClientEvent] = []
        self._notices: list[note.Notice] = []
        self._closing_by_client = False
        self._disconnected = False

    # -- outputs ---------------------------------------------------------------------------

    def take_outgoing(self) -> list[ClientEvent]:
        out, self._outgoing = self._outgoing, []
        return out

    def take_notices(self) -> list[note.Notice]:
        out, self._notices = self._notices, []
        return out

    def next_deadline(self) -> float | None:
        return min(self._timers.values(), default=None)

    def state(self, topic: str) -> ChannelState:
        channel = self.channels.get(topic)
        return channel.state if channel else ChannelState.CLOSED

    def join_ref(self, topic: str) -> str | None:
        channel = self.channels.get(topic)
        return channel.join_ref if channel else None

    # -- commands --------------------------------------------------------------------------

    def connect(self) -> None:
        """`socket.connect()`: the driver should open a transport now."""
        self._disconnected = False
        if not self.connected:
            self.want_connect = True

    def disconnect(self) -> None:
        """`socket.disconnect()`: close for good, no reconnect."""
        self._disconnected = True
        self.want_connect = False
        self._timers.pop(("socket", "reconnect"), None)
        if self.connected:
            self._closing_by_client = True
            self.close_request = (1000, "disconnect")

    def join(self, topic: str, params: Any = None, now: float = 0.0) -> None:
        """`socket.channel(topic, params).join()` (`ChannelRecord.params`: payload or closure)."""
        if topic in self.channels and self.channels[topic].state is not ChannelState.CLOSED:
            raise ValueError(f"already joined or joining {topic}")
        channel = ChannelRecord(topic, params if params is not None else {})
        self.channels[topic] = channel
        self._send_join(channel, "join", now)

    def leave(self, topic: str, now: float) -> None:
        channel = self.channels.get(topic)
        if channel is None or not self._move(channel, "leave"):
            return
        self._clear_channel_timers(channel)
        channel.rejoin_tries = 0
        if self.connected and channel.join_ref is not None:
            channel.leave_ref = self._ref()
            self._send(Leave(topic, channel.leave_ref, channel.join_ref))
            self._timers[("leave", topic)] = now + self.timings.timeout
        else:
            self._left(channel, "leave")

    def push(
        self,
        topic: str,
        event: str,
        payload: Any,
        now: float,
        *,
        push_id: str,
        timeout: float | None = None,
    ) -> None:
        channel = self.channels.get(topic)
        if channel is None:
            raise ValueError(f"push on {topic} before join")
        wait = self.timings.timeout if timeout is None else timeout
        push = PendingPush(push_id, topic, event, payload, wait, now + wait)
        if self.connected and channel.state is ChannelState.JOINED:
            self._send_push(channel, push, now)
        else:
            channel.buffer.append(push)
            self._timers[("buffered", push_id)] = push.deadline

    # -- transport events ------------------------------------------------------------------

    def opened(self, now: float) -> None:
        self.connected = True
        self.want_connect = False
        self.reconnect_tries = 0
        self._timers.pop(("socket", "reconnect"), None)
        self._notices.append(note.SocketOpened())
        for frame in self._send_buffer:
            if not self._stale(frame):
                self._outgoing.append(frame)
        self._send_buffer.clear()
        self._timers[("socket", "heartbeat")] = now + self.timings.heartbeat_interval
        for channel in list(self.channels.values()):
            self._timers.pop(("rejoin", channel.topic), None)
            channel.rejoin_tries = 0
            if channel.state is ChannelState.ERRORED and self.rejoin_on_reconnect:
                self._send_join(channel, "rejoin", now)

    def closed(self, now: float, code: int | None = None, reason: str = "") -> None:
        """The transport closed, or a connection attempt failed (code None or 1006)."""
        by_client = self._closing_by_client
        was_connected = self.connected
        self.connected = False
        self.want_connect = False  # until the reconnect timer fires
        self.close_request = None
        self._closing_by_client = False
        self._heartbeat_ref = None
        self._timers.pop(("socket", "heartbeat"), None)
        self._timers.pop(("socket", "heartbeat_timeout"), None)
        self._error_channels({"source": "transport", "reason": "connection_closed"})
        if not was_connected:
            for channel in self.channels.values():  # onConnError resets rejoin timers
                channel.rejoin_tries = 0
        stay_down = self._disconnected or (
            self.legacy_close_1000 and code == 1000 and not by_client
        )
        reconnect_in = None
        if not stay_down:
            reconnect_in = self.timings.reconnect_after(self.reconnect_tries + 1)
            self._timers[("socket", "reconnect")] = now + reconnect_in
        self._notices.append(note.SocketClosed(code, reason, by_client, reconnect_in))

    def receive(self, event: ServerEvent, now: float) -> None:
        ref = event.ref if isinstance(event, Reply) else None
        if ref is not None and ref == self._heartbeat_ref:
            self._heartbeat_ref = None
            self._timers.pop(("socket", "heartbeat_timeout"), None)
            self._timers[("socket", "heartbeat")] = now + self.timings.heartbeat_interval
            if event.topic == HEARTBEAT_TOPIC:
                return
        channel = self.channels.get(event.topic)
        if channel is None:
            return
        frame_join_ref = None if isinstance(event, Broadcast) else event.join_ref
        if frame_join_ref is not None and frame_join_ref != channel.join_ref:
            if isinstance(event, Message):
                self._notices.append(
                    note.StaleDropped(
                        event.topic, event.event, event.payload, frame_join_ref, channel.join_ref
                    )
                )
            return
        match event:
            case Reply():
                self._reply(channel, event, now)
            case ChannelError(payload=payload):
                self._channel_error(channel, payload, now)
            case ChannelClose(payload=payload):
                if channel.state is ChannelState.CLOSED:
                    return  # the phx_close after our own leave: phoenix.js has dropped the channel
                self._clear_channel_timers(channel)
                channel.rejoin_tries = 0
                self._move(channel, "close")
                self._notices.append(note.ChannelClosed(channel.topic, channel.join_ref, payload))
            case Message() | Broadcast():
                self._notices.append(
                    note.Received(
                        event.topic,
                        event.event,
                        event.payload,
                        frame_join_ref,
                        channel.join_ref,
                        channel.state,
                    )
                )

    def advance(self, now: float) -> None:
        """Fire every timer whose deadline is at or before `now`, earliest first."""
        while True:
            due = [(deadline, key) for key, deadline in self._timers.items() if deadline <= now]
            if not due:
                return
            _, key = min(due)
            del self._timers[key]
            self._fire(key, now)

    # -- internals -------------------------------------------------------------------------

    def _ref(self) -> str:
        return str(next(self._refs))

    def _send(self, frame: ClientEvent) -> None:
        if self.connected:
            self._outgoing.append(frame)
        else:
            self._send_buffer.append(frame)

    def _stale(self, frame: ClientEvent) -> bool:
        if isinstance(frame, Heartbeat):
            return True
        if self.duplicate_join and isinstance(frame, Join):
            return False  # the defect sends both of its joins, queued or not
        topic = frame.topic
        channel = self.channels.get(topic)
        if channel is None or channel.state is ChannelState.CLOSED:
            return True
        return frame.join_ref != channel.join_ref

    def _move(self, channel: ChannelRecord, trigger: str) -> bool:
        new = TRANSITIONS.get((channel.state, trigger))
        if new is None:
            return False
        if new is not channel.state or trigger == "rejoin":
            self._notices.append(
                note.StateChanged(channel.topic, channel.join_ref, channel.state, new, trigger)
            )
        channel.state = new
        return True

    def _send_join(self, channel: ChannelRecord, trigger: str, now: float) -> None:
        if not self._move(channel, trigger):
            return
        channel.join_ref = self._ref()
        self._send(Join(channel.topic, channel.payload(), channel.join_ref, channel.join_ref))
        if self.duplicate_join:  # the defect: the same join again, the first one now stale
            channel.join_ref = self._ref()
            self._send(Join(channel.topic, channel.payload(), channel.join_ref, channel.join_ref))
        self._timers[("join", channel.topic)] = now + self.timings.timeout
        self._notices.append(note.JoinSent(channel.topic, channel.join_ref))

    def _send_push(self, channel: ChannelRecord, push: PendingPush, now: float) -> None:
        assert channel.join_ref is not None
        push.ref = self._ref()
        push.deadline = now + push.timeout
        self._pushes[push.ref] = push
        self._timers[("push", push.ref)] = push.deadline
        self._send(Push(channel.topic, push.event, push.payload, push.ref, channel.join_ref))
        self._notices.append(
            note.PushSent(push.push_id, push.topic, push.event, push.ref, channel.join_ref)
        )

    def _reply(self, channel: ChannelRecord, reply: Reply, now: float) -> None:
        if channel.state is ChannelState.JOINING and reply.ref == channel.join_ref:
            self._timers.pop(("join", channel.topic), None)
            assert channel.join_ref is not None
            self._notices.append(
                note.JoinReplied(channel.topic, channel.join_ref, reply.status, reply.response)
            )
            if reply.status == "ok":
                self._move(channel, "join_ok")
                channel.rejoin_tries = 0
                self._timers.pop(("rejoin", channel.topic), None)
                buffered, channel.buffer = channel.buffer, []
                for push in buffered:
                    if self._timers.pop(("buffered", push.push_id), None) is not None:
                        self._send_push(channel, push, now)
            else:
                self._move(channel, "join_error")
                self._schedule_rejoin(channel, now)
            return
        if channel.state is ChannelState.LEAVING and reply.ref == channel.leave_ref:
            self._timers.pop(("leave", channel.topic), None)
            self._left(channel, "leave")
            return
        pending = self._pushes.pop(reply.ref or "", None)
        if pending is not None and pending.topic == channel.topic:
            self._timers.pop(("push", pending.ref or ""), None)
            self._notices.append(
                note.PushReplied(
                    pending.push_id, pending.topic, pending.event, reply.status, reply.response
                )
            )

    def _channel_error(self, channel: ChannelRecord, reason: Any, now: float) -> None:
        if channel.state not in (ChannelState.JOINED, ChannelState.JOINING):
            return
        self._timers.pop(("join", channel.topic), None)
        joining = channel.state is ChannelState.JOINING
        self._move(channel, "error")
        self._notices.append(note.ChannelErrored(channel.topic, channel.join_ref, reason))
        if joining:
            channel.join_ref = None  # onError while joining: joinPush.reset()
        self._schedule_rejoin(channel, now)

    def _error_channels(self, reason: Any) -> None:
        for channel in self.channels.values():
            if channel.state in (ChannelState.JOINED, ChannelState.JOINING):
                joining = channel.state is ChannelState.JOINING
                self._timers.pop(("join", channel.topic), None)
                self._move(channel, "error")
                self._notices.append(note.ChannelErrored(channel.topic, channel.join_ref, reason))
                if joining:
                    channel.join_ref = None  # onError while joining: joinPush.reset()

    def _schedule_rejoin(self, channel: ChannelRecord, now: float) -> None:
        if self.connected:
            delay = self.timings.rejoin_after(channel.rejoin_tries + 1)
            self._timers[("rejoin", channel.topic)] = now + delay

    def _left(self, channel: ChannelRecord, reason: str) -> None:
        self._move(channel, "left")
        self._notices.append(note.ChannelClosed(channel.topic, channel.join_ref, reason))
        for push in channel.buffer:
            self._timers.pop(("buffered", push.push_id), None)
        channel.buffer.clear()

    def _clear_channel_timers(self, channel: ChannelRecord) -> None:
        for kind in ("join", "rejoin", "leave"):
            self._timers.pop((kind, channel.topic), None)

    def _fire(self, key: tuple[str, str], now: float) -> None:
        kind, name = key
        if key == ("socket", "reconnect"):
            self.reconnect_tries += 1
            self.want_connect = True
        elif key == ("socket", "heartbeat"):
            if self.connected:
                self._heartbeat_ref = self._ref()
                self._send(Heartbeat(self._heartbeat_ref))
                self._timers[("socket", "heartbeat_timeout")] = (
                    now + self.timings.heartbeat_interval
                )
        elif key == ("socket", "heartbeat_timeout"):
            if self._heartbeat_ref is not None and self.connected:
                self._notices.append(note.HeartbeatTimedOut(self._heartbeat_ref))
                self._heartbeat_ref = None
                self._error_channels({"source": "transport", "reason": "heartbeat_timeout"})
                self._closing_by_client = True
                self.close_request = (1000, "heartbeat timeout")
        elif kind == "join":
            self._join_timeout(self.channels[name], now)
        elif kind == "rejoin":
            channel = self.channels.get(name)
            if channel is not None and self.connected:
                channel.rejoin_tries += 1
                self._send_join(channel, "rejoin", now)
        elif kind == "leave":
            channel = self.channels.get(name)
            if channel is not None and channel.state is ChannelState.LEAVING:
                self._left(channel, "leave")
        elif kind == "push":
            push = self._pushes.pop(name, None)
            if push is not None:
                self._notices.append(note.PushTimedOut(push.push_id, push.topic, push.event, True))
        elif kind == "buffered":
            for channel in self.channels.values():
                for push in channel.buffer:
                    if push.push_id == name:
                        channel.buffer.remove(push)
                        self._notices.append(
                            note.PushTimedOut(push.push_id, push.topic, push.event, False)
                        )
                        return

    def _join_timeout(self, channel: ChannelRecord, now: float) -> None:
        if channel.state is not ChannelState.JOINING or channel.join_ref is None:
            return
        self._notices.append(note.JoinTimedOut(channel.topic, channel.join_ref))
        self._send(Leave(channel.topic, self._ref(), channel.join_ref))
        self._move(channel, "join_timeout")
        channel.join_ref = None  # joinPush.reset(): the leave's reply and phx_close are stale
        self._schedule_rejoin(channel, now)
