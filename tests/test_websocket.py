"""The swarm's client websocket against a hand-written server that sends exact bytes: frames cut
anywhere, frames that came with the handshake's answer, fragments, pings, close codes, refusals
and frames no server may send."""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.lowlevel

from harness.swarm._websocket import (
    ConnectionClosed,
    HandshakeFailed,
    HandshakeRejected,
    open_websocket,
)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = False) -> bytes:
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head = bytes([first, bit | n])
    elif n < 65536:
        head = bytes([first, bit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([first, bit | 127]) + struct.pack("!Q", n)
    return head + (b"\0\0\0\0" + payload if mask else payload)


def client_payload(data: bytes) -> tuple[int, bytes, bytes]:
    """(opcode, payload, rest) of the first masked client frame in data."""
    opcode, length = data[0] & 0x0F, data[1] & 0x7F
    pos = 2
    if length == 126:
        length, pos = struct.unpack("!H", data[2:4])[0], 4
    mask, pos = data[pos : pos + 4], pos + 4
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(data[pos : pos + length]))
    return opcode, body, data[pos + length :]


Script = Callable[[trio.SocketStream, bytes], Awaitable[None]]


async def serve(nursery: trio.Nursery, script: Script, status: int = 101) -> str:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]

    async def handle(stream: trio.SocketStream) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await stream.receive_some(4096)
        head = request.partition(b"\r\n\r\n")[0]
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        if status != 101:
            await stream.send_all(b"HTTP/1.1 %d No\r\ncontent-length: 2\r\n\r\nno" % status)
            await stream.aclose()
            return
        answer = (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        await script(stream, answer)

    nursery.start_soon(trio.serve_listeners, handle, [listener])
    return f"ws://127.0.0.1:{port}/socket/websocket?vsn=2.0.0"


async def collect(url: str, count: int) -> list[tuple[bool, bytes]]:
    ws = await open_websocket(url, 5)
    got: list[tuple[bool, bytes]] = []
    with trio.fail_after(5):
        while len(got) < count:
            got.extend(await ws.receive())
    await ws.aclose(timeout=0.2)
    return got


async def test_frames_cut_at_every_byte_and_sent_with_the_answer_all_arrive(nursery):
    texts = [b'["1","2","room:1","new_msg",{"i":%d}]' % i for i in range(5)]
    big = b"x" * 70_000
    wire = b"".join(frame(1, t) for t in texts) + frame(2, b"\x00\x01") + frame(1, big)

    async def script(stream: trio.SocketStream, answer: bytes) -> None:
        await stream.send_all(answer + wire[:7])  # frames glued to the handshake's answer
        for i in range(7, len(wire), 997):
            await stream.send_all(wire[i : i + 997])
            await trio.lowlevel.checkpoint()
        await trio.sleep_forever()

    got = await collect(await serve(nursery, script), 7)
    assert got == [(True, t) for t in texts] + [(False, b"\x00\x01"), (True, big)]


async def test_fragments_join_pings_are_answered_and_a_close_frame_ends_it(nursery):
    seen: list[tuple[int, bytes]] = []
    both = trio.Event()

    async def script(stream: trio.SocketStream, answer: bytes) -> None:
        await stream.send_all(
            answer
            + frame(1, b"hel", fin=False)
            + frame(9, b"ping!")  # a control frame between fragments
            + frame(0, b"lo", fin=False)
            + frame(0, b"!", fin=True)
            + frame(8, struct.pack("!H", 4000) + b"bye")
        )
        data = b""
        with trio.move_on_after(2):
            while len(seen) < 2:
                data += await stream.receive_some(4096)
                while len(data) >= 6 and len(data) >= 6 + (data[1] & 0x7F):
                    opcode, body, data = client_payload(data)
                    seen.append((opcode, body))
        both.set()
        await stream.aclose()

    ws = await open_websocket(await serve(nursery, script), 5)
    assert await ws.receive() == [(True, b"hello!")]
    with pytest.raises(ConnectionClosed) as closed, trio.fail_after(5):
        await ws.receive()
    assert (closed.value.code, closed.value.reason) == (4000, "bye")
    with trio.fail_after(5):
        await both.wait()
    assert seen[0] == (10, b"ping!")  # pong
    assert seen[1][0] == 8  # the close, echoed
    assert seen[1][1][:2] == struct.pack("!H", 4000)


async def test_a_masked_frame_from_the_server_ends_the_connection_as_a_protocol_error(nursery):
    async def script(stream: trio.SocketStream, answer: bytes) -> None:
        await stream.send_all(answer + frame(1, b"ok") + frame(1, b"masked", mask=True))
        await trio.sleep(2)

    ws = await open_websocket(await serve(nursery, script), 5)
    assert await ws.receive() == [(True, b"ok")]
    with pytest.raises(ConnectionClosed) as closed, trio.fail_after(5):
        await ws.receive()
    assert closed.value.code == 1002


async def test_a_frame_over_the_limit_is_refused_without_buffering_it(nursery):
    async def script(stream: trio.SocketStream, answer: bytes) -> None:
        await stream.send_all(answer + frame(1, b"y" * 2000)[:100])
        await trio.sleep(2)

    url = await serve(nursery, script)
    ws = await open_websocket(url, 5, max_message=1000)
    with pytest.raises(ConnectionClosed) as closed, trio.fail_after(5):
        await ws.receive()
    assert closed.value.code == 1009


async def test_a_refusal_names_its_status_and_a_dead_upstream_fails_at_once(nursery):
    async def never(stream: trio.SocketStream, answer: bytes) -> None:
        raise AssertionError("not reached")

    with pytest.raises(HandshakeRejected) as rejected:
        await open_websocket(await serve(nursery, never, status=403), 5)
    assert rejected.value.status == 403

    async def hang_up(stream: trio.SocketStream, answer: bytes) -> None:
        await stream.aclose()  # what Toxiproxy does when the node behind it is down

    with trio.fail_after(2), pytest.raises(HandshakeFailed):
        await open_websocket(await serve(nursery, hang_up), 5)


async def test_sends_leave_in_order_even_when_the_kernel_buffer_is_full(nursery):
    received = bytearray()
    total = 400 * (20_000 + 8)  # a 16-bit length and a mask per frame
    everything = trio.Event()

    async def script(stream: trio.SocketStream, answer: bytes) -> None:
        await stream.send_all(answer)
        await trio.sleep(0.5)  # let the client's send buffer fill up first
        while len(received) < total:
            received.extend(await stream.receive_some(1 << 20))
        everything.set()

    ws = await open_websocket(await serve(nursery, script), 5)
    chunks = [bytes([65 + i % 26]) * 20_000 for i in range(400)]
    backlog = False
    for chunk in chunks:
        backlog = ws.send_text(chunk) or backlog
    assert backlog  # 8 MB do not fit in a loopback socket's buffer
    with trio.fail_after(20):
        await ws.drain()
        await everything.wait()
    data = bytes(received)
    bodies = []
    while data:
        _, body, data = client_payload(data) if data[1] & 0x7F != 127 else (0, b"", b"")
        bodies.append(body)
    assert bodies == chunks


async def test_the_hub_pushes_batches_and_an_abort_or_a_sink_error_ends_the_wait(nursery):
    async def script(stream: trio.SocketStream, answer: bytes) -> None:
        await stream.send_all(answer + frame(1, b"a"))
        await trio.sleep(0.05)
        await stream.send_all(frame(1, b"b") + frame(1, b"c"))
        await trio.sleep_forever()

    url = await serve(nursery, script)
    got: list[bytes] = []
    ws = await open_websocket(url, 5)

    def sink(messages: list[tuple[bool, bytes]]) -> None:
        got.extend(data for _, data in messages)
        if len(got) == 3:
            ws.abort()  # a client crash while the hub delivers

    ws.push_to(sink)
    with trio.fail_after(5):
        closed = await ws.wait_closed()
    assert got == [b"a", b"b", b"c"]
    assert closed.code == 1006

    failing = await open_websocket(url, 5)

    def broken(messages: list[tuple[bool, bytes]]) -> None:
        raise RuntimeError("a bug in the client model")

    failing.push_to(broken)
    with pytest.raises(RuntimeError, match="client model"), trio.fail_after(5):
        await failing.wait_closed()
    await failing.aclose(timeout=0.1)
