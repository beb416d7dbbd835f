"""A tiny HTTP/1.1 GET over trio for health checks and stats (loopback, no TLS, no pooling).

The harness only ever asks a node `GET /health` or `GET /stats`; a dependency-free client with a
hard deadline is all that needs.
"""

from __future__ import annotations

import json
from typing import Any

import h11
import trio


async def get_json(host: str, port: int, path: str, *, timeout: float = 2.0) -> tuple[int, Any]:
    """GET `path`; return (status, decoded JSON body or None). Raises OSError/TooSlowError."""
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            conn = h11.Connection(h11.CLIENT)
            request = h11.Request(
                method="GET",
                target=path,
                headers=[("host", f"{host}:{port}"), ("connection", "close")],
            )
            await stream.send_all(conn.send(request) + (conn.send(h11.EndOfMessage()) or b""))
            status = 0
            body = bytearray()
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None
