"""Opening a client websocket like `trio_websocket.connect_websocket_url`, minus one hang.

trio-websocket waits only for its "handshake done" event. A peer that accepts the TCP
connection and closes it before answering (Toxiproxy does that when the node behind it is
down) sets only the "closed" event, so its connect hangs until our timeout, while phoenix.js
(with `ws`) sees the close at once and goes on with its backoff. Waiting for either event
restores that behaviour. This uses trio-websocket's connection internals (`_reader_task`,
`_open_handshake`, `_close_handshake`), quarantined in this one module; `pyproject.toml` pins
trio-websocket below 0.13 for that reason. `pending_bytes` reads the socket under a connection
too, for the harness's self-check of its receive backlog.
"""

from __future__ import annotations

import fcntl
import struct
import termios
from urllib.parse import urlsplit

import trio
from trio_websocket import HandshakeError, WebSocketConnection
from wsproto import ConnectionType, WSConnection


async def connect_websocket(nursery: trio.Nursery, url: str, timeout: float) -> WebSocketConnection:
    """Open a client websocket; fail at once when the peer closes before the handshake."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    resource = parts.path + (f"?{parts.query}" if parts.query else "")
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream(host, port)
        connection = WebSocketConnection(
            stream,
            WSConnection(ConnectionType.CLIENT),
            host=f"{host}:{port}",
            path=resource,
            message_queue_size=0,
        )
        nursery.start_soon(connection._reader_task)
        async with trio.open_nursery() as race:

            async def wait(event: trio.Event) -> None:
                await event.wait()
                race.cancel_scope.cancel()

            race.start_soon(wait, connection._open_handshake)
            race.start_soon(wait, connection._close_handshake)
    if not connection._open_handshake.is_set() or connection.closed is not None:
        raise HandshakeError("the connection closed before the websocket handshake finished")
    return connection


def abort(connection: WebSocketConnection) -> trio.abc.Stream:
    """The stream under a connection, to close it with no close frame (trio-websocket exposes
    no abort)."""
    return connection._stream


def pending_bytes(connection: WebSocketConnection) -> int:
    """Bytes that reached this client's socket and that it has not read yet (FIONREAD): a
    backlog there is the harness's own, since the peer has already sent them."""
    stream = connection._stream
    sock = getattr(stream, "socket", None)
    if sock is None:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (OSError, ValueError):  # closed meanwhile (fileno -1): nothing is pending
        return 0
    return int(struct.unpack("i", raw)[0])
