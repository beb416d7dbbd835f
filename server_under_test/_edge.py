"""HTTP and WebSocket on one port, built on h11 + wsproto over trio streams.

Why not trio-websocket on the server side: it answers a plain `GET /health` with 400 before any
handler runs, and its `send_message` frames every message again for each subscriber behind a
lock (about 12k deliveries/s measured, `research/perf-feasibility.md`). Here h11 reads the
request head, so `/health` and `/stats` share the websocket port as a real Phoenix endpoint
does, and an upgrade on `/socket/websocket` is handed to wsproto with
`initiate_upgrade_connection`. Server frames are never masked (and we negotiate no
compression), so a broadcast's frame bytes are built once (`text_frame`) and appended as-is to
every subscriber's `Outbox` (`_outbox`: written straight to the socket, or held by the cork
while a burst of frames is handled, or drained by the connection's writer task). An outbox
that grows past its limit means a consumer that cannot keep up: the connection is dropped (even
while the writer is stuck sending to it: the overflow cancels that send), the way a Phoenix
transport process dies on an overflowing mailbox.

The client swarm stays on trio-websocket; only this edge owns raw frames.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import h11
import trio
import wsproto
import wsproto.events as wse
from wsproto.utilities import LocalProtocolError as WSLocalError
from wsproto.utilities import RemoteProtocolError as WSRemoteError

from harness.phoenix import dumps

from ._outbox import Outbox, OutboxOverflow

log = logging.getLogger(__name__)

RECEIVE_SIZE = 65536
HANDSHAKE_TIMEOUT = 10.0
CLOSE_TIMEOUT = 1.0

# Close codes (RFC 6455). Never 1000 when the client should come back (phoenix.js <= 1.8.15
# stays down after a 1000): see research/phoenix-protocol.md §1.8.
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_SERVICE_RESTART = 1012

_OP_TEXT = 0x1
_OP_BINARY = 0x2


def _frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked server frame (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return header + payload


def text_frame(text: str) -> bytes:
    return _frame(_OP_TEXT, text.encode())


def binary_frame(data: bytes) -> bytes:
    return _frame(_OP_BINARY, data)


@dataclass
class WebSocket:
    """A server-side websocket after the handshake: receive messages, queue frames, close."""

    stream: trio.SocketStream
    connection: wsproto.WSConnection
    outbox: Outbox
    max_message_size: int
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    subprotocol: str | None
    close_code: int | None = None
    close_reason: str = ""
    _pending: list[wse.Event] = field(default_factory=list)
    _bursting: bool = False  # frames that arrived together are being handled (`_outbox.Cork`)

    def send_text(self, text: str) -> None:
        self.send_wire(text_frame(text))

    def send_binary(self, data: bytes) -> None:
        self.send_wire(binary_frame(data))

    def send_wire(self, wire: bytes) -> None:
        """Queue ready-made frame bytes (the encode-once broadcast path)."""
        if self.close_code is None:
            self.outbox.put(wire)

    def close(self, code: int, reason: str = "") -> None:
        """Queue a close frame; the connection ends once it is sent."""
        if self.close_code is not None:
            return
        self.close_code, self.close_reason = code, reason
        with contextlib.suppress(WSLocalError):
            self.outbox.put(self.connection.send(wse.CloseConnection(code=code, reason=reason)))
        self.outbox.finish()

    async def receive(self) -> str | bytes | None:
        """The next whole message, or None once the peer closed or broke the connection."""
        parts: list[Any] = []
        size = 0
        while True:
            while not self._pending:
                self.end_burst()
                try:
                    data = await self.stream.receive_some(RECEIVE_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return None
                try:
                    self.connection.receive_data(data or None)
                    self._pending.extend(self.connection.events())
                except WSRemoteError as exc:
                    self.close(CLOSE_PROTOCOL_ERROR, str(exc)[:100])
                    return None
                if not data and not self._pending:
                    return None
                if len(self._pending) > 1 and self.outbox.cork is not None:
                    self._bursting = True
                    self.outbox.cork.begin()
            event = self._pending.pop(0)
            if isinstance(event, wse.Message):
                size += len(event.data)
                if size > self.max_message_size:
                    self.close(CLOSE_TOO_BIG, "message too big")
                    return None
                parts.append(event.data)
                if event.message_finished:
                    if isinstance(event, wse.TextMessage):
                        return "".join(parts)
                    return b"".join(parts)
            elif isinstance(event, wse.Ping):
                self.send_wire(self.connection.send(event.response()))
            elif isinstance(event, wse.CloseConnection):
                if self.close_code is None:
                    self.close_code, self.close_reason = event.code, event.reason or ""
                    with contextlib.suppress(WSLocalError):
                        self.outbox.put(self.connection.send(event.response()))
                    self.outbox.finish()
                return None

    def end_burst(self) -> None:
        """The frames that came together are handled: what their handlers wrote may go."""
        if self._bursting and self.outbox.cork is not None:
            self._bursting = False
            self.outbox.cork.end()

    async def wait_peer_close(self) -> None:
        """After we sent a close: discard incoming data until the peer's close arrives."""
        while self.connection.state is not wsproto.connection.ConnectionState.CLOSED:
            try:
                data = await self.stream.receive_some(RECEIVE_SIZE)
                if not data:
                    return
                self.connection.receive_data(data)
                list(self.connection.events())
            except (trio.BrokenResourceError, trio.ClosedResourceError, WSRemoteError):
                return


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: Any
    content_type: str = "application/json"


HttpHandler = Callable[[str, str, dict[str, str]], Awaitable[HttpResponse | None]]
"""(method, path, query) -> a response, or None for 'not mine'."""

SocketHandler = Callable[[WebSocket], Awaitable[None]]
UpgradeCheck = Callable[[str, dict[str, str], dict[str, str]], HttpResponse | None]
"""(path, query, headers) -> None to accept the upgrade, or the HTTP refusal."""


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    socket_path: str = "/socket/websocket"
    max_message_size: int = 1_000_000
    outbox_limit: int = 16_000_000


async def serve_connection(
    stream: trio.SocketStream,
    config: EdgeConfig,
    http: HttpHandler,
    check_upgrade: UpgradeCheck,
    on_socket: SocketHandler,
) -> None:
    """Serve one TCP connection: a plain HTTP request, or a websocket for its whole life."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16384)
    try:
        with trio.fail_after(HANDSHAKE_TIMEOUT):
            request = await _read_request(stream, conn)
        if request is None:
            return
        target = request.target.decode("latin-1")
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
        upgrade = headers.get("upgrade", "").lower() == "websocket"
        if upgrade and parts.path == config.socket_path:
            if request.method != b"GET":
                await _respond(stream, conn, HttpResponse(400, {"error": "upgrade must be GET"}))
                return
            refusal = check_upgrade(parts.path, query, headers)
            if refusal is not None:
                await _respond(stream, conn, refusal)
                return
            trailing, _closed = conn.trailing_data
            ws = await _accept(stream, config, request, parts.path, query, headers)
            if ws is None:
                return
            if trailing:
                ws.connection.receive_data(trailing)
                ws._pending.extend(ws.connection.events())
            await _run_socket(stream, ws, on_socket)
            return
        response = await http(request.method.decode("latin-1"), parts.path, query)
        if response is None:
            response = HttpResponse(404, {"error": f"no route for {parts.path}"})
        await _respond(stream, conn, response)
    except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
        pass
    except h11.RemoteProtocolError as exc:
        with trio.move_on_after(1):
            await _respond(stream, conn, HttpResponse(exc.error_status_hint, {"error": str(exc)}))
    finally:
        with trio.move_on_after(1) as cleanup:
            cleanup.shield = True
            await stream.aclose()


async def _read_request(stream: trio.SocketStream, conn: h11.Connection) -> h11.Request | None:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(RECEIVE_SIZE)
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Request):
            return event
        return None


async def _respond(stream: trio.SocketStream, conn: h11.Connection, response: HttpResponse) -> None:
    if isinstance(response.body, str):
        body = response.body.encode()
    else:
        body = (dumps(response.body) + "\n").encode()
    headers = [
        ("content-type", response.content_type),
        ("content-length", str(len(body))),
        ("connection", "close"),
    ]
    try:
        data = conn.send(h11.Response(status_code=response.status, headers=headers))
        data = (data or b"") + (conn.send(h11.Data(data=body)) or b"")
        data += conn.send(h11.EndOfMessage()) or b""
    except h11.LocalProtocolError:
        return
    await stream.send_all(data)


async def _accept(
    stream: trio.SocketStream,
    config: EdgeConfig,
    request: h11.Request,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
) -> WebSocket | None:
    connection = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    try:
        connection.initiate_upgrade_connection(list(request.headers), request.target)
        events = list(connection.events())
    except (WSRemoteError, h11.ProtocolError):
        return None
    handshake = next((e for e in events if isinstance(e, wse.Request)), None)
    if handshake is None:
        return None
    # Echo `phoenix` when offered (the authToken path); accept clients that offer nothing.
    subprotocol = "phoenix" if "phoenix" in handshake.subprotocols else None
    await stream.send_all(connection.send(wse.AcceptConnection(subprotocol=subprotocol)))
    return WebSocket(
        stream=stream,
        connection=connection,
        outbox=Outbox(config.outbox_limit, stream.socket.fileno()),
        max_message_size=config.max_message_size,
        path=path,
        query=query,
        headers=headers,
        subprotocol=subprotocol,
    )


async def _run_socket(stream: trio.SocketStream, ws: WebSocket, on_socket: SocketHandler) -> None:
    """Run the handler beside the writer; the handler's reader is the only reader."""
    handler_done = trio.Event()

    async def write() -> None:
        try:
            await ws.outbox.drain_into(stream)
        except OutboxOverflow:
            log.warning("dropping a connection whose peer does not read: %s", ws.path)
            nursery.cancel_scope.cancel()
            return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            nursery.cancel_scope.cancel()  # the peer is gone; the handler's reader sees it too
            return
        with trio.move_on_after(CLOSE_TIMEOUT):
            await handler_done.wait()
        nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write)
        try:
            await on_socket(ws)
        finally:
            ws.end_burst()
            ws.close(CLOSE_GOING_AWAY, "socket ended")
        # Our close frame is queued. Hanging up now could turn frames the peer is still sending
        # into an RST that destroys the close frame in flight (the peer would see 1006, not our
        # code), so read and discard until the peer answers the close, for a bounded time.
        with trio.move_on_after(CLOSE_TIMEOUT):
            await ws.wait_peer_close()
        handler_done.set()
