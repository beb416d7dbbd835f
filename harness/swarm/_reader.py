"""Final reads: after the heal, ask a node for every room's stored messages.

The reader talks to a node directly (not through a proxy), once per topic, the way the
scenario's application contract says (`app.read`): a channel push over the app's socket (the
reference app's `history`), or an HTTP GET on the node; `read: none` reads nothing and leaves
durability unknown. It records `read` invoke/ok/fail ops with the ids it got, which the
durability checker compares with the acknowledged publishes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from .._clock import RunClock
from .._http import get_json
from ..history import Op, Recorder
from ..phoenix import Join, ProtocolError, Push, Reply, Role, V2JSONCodec
from ..scenario import AppSpec, HttpRead, PushRead, dig, render
from ._config import Endpoint, socket_url

READ_TIMEOUT = 30.0
MAX_READ = 512 * 2**20  # a room of millions; trio-websocket's default 1 MiB held ~15,000
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
    for topic in topics:
        recorder.record(Op(clock.now(), READER, "invoke", "read", {"topic": topic}))
        error = "no node answered"
        for node in nodes:
            try:
                with trio.fail_after(READ_TIMEOUT):
                    if app.read.http is not None:
                        ids = await _read_http(node, topic, app.read.http)
                    else:
                        assert app.read.push is not None
                        ids = await _read_push(node, topic, app, app.read.push, run_id)
                value = {"topic": topic, "ids": ids}
                recorder.record(Op(clock.now(), READER, "ok", "read", value, node.name))
                break
            except (
                OSError,
                HandshakeError,
                ConnectionClosed,
                ProtocolError,
                trio.TooSlowError,
            ) as exc:
                error = f"{node.name}: {type(exc).__name__}: {exc}"
        else:
            value = {"topic": topic, "error": error}
            recorder.record(Op(clock.now(), READER, "fail", "read", value))


def _ids(body: Any, messages: str, key: str) -> list[Any]:
    found = dig(body, messages)
    if not isinstance(found, list):
        raise ProtocolError(f"no list at {messages!r} in the read's answer")
    return [dig(m, key) for m in found]


async def _read_push(
    node: Endpoint, topic: str, app: AppSpec, read: PushRead, run_id: str
) -> list[Any]:
    codec = V2JSONCodec()
    values = {"client": READER, "topic": topic, "run": run_id}
    params = {k: str(render(v, values)) for k, v in app.socket.params.items()}
    url = socket_url(node.url, app.socket.path, params)
    async with open_websocket_url(url, max_message_size=MAX_READ) as ws:
        join = render(app.join.payload, values)
        await ws.send_message(codec.encode(Join(topic, join, "1", "1")))
        payload = render(read.payload, values)
        await ws.send_message(codec.encode(Push(topic, read.event, payload, "2", "1")))
        while True:
            event = codec.decode(await ws.get_message(), sender=Role.SERVER)
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
        url.hostname or host, url.port or 80, target, timeout=READ_TIMEOUT
    )
    if status != 200:
        raise ProtocolError(f"GET {target} answered {status}: {str(body)[:200]}")
    return _ids(body, read.messages, read.id)
