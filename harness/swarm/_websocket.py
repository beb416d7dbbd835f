"""The swarm's client websocket: websockets' sans-I/O protocol on a bare non-blocking socket.

Why not trio-websocket on this path (it stays for the final read, `_reader.py`, and the pytest
plugin's client factory): per message it runs a reader task, a memory channel and a wsproto
parse, about three task switches and 11-18 µs of framing a frame, so one trio-websocket process
receives about 10k messages/s (`research/perf-feasibility.md`; `bench/receive.py` runs it side by
side with this module). Here the loop's socket hub (`_hub.py`) reads whatever the kernel holds
(one `recv` for every frame that arrived meanwhile) and hands the messages to the client with no
task switch; whole unfragmented data frames are cut here (~1.5 µs a frame) and every other frame
goes to websockets' sans-I/O `ClientProtocol` whole (its parse is 4-6 µs a frame on this box,
wsproto's 11-18 µs), so websockets keeps the handshake, control frames, masking, fragments and
close rules; sends are synchronous non-blocking writes that wait for the socket only when its
buffer is full. `receive()` (a task that reads by itself) stays for the closing handshake and
for tests.

It also fixes what `_connect.py` once worked around: a peer that accepts the TCP connection and
closes it before answering the handshake (Toxiproxy does that when the node behind it is down)
ends the connect at once with `HandshakeFailed`, as phoenix.js sees it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import socket
import struct
import termios
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import trio
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from ..errors import HarnessError
from ._hub import hub

RECV_SIZE = 256 * 1024
MAX_MESSAGE = 8_000_000  # Bandit's default frame limit, the largest a Phoenix server sends
ABNORMAL = 1006  # no close frame was received (RFC 6455 §7.1.5)


class ConnectionClosed(HarnessError):
    """The websocket ended; `code` and `reason` are what the server's close frame said
    (`1006` and an empty reason when the connection just died)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"closed with {code} {reason}".strip())
        self.code = code
        self.reason = reason


class HandshakeFailed(HarnessError):
    """The peer closed or answered garbage before the websocket handshake finished."""


class HandshakeRejected(HandshakeFailed):
    """The server answered the upgrade with another HTTP status (401, 403, 404, ...)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"rejected with HTTP {status}")
        self.status = status


class ClientWebSocket:
    """One open client websocket. One task calls `receive`; any task may `send_text`."""

    def __init__(
        self, sock: socket.socket, protocol: ClientProtocol, early: bytes, max_message: int
    ) -> None:
        self._sock = sock
        self._protocol = protocol
        self._out = bytearray()  # bytes the kernel did not take yet, sent in order
        self._send_lock = trio.Lock()
        self._closed: ConnectionClosed | None = None
        self._close_seen = trio.Event()
        self._early = early  # bytes that arrived with the handshake's answer
        self._buffer = b""  # the start of a frame not complete yet
        self._fast = True  # False once a frame was too large: websockets parses from then on
        self._max_message = max_message
        self._partial: tuple[bool, bytearray] | None = None  # a fragmented message so far
        self._reading = False  # a task (or the hub) reads: it will see the server's close
        self._sink: Callable[[list[tuple[bool, bytes]]], None] | None = None
        self._failure: Exception | None = None

    @property
    def closed(self) -> ConnectionClosed | None:
        return self._closed

    # -- receiving -------------------------------------------------------------------------

    async def receive(self) -> list[tuple[bool, bytes]]:
        """Every complete message that has arrived, as (is_text, data), at least one; raises
        `ConnectionClosed` once the connection is over."""
        self._reading = True
        try:
            return await self._receive()
        finally:
            self._reading = False

    async def _receive(self) -> list[tuple[bool, bytes]]:
        while True:
            if self._closed is not None:
                raise self._closed
            if self._early:
                data, self._early = self._early, b""
            else:
                try:
                    await trio.lowlevel.wait_readable(self._sock)
                except trio.ClosedResourceError:  # aborted, or closed by `aclose` meanwhile
                    self._end()
                    continue
                try:
                    data = self._sock.recv(RECV_SIZE)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
            messages = self._process(data)
            if messages:
                return messages

    def _process(self, data: bytes) -> list[tuple[bool, bytes]]:
        """The messages in newly received bytes (b"": the peer closed); answers pings, echoes
        a close, and notes the end of the connection."""
        protocol = self._protocol
        if data:
            messages = self._frames(data)
        else:
            protocol.receive_eof()
            messages = self._messages(protocol.events_received())
        self._write(protocol.data_to_send())  # pongs, the echo of a close
        if protocol.state is State.CLOSED or protocol.close_rcvd is not None or not data:
            self._end()
        elif protocol.parser_exc is not None:  # a frame we cannot take: we sent a close
            sent = protocol.close_sent
            self._closed = ConnectionClosed(sent.code if sent else 1002, str(protocol.parser_exc))
            self._close_seen.set()
        return messages

    # -- pushing: the hub reads, `sink` gets the messages ------------------------------------

    def push_to(self, sink: Callable[[list[tuple[bool, bytes]]], None]) -> None:
        """From now on the loop's hub reads this socket and hands every batch of messages to
        `sink` (synchronously, no task switch); `wait_closed` says when it is over."""
        self._sink = sink
        self._reading = True
        if self._early:
            data, self._early = self._early, b""
            self._deliver(self._process(data))
        if self._closed is None:
            hub().add(self)

    async def wait_closed(self) -> ConnectionClosed:
        """Until the connection is over; raises what the sink raised, if it did."""
        await self._close_seen.wait()
        if self._failure is not None:
            raise self._failure
        assert self._closed is not None
        return self._closed

    def fileno(self) -> int:
        return self._sock.fileno()

    def fail(self, exc: Exception) -> None:
        """A bug while handling this socket's bytes: it ends the connection, and its task
        gets the exception from `wait_closed`."""
        self._failure = exc
        self._end()

    def readable(self) -> None:
        """Called by the hub when the socket has bytes (or the peer closed)."""
        try:
            data = self._sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self._deliver(self._process(data))

    def _deliver(self, messages: list[tuple[bool, bytes]]) -> None:
        if messages and self._sink is not None and self._failure is None:
            try:
                self._sink(messages)
            except Exception as exc:  # the sink's bug ends this connection, raised in its task
                self.fail(exc)
        if self._closed is not None:
            hub().remove(self)

    def _frames(self, data: bytes) -> list[tuple[bool, bytes]]:
        """The messages in the bytes so far. Whole unfragmented data frames, unmasked as a
        server sends them, are cut here (1.5 µs a frame against websockets' 4-6 µs); every
        other frame (ping, close, fragments, anything odd) goes to websockets whole, so its
        parser always starts at a frame boundary and keeps every rule of RFC 6455."""
        protocol = self._protocol
        if not self._fast:
            protocol.receive_data(data)
            return self._messages(protocol.events_received())
        buf = self._buffer + data if self._buffer else data
        out: list[tuple[bool, bytes]] = []
        pos, size = 0, len(buf)
        while size - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            length, head = second & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4]), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10]), 10
            if second & 0x80:
                head += 4  # masked: no server may; websockets says so below
            if length > self._max_message:  # websockets refuses it without buffering it
                self._fast = False
                protocol.receive_data(buf[pos:])
                out.extend(self._messages(protocol.events_received()))
                pos = size
                break
            end = pos + head + length
            if end > size:
                break
            if (first == 0x81 or first == 0x82) and not second & 0x80 and self._partial is None:
                out.append((first == 0x81, buf[pos + head : end]))
            else:
                protocol.receive_data(buf[pos:end])
                out.extend(self._messages(protocol.events_received()))
                if protocol.close_rcvd is not None or protocol.parser_exc is not None:
                    pos = size  # nothing after a close frame or a broken one counts
                    break
            pos = end
        self._buffer = buf[pos:] if pos < size else b""
        return out

    def _messages(self, frames: Sequence[object]) -> list[tuple[bool, bytes]]:
        out: list[tuple[bool, bytes]] = []
        partial = self._partial
        for frame in frames:
            if not isinstance(frame, Frame):
                continue
            opcode = frame.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                if frame.fin:
                    out.append((opcode is Opcode.TEXT, bytes(frame.data)))
                else:
                    partial = (opcode is Opcode.TEXT, bytearray(frame.data))
            elif opcode is Opcode.CONT and partial is not None:
                partial[1].extend(frame.data)
                if frame.fin:
                    out.append((partial[0], bytes(partial[1])))
                    partial = None
        self._partial = partial
        return out

    def _end(self) -> None:
        if self._closed is None:
            rcvd = self._protocol.close_rcvd
            self._closed = (
                ConnectionClosed(rcvd.code, rcvd.reason)
                if rcvd is not None
                else ConnectionClosed(ABNORMAL, "")
            )
            self._close_seen.set()

    # -- sending ---------------------------------------------------------------------------

    def send_text(self, data: bytes) -> bool:
        """Queue one text message; returns True when part of it waits for `drain`."""
        if self._closed is not None or self._protocol.state is not State.OPEN:
            return False
        self._protocol.send_text(data)
        self._write(self._protocol.data_to_send())
        return bool(self._out)

    @property
    def backlogged(self) -> bool:
        """Bytes queued that the kernel has not taken yet (`drain` waits for them)."""
        return bool(self._out)

    def send_binary(self, data: bytes) -> bool:
        if self._closed is not None or self._protocol.state is not State.OPEN:
            return False
        self._protocol.send_binary(data)
        self._write(self._protocol.data_to_send())
        return bool(self._out)

    async def drain(self) -> None:
        """Wait until the kernel took everything queued (raises `ConnectionClosed` if the
        connection ends first)."""
        async with self._send_lock:
            while self._out:
                if self._closed is not None:
                    raise self._closed
                try:
                    await trio.lowlevel.wait_writable(self._sock)
                except trio.ClosedResourceError:
                    self._end()
                    continue
                self._write([])

    def _write(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            if chunk:  # b"" is websockets' "half-close now": we close the whole socket later
                self._out += chunk
        while self._out:
            try:
                sent = self._sock.send(self._out)
            except BlockingIOError:
                return
            except OSError:  # reset by the peer: the reader sees the end
                self._out.clear()
                return
            del self._out[:sent]

    # -- closing ---------------------------------------------------------------------------

    async def aclose(self, code: int = 1000, reason: str = "", *, timeout: float = 1.0) -> None:
        """The closing handshake (bounded by `timeout`), then the TCP connection."""
        try:
            if self._closed is None and self._protocol.state is State.OPEN:
                self._protocol.send_close(code, reason)
                self._write(self._protocol.data_to_send())
                with trio.move_on_after(timeout):
                    if self._reading:  # the reader sees the server's close frame
                        await self._close_seen.wait()
                    else:
                        with contextlib.suppress(ConnectionClosed):
                            while True:
                                await self._receive()
        finally:
            if self._closed is None:  # no answer in time: what we asked for is how it ended
                self._closed = ConnectionClosed(code, reason)
                self._close_seen.set()
            self.abort()

    def abort(self) -> None:
        """Close the TCP connection with no close frame (the client's process or link died)."""
        if self._sink is not None:
            hub().remove(self)
        if self._sock.fileno() >= 0:
            trio.lowlevel.notify_closing(self._sock)
            self._sock.close()
        self._end()  # nobody reads a closed socket: its end is now (1006 unless known)

    def pending_bytes(self) -> int:
        """Bytes that reached this socket and were not read yet (FIONREAD): a backlog there is
        the harness's own, since the peer has already sent them."""
        try:
            raw = fcntl.ioctl(self._sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except (OSError, ValueError):  # closed meanwhile: nothing is pending
            return 0
        return int(struct.unpack("i", raw)[0])


async def open_websocket(
    url: str, timeout: float, *, max_message: int = MAX_MESSAGE
) -> ClientWebSocket:
    """Connect and finish the handshake within `timeout` (`trio.TooSlowError` otherwise)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with trio.fail_after(timeout):
            await _connect(sock, host, port)
            protocol = ClientProtocol(parse_uri(url), max_size=max_message)
            protocol.send_request(protocol.connect())
            early = await _handshake(sock, protocol)
        return ClientWebSocket(sock, protocol, early, max_message)
    except BaseException:
        trio.lowlevel.notify_closing(sock)
        sock.close()
        raise


async def _connect(sock: socket.socket, host: str, port: int) -> None:
    """Start connecting; the handshake's first send waits for the connection only if it has
    to (on loopback the kernel has usually finished it: one epoll round trip saved a client)."""
    code = sock.connect_ex((host, port))
    if code not in (0, errno.EINPROGRESS):
        raise OSError(code, f"connect to {host}:{port}: {errno.errorcode.get(code, code)}")


async def _handshake(sock: socket.socket, protocol: ClientProtocol) -> bytes:
    """Send the upgrade request, read the answer; returns the bytes that came after it (frames:
    websockets is given only the answer, so its frame parser starts at a frame boundary)."""
    pending = bytearray().join(protocol.data_to_send())
    while pending:
        try:
            del pending[: sock.send(pending)]
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, f"connect: {errno.errorcode.get(code, code)}") from None
    head = b""
    answered = False  # the whole head was given to websockets (a refusal may have a body)
    while True:
        await trio.lowlevel.wait_readable(sock)
        try:
            data = sock.recv(RECV_SIZE)
        except BlockingIOError:
            continue
        except OSError as exc:
            raise HandshakeFailed(f"the connection failed during the handshake: {exc}") from None
        rest = b""
        if not data:
            protocol.receive_eof()
        elif answered:
            protocol.receive_data(data)
        else:
            head += data
            end = head.find(b"\r\n\r\n")
            if end >= 0:
                head, rest = head[: end + 4], head[end + 4 :]
                protocol.receive_data(head)
                answered = True
        for event in protocol.events_received():
            if isinstance(event, Response):
                if isinstance(protocol.handshake_exc, InvalidStatus):
                    raise HandshakeRejected(event.status_code)
                if protocol.handshake_exc is not None:
                    raise HandshakeFailed(str(protocol.handshake_exc))
                return rest
        if protocol.handshake_exc is not None:
            raise HandshakeFailed(str(protocol.handshake_exc))
        if not data:
            raise HandshakeFailed("the connection closed before the websocket handshake finished")
        if rest:
            protocol.receive_data(rest)  # the body of a refusal
