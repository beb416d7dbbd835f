"""Final reads: after the heal, ask a node for every room's stored messages.

The reader talks to a node directly (not through a proxy), once per topic, the way the
scenario's application contract says (`app.read`): a channel push over the app's socket (the
reference app's `history`), or an HTTP GET on the node; `read: none` reads nothing and leaves
durability unknown. It records `read` invoke/ok/fail ops with the ids it got, which the
durability checker compares with the acknowledged publishes.

The answer is foreign data (`harness.foreign`): at most `MAX_ANSWER` bytes, strict JSON within
the depth limit, ids made canonical strings. Each attempt (a node, a topic) has `app.read.timeout`
(30 s), and the whole read twice that: a node that answers a byte a second, or never answers the
push, costs one attempt, not one per node and topic; what is left unread when the deadline
passes fails with the reason (the node, the topic, what was slow).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from .._clock import RunClock
from ..foreign import MAX_ANSWER, MAX_DEPTH, BadAnswer, clip, id_text
from ..grammar.behaviour import Endpoint
from ..grammar.contract import AppSpec, HttpRead, PushRead
from ..grammar.templates import dig, render
from ..history import Op, Recorder
from ..infra.http import get_json
from ..phoenix import Join, ProtocolError, Push, RemoteProtocolError, Reply, Role, V2JSONCodec
from ._config import socket_url

MAX_READ = MAX_ANSWER  # ~200,000 messages; trio-websocket's default 1 MiB held ~15,000
READER = "reader"


async def read_rooms(
    nodes: Sequence[Endpoint],
    topics: Sequence[str],
    recorder: Recorder,
    clock: RunClock,
    app: AppSpec | None = None,
    run_id: str = "",
) -> None:
    app = app or AppSpec()
    if app.read == "none":
        return
    done = 0
    asking = ""
    deadline = 2 * app.read.timeout
    with trio.move_on_after(deadline) as whole:
        for topic in topics:
            recorder.record(Op(clock.now(), READER, "invoke", "read", {"topic": topic}))
            error = "no node answered"
            for node in nodes:
                asking = f"{node.name} was answering the read of {topic}"
                try:
                    ids = await _read_one(node, topic, app, run_id)
                except (
                    OSError,
                    HandshakeError,
                    ConnectionClosed,
                    ProtocolError,
                    BadAnswer,
                ) as exc:
                    error = f"{node.name}: {type(exc).__name__}: {clip(str(exc))}"
                    continue
                value = {"topic": topic, "ids": ids}
                recorder.record(Op(clock.now(), READER, "ok", "read", value, node.name))
                break
            else:
                value = {"topic": topic, "error": error}
                recorder.record(Op(clock.now(), READER, "fail", "read", value))
            done += 1
    if whole.cancelled_caught:  # the topic being read, and those after it, are not read
        for topic in topics[done:]:
            reason = f"the final read's {deadline:g} s ran out while {asking}"
            value = {"topic": topic, "error": reason}
            recorder.record(Op(clock.now(), READER, "fail", "read", value))


async def _read_one(node: Endpoint, topic: str, app: AppSpec, run_id: str) -> list[Any]:
    """One node's answer for one topic, within `app.read.timeout` (`ProtocolError` saying
    what was slow otherwise)."""
    assert app.read != "none"
    with trio.move_on_after(app.read.timeout):
        if app.read.http is not None:
            return await _read_http(node, topic, app.read.http)
        assert app.read.push is not None
        return await _read_push(node, topic, app, app.read.push, run_id)
    how = "HTTP GET" if app.read.http is not None else "read push"
    raise ProtocolError(
        f"no complete answer to the {how} for {topic} within {app.read.timeout:g} s"
    )


def _ids(body: Any, messages: str, key: str) -> list[Any]:
    found = dig(body, messages)
    if not isinstance(found, list):
        raise ProtocolError(f"no list at {messages!r} in the read's answer")
    return [id_text(dig(m, key)) for m in found]


async def _read_push(
    node: Endpoint, topic: str, app: AppSpec, read: PushRead, run_id: str
) -> list[Any]:
    codec = V2JSONCodec(max_size=MAX_READ, max_depth=MAX_DEPTH)
    values = {"client": READER, "topic": topic, "run": run_id}
    params = {k: str(render(v, values)) for k, v in app.socket.params.items()}
    url = socket_url(node.url, app.socket.path, params)
    async with open_websocket_url(url, max_message_size=MAX_READ) as ws:
        join = render(app.join.payload, {**values, "cursor": None})  # a reader has seen none
        await ws.send_message(codec.encode(Join(topic, join, "1", "1")))
        payload = render(read.payload, values)
        await ws.send_message(codec.encode(Push(topic, read.event, payload, "2", "1")))
        while True:
            try:
                event = codec.decode(await ws.get_message(), sender=Role.SERVER)
            except RemoteProtocolError:
                continue  # not the reply (a broadcast the server mangled): the timeout decides
            if isinstance(event, Reply) and event.ref == "1" and event.status != "ok":
                raise ProtocolError(f"join refused: {event.response}")
            if isinstance(event, Reply) and event.ref == "2":
                if event.status != "ok":
                    raise ProtocolError(f"{read.event} refused: {event.response}")
                return _ids(event.response, read.messages, read.id)


async def _read_http(node: Endpoint, topic: str, read: HttpRead) -> list[Any]:
    where = urlsplit(node.url)
    host, port = where.hostname or "127.0.0.1", where.port or 80
    url = urlsplit(render(read.url, {"host": host, "port": port, "topic": quote(topic, safe=":")}))
    target = url.path + (f"?{url.query}" if url.query else "")
    status, body = await get_json(
        url.hostname or host, url.port or 80, target, timeout=3600, max_body=MAX_READ
    )
    if status != 200:
        raise ProtocolError(f"GET {target} answered {status}: {clip(str(body))}")
    return _ids(body, read.messages, read.id)
