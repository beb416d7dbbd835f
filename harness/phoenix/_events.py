"""The Phoenix Channels protocol as data: one frozen dataclass per kind of frame.

Names follow Phoenix's own vocabulary: topic, event, payload, ref, join_ref. A frame on the wire
is `[join_ref, ref, topic, event, payload]`; which dataclass it becomes depends on its reserved
event name and on who sent it:

    client -> server   Join (phx_join), Leave (phx_leave), Heartbeat (heartbeat on "phoenix"),
                       Push (any other event)
    server -> client   Reply (phx_reply), ChannelError (phx_error), ChannelClose (phx_close),
                       Message (a push to one channel: join_ref set, no ref),
                       Broadcast (fastlane: join_ref and ref both null)

`payload` is a decoded JSON value (an object for everything a server sends) or `bytes` for a V2
binary frame. The codecs in `_wire` are the only place that knows the array layout and the
`phx_*` strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeAlias

Payload: TypeAlias = Any
"""A decoded JSON value, or `bytes` for a binary frame."""

HEARTBEAT_TOPIC = "phoenix"

EVENT_JOIN = "phx_join"
EVENT_LEAVE = "phx_leave"
EVENT_REPLY = "phx_reply"
EVENT_ERROR = "phx_error"
EVENT_CLOSE = "phx_close"
EVENT_HEARTBEAT = "heartbeat"
RESERVED_EVENTS = frozenset(
    {EVENT_JOIN, EVENT_LEAVE, EVENT_REPLY, EVENT_ERROR, EVENT_CLOSE, EVENT_HEARTBEAT}
)


class Role(Enum):
    """Which end of a connection sent a frame."""

    CLIENT = "client"
    SERVER = "server"


@dataclass(frozen=True, slots=True)
class Join:
    """`phx_join`: the client asks to join `topic` with `payload` as channel params."""

    topic: str
    payload: Payload
    ref: str
    join_ref: str


@dataclass(frozen=True, slots=True)
class Leave:
    """`phx_leave`: the client leaves the channel it joined with `join_ref`."""

    topic: str
    ref: str | None
    join_ref: str | None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """`heartbeat` on the `phoenix` topic; the server answers with an ok `Reply`."""

    ref: str | None


@dataclass(frozen=True, slots=True)
class Push:
    """An application event sent by the client to a joined channel."""

    topic: str
    event: str
    payload: Payload
    ref: str | None
    join_ref: str | None


@dataclass(frozen=True, slots=True)
class Reply:
    """`phx_reply`: the server's answer to the client frame with the same `ref`."""

    topic: str
    status: str
    response: Payload
    ref: str | None
    join_ref: str | None


@dataclass(frozen=True, slots=True)
class Message:
    """A server push to one channel (`push/3`, an intercepted broadcast): carries its join_ref."""

    topic: str
    event: str
    payload: Payload
    join_ref: str


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A fastlane broadcast: the same bytes for every subscriber, no join_ref, no ref."""

    topic: str
    event: str
    payload: Payload


@dataclass(frozen=True, slots=True)
class ChannelError:
    """`phx_error`: the channel joined with `join_ref` crashed on the server."""

    topic: str
    join_ref: str | None
    payload: Payload


@dataclass(frozen=True, slots=True)
class ChannelClose:
    """`phx_close`: the channel joined with `join_ref` stopped for good."""

    topic: str
    join_ref: str | None
    payload: Payload


ClientEvent: TypeAlias = Join | Leave | Heartbeat | Push
ServerEvent: TypeAlias = Reply | Message | Broadcast | ChannelError | ChannelClose
Event: TypeAlias = ClientEvent | ServerEvent
