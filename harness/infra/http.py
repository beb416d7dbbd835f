"""A tiny HTTP/1.1 client over trio, for loopback control planes (node health, Toxiproxy).

One request per connection, a hard deadline on every call, JSON in and out, no TLS, no pooling.
The harness only talks to processes it started on 127.0.0.1, so this is all that needs.

An answer is foreign data when it comes from the server under test (health, stats, a final
read): it is read up to `max_body` bytes and no further (an answer that never ends is refused
at the limit, not buffered), and decoded by the one rule for foreign JSON (`harness.foreign`:
strict, bounded depth). What breaks the rule is a `BadAnswer` (a `ConnectionError`) with its
reason; a body that is not JSON at all comes back as (clipped) text.
"""

from __future__ import annotations

import json
from typing import Any

import h11
import trio

from ..foreign import MAX_ANSWER, MAX_SMALL_ANSWER, BadAnswer, clip, loads


async def request(
    method: str,
    host: str,
    port: int,
    path: str,
    body: Any = None,
    *,
    timeout: float = 5.0,
    max_body: int = MAX_ANSWER,
    raw: bool = False,
) -> tuple[int, Any]:
    """Send one request; return (status, decoded JSON body, or the text, or None if empty;
    with `raw`, the body's bytes as they came, up to `max_body`).

    Raises OSError when nothing listens or the peer ends the connection before a complete
    answer (a node that is starting or dying), and trio.TooSlowError past `timeout`.
    """
    payload = b"" if body is None else json.dumps(body).encode()
    headers = [
        ("host", f"{host}:{port}"),
        ("connection", "close"),
        ("user-agent", "channel-chaos-harness"),
        ("content-length", str(len(payload))),
    ]
    if body is not None:
        headers.append(("content-type", "application/json"))
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            conn = h11.Connection(h11.CLIENT)
            out = conn.send(h11.Request(method=method, target=path, headers=headers)) or b""
            if payload:
                out += conn.send(h11.Data(data=payload)) or b""
            out += conn.send(h11.EndOfMessage()) or b""
            await stream.send_all(out)
            status = 0
            data = bytearray()
            while True:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError as exc:
                    raise ConnectionError(f"{host}:{port} broke off its answer: {exc}") from None
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    data += event.data
                    if len(data) > max_body:
                        raise BadAnswer(
                            f"{host}:{port}{path} answered over {max_body / 2**20:g} MB;"
                            " not read further"
                        )
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
    if raw:
        return status, bytes(data)
    return status, decode_answer(bytes(data), f"{host}:{port}{path}", max_body)


def decode_answer(data: bytes, where: str, limit: int) -> Any:
    """An answer's body: None when empty, JSON by the foreign rule when it looks like JSON
    (`BadAnswer` when it breaks it), else its text, clipped."""
    if not data:
        return None
    if data[:64].lstrip()[:1] not in (b"{", b"["):
        return clip(data[:4096].decode(errors="replace"))
    return loads(data, what=f"{where}'s answer", limit=limit)


async def get_json(
    host: str, port: int, path: str, *, timeout: float = 2.0, max_body: int = MAX_SMALL_ANSWER
) -> tuple[int, Any]:
    return await request("GET", host, port, path, timeout=timeout, max_body=max_body)
