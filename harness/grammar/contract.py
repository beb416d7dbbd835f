"""The application contract: how the swarm speaks to *your* channel, written in YAML.

Defaults are the reference server's demo app (socket `/socket/websocket`, topics joined with
`{}`, publish `new_msg` `{id, body}`, deliveries `new_msg` with a top-level `id`, the final read a
`history` push). A team with its own Phoenix app changes the keys, not the code:

    app:
      socket: {path: /chat/socket/websocket, params: {token: "..."}}
      join: {payload: {nick: "{client}"}}
      publish: {event: post, payload: {msg: {id: "{id}", text: "{body}"}}}
      deliver: {event: posted, id: msg.id}     # cursor: seq, for an app that catches up
      read:
        http: {url: "http://{host}:{port}/api/messages?topic={topic}", messages: items, id: msg_id}

Strings in payloads, params and URLs are templates. Each place has its own placeholders
(`PLACES`); one that does not exist there is a validation error with its location, not a
surprise at run time. A string that is exactly one placeholder keeps the value's type (`"{seq}"`
renders the integer). `{id}` is unique to the run (it carries the run's id), so two runs against
one persistent store never collide.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from .templates import placeholders
from .units import Duration, OneOf

PLACES: dict[str, frozenset[str]] = {
    "socket.params": frozenset({"client", "run"}),
    "join.payload": frozenset({"client", "topic", "run", "cursor"}),
    "publish.payload": frozenset({"id", "body", "client", "topic", "seq", "publisher", "run"}),
    "read.push.payload": frozenset({"topic", "run"}),
    "read.http.url": frozenset({"host", "port", "topic", "run"}),
}
READ_TAGS = ("read_mapping", "read_none")  # union tags in error locations, not document keys


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check(place: str, value: Any) -> Any:
    try:
        names = placeholders(value)
    except ValueError as exc:  # an unbalanced brace
        raise ValueError(f"not a template: {exc}") from None
    unknown = sorted(names - PLACES[place])
    if unknown:
        allowed = ", ".join(f"{{{n}}}" for n in sorted(PLACES[place]))
        raise ValueError(f"no placeholder {{{unknown[0]}}} here; {place} may use {allowed}")
    return value


DottedPath = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")]
Event = Annotated[str, Field(min_length=1, pattern=r"^[^\s]+$")]


class SocketSpec(_Section):
    """Where the socket is and what phoenix.js passes as `params` (the connect query)."""

    path: Annotated[str, Field(pattern=r"^/\S*$")] = "/socket/websocket"
    vsn: Annotated[Literal["2.0.0"], OneOf(("2.0.0",))] = "2.0.0"
    params: dict[str, str] = Field(default_factory=dict)

    _params = field_validator("params")(lambda v: _check("socket.params", v))


class JoinSpec(_Section):
    """The payload of every join (the second argument of `socket.channel(topic, payload)`)."""

    payload: dict[str, Any] = Field(default_factory=dict)

    _payload = field_validator("payload")(lambda v: _check("join.payload", v))


class PublishSpec(_Section):
    """What a publisher pushes; an `ok` reply acknowledges it (its payload need not echo)."""

    event: Event = "new_msg"
    payload: dict[str, Any] = Field(default_factory=lambda: {"id": "{id}", "body": "{body}"})

    @field_validator("payload")
    @classmethod
    def _carries_the_id(cls, payload: dict[str, Any]) -> dict[str, Any]:
        _check("publish.payload", payload)
        if "id" not in placeholders(payload):
            raise ValueError("must carry {id} somewhere, or no delivery can be recognised")
        return payload


class DeliverSpec(_Section):
    """The broadcast event that counts as a delivery, where its message id is, and (for an app
    that catches up on rejoin) where its position is: each client keeps the last `cursor` it
    saw per topic and joins with it as `{cursor}` (null before any), as a phoenix.js params
    closure does (`socket.channel(topic, () => ({since: last}))`)."""

    event: Event = "new_msg"
    id: DottedPath = "id"
    cursor: DottedPath | None = None


class PushRead(_Section):
    """A channel push that answers with the room's stored messages (the reference app's)."""

    event: Event = "history"
    payload: dict[str, Any] = Field(default_factory=dict)
    messages: DottedPath = "messages"
    id: DottedPath = "id"

    _payload = field_validator("payload")(lambda v: _check("read.push.payload", v))


class HttpRead(_Section):
    """An HTTP GET on the node that answers with the room's stored messages."""

    url: Annotated[str, Field(pattern=r"^http://")]
    messages: DottedPath = "messages"
    id: DottedPath = "id"

    _url = field_validator("url")(lambda v: _check("read.http.url", v))


class ReadSpec(_Section):
    """How `durability` reads what was stored, after the heal: exactly one of push and http;
    `timeout` for one node's answer for one topic (the whole read gets twice as long)."""

    push: PushRead | None = None
    http: HttpRead | None = None
    timeout: Duration = 30.0

    @field_validator("timeout")
    @classmethod
    def _some_time(cls, seconds: float) -> float:
        if seconds <= 0:
            raise ValueError("must be longer than 0s")
        return seconds

    @model_validator(mode="after")
    def _one_way(self) -> ReadSpec:
        if (self.push is None) == (self.http is None):
            raise ValueError("give exactly one of push and http (or `read: none`)")
        return self


class AppSpec(_Section):
    """The application contract (defaults: the reference server's demo app)."""

    socket: SocketSpec = Field(default_factory=SocketSpec)
    join: JoinSpec = Field(default_factory=JoinSpec)
    publish: PublishSpec = Field(default_factory=PublishSpec)
    deliver: DeliverSpec = Field(default_factory=DeliverSpec)
    read: Annotated[
        Annotated[ReadSpec, Tag(READ_TAGS[0])] | Annotated[Literal["none"], Tag(READ_TAGS[1])],
        Discriminator(lambda v: READ_TAGS[1] if isinstance(v, str) else READ_TAGS[0]),
    ] = Field(
        default_factory=lambda: ReadSpec(push=PushRead()),
        description="push or http; `none`: durability is unknown, never valid",
    )

    @field_validator("socket", "join", "publish", "deliver", mode="before")
    @classmethod
    def _empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @model_validator(mode="after")
    def _cursor_has_a_source(self) -> AppSpec:
        if "cursor" in placeholders(self.join.payload) and self.deliver.cursor is None:
            raise ValueError(
                "join.payload uses {cursor}: say where each delivery carries its position"
                " (deliver: {cursor: seq})"
            )
        return self
