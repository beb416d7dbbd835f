"""Notices: what happened inside the client model, for the driver to record.

The model never does I/O; it reports each thing a person would want in a history (a socket
opened or closed, a join sent, replied, timed out, a channel errored or closed, a message
received or dropped as stale, a push sent, replied or timed out) as one of these frozen
dataclasses, taken with `ClientSocket.take_notices()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._channel import ChannelState


@dataclass(frozen=True, slots=True)
class SocketOpened:
    pass


@dataclass(frozen=True, slots=True)
class SocketClosed:
    code: int | None
    reason: str
    by_client: bool
    reconnect_in: float | None


@dataclass(frozen=True, slots=True)
class HeartbeatTimedOut:
    ref: str


@dataclass(frozen=True, slots=True)
class StateChanged:
    topic: str
    join_ref: str | None
    old: ChannelState
    new: ChannelState
    trigger: str


@dataclass(frozen=True, slots=True)
class JoinSent:
    topic: str
    join_ref: str


@dataclass(frozen=True, slots=True)
class JoinReplied:
    topic: str
    join_ref: str
    status: str
    response: Any


@dataclass(frozen=True, slots=True)
class JoinTimedOut:
    topic: str
    join_ref: str


@dataclass(frozen=True, slots=True)
class ChannelErrored:
    topic: str
    join_ref: str | None
    reason: Any


@dataclass(frozen=True, slots=True)
class ChannelClosed:
    topic: str
    join_ref: str | None
    reason: Any


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    event: str
    payload: Any
    frame_join_ref: str | None
    join_ref: str | None
    state: ChannelState


@dataclass(frozen=True, slots=True)
class StaleDropped:
    topic: str
    event: str
    payload: Any
    frame_join_ref: str
    join_ref: str | None


@dataclass(frozen=True, slots=True)
class PushSent:
    push_id: str
    topic: str
    event: str
    ref: str
    join_ref: str


@dataclass(frozen=True, slots=True)
class PushReplied:
    push_id: str
    topic: str
    event: str
    status: str
    response: Any


@dataclass(frozen=True, slots=True)
class PushTimedOut:
    push_id: str
    topic: str
    event: str
    sent: bool


Notice = (
    SocketOpened
    | SocketClosed
    | HeartbeatTimedOut
    | StateChanged
    | JoinSent
    | JoinReplied
    | JoinTimedOut
    | ChannelErrored
    | ChannelClosed
    | Received
    | StaleDropped
    | PushSent
    | PushReplied
    | PushTimedOut
)
