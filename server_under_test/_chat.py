"""A second demo contract (`--app chat`): an ordinary Phoenix app that is *not* the harness's
defaults, so CI proves the scenario's `app:` keys end to end.

    socket   /chat/socket/websocket?token=TOKEN   refused with 403 without the node's token
    topics   chat:<id>
    join     {"nick": NAME}                        refused {"reason": "nick required"} without
    post     {"msg": {"id", "text"}}              persist, broadcast `posted` with the same
                                                   payload, reply ok {} (no id echoed); a repeated
                                                   id is acknowledged, never stored twice
    GET /api/messages?topic=chat:1                {"items": [{"msg_id", "text", "node"}]}
    no /stats                                     like a real Phoenix endpoint

The store and PubSub are the node's, as for the rooms app, and so are the deliberate defects
that live there (mesh and Redis ones); `duplicate_after_rejoin` replays recent `posted` here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._edge import HttpResponse
from ._socket import Channel, ChannelContext, Error, HandleResult, JoinResult, Ok
from ._store import Store

SOCKET_PATH = "/chat/socket/websocket"
TOPIC_PREFIX = "chat:"
DEFAULT_TOKEN = "chat-demo-token"
REPLAY_ON_JOIN = 100


class ChatChannel:
    """One client's membership of one chat topic."""

    def __init__(self, context: ChannelContext) -> None:
        self.context = context
        self.intercept: frozenset[str] = frozenset()

    async def join(self, params: Any) -> JoinResult:
        nick = params.get("nick") if isinstance(params, dict) else None
        if not isinstance(nick, str) or not nick:
            return Error({"reason": "nick required"})
        return Ok({})

    async def after_join(self) -> None:
        ctx = self.context
        if ctx.services.bugs.on("duplicate_after_rejoin"):
            for message in await ctx.services.store.history(ctx.topic, limit=REPLAY_ON_JOIN):
                ctx.push("posted", message.payload())

    async def handle_in(self, event: str, payload: Any) -> HandleResult:
        if event != "post":
            raise LookupError(f"no handle_in for event {event!r}")
        msg = payload.get("msg") if isinstance(payload, dict) else None
        message_id = msg.get("id") if isinstance(msg, dict) else None
        if not isinstance(message_id, str) or not message_id:
            return Error({"reason": "post needs msg.id"})
        ctx = self.context
        if await ctx.services.store.append(ctx.topic, message_id, payload, ctx.node):
            ctx.broadcast("posted", payload)
        return Ok({})

    def handle_out(self, event: str, payload: Any) -> Any | None:
        return payload


def route(topic: str) -> Callable[[ChannelContext], Channel] | None:
    """The socket's `channel "chat:*"` declaration."""
    if topic.startswith(TOPIC_PREFIX) and len(topic) > len(TOPIC_PREFIX):
        return ChatChannel
    return None


def refuse_socket(query: dict[str, str], token: str) -> HttpResponse | None:
    """`connect/3`: a socket without the right token is refused."""
    if query.get("token") != token:
        return HttpResponse(403, {"error": "a valid token is required"})
    return None


async def messages(store: Store, query: dict[str, str]) -> HttpResponse:
    """GET /api/messages?topic=chat:1: the topic's stored messages, in store order."""
    topic = query.get("topic", "")
    if not topic.startswith(TOPIC_PREFIX):
        return HttpResponse(400, {"error": "topic=chat:<id> is required"})
    items = []
    for stored in await store.history(topic):
        payload = stored.payload()
        msg = payload.get("msg") if isinstance(payload, dict) else None
        text = msg.get("text") if isinstance(msg, dict) else None
        items.append({"msg_id": stored.id, "text": text, "node": stored.node})
    return HttpResponse(200, {"items": items})
