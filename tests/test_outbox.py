"""The server's outbox and its cork, on a real socket pair: held writes go out in one write at
the end of a burst, or by the cork's own bound when a burst lasts; order is never changed."""

from __future__ import annotations

import socket

import pytest
import trio

from server_under_test._outbox import Outbox, OutboxOverflow, current_cork


def pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def pending(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1 << 20)
    except BlockingIOError:
        return b""


async def test_outside_a_burst_a_put_is_written_at_once():
    a, b = pair()
    outbox = Outbox(1 << 20, a.fileno())
    outbox.put(b"one")
    assert pending(b) == b"one"


async def test_a_burst_holds_every_write_until_it_ends_then_writes_each_peer_once():
    (a1, b1), (a2, b2) = pair(), pair()
    first, second = Outbox(1 << 20, a1.fileno()), Outbox(1 << 20, a2.fileno())
    cork = current_cork()
    cork.begin()
    for i in range(5):
        first.put(b"m%d;" % i)
        second.put(b"m%d;" % i)
    assert pending(b1) == b""
    assert pending(b2) == b""
    cork.end()
    assert pending(b1) == b"m0;m1;m2;m3;m4;"
    assert pending(b2) == b"m0;m1;m2;m3;m4;"
    first.put(b"after")  # the burst is over: straight through again
    assert pending(b1) == b"after"


async def test_a_long_burst_cannot_hold_bytes_past_the_bound():
    a, b = pair()
    outbox = Outbox(1 << 20, a.fileno())
    cork = current_cork()
    cork.begin()  # a handler that waits (the store, a sleep) while its burst is open
    outbox.put(b"held")
    with trio.fail_after(5):
        await trio.lowlevel.wait_readable(b)
    assert cork.bursts == 1
    assert pending(b) == b"held"
    cork.end()


async def test_what_the_kernel_does_not_take_goes_to_the_writer_in_order():
    a, b = pair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    outbox = Outbox(1 << 24, a.fileno())
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(a))
    chunk = bytes(range(256)) * 64  # 16 KB: more than the socket takes at once
    cork = current_cork()
    received = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.drain_into, stream)
        cork.begin()
        for _ in range(20):
            outbox.put(chunk)
        cork.end()
        outbox.put(b"tail")
        outbox.finish()
        with trio.fail_after(10):
            while len(received) < 20 * len(chunk) + 4:
                await trio.lowlevel.wait_readable(b)
                received += pending(b)
    assert bytes(received) == chunk * 20 + b"tail"


async def test_an_overflowing_held_outbox_is_dropped():
    a, _b = pair()
    outbox = Outbox(100, a.fileno())
    cork = current_cork()
    cork.begin()
    outbox.put(b"x" * 101)
    assert outbox.overflowed
    cork.end()
    with pytest.raises(OutboxOverflow, match="more than 100 bytes"):
        await outbox.drain_into(trio.SocketStream(trio.socket.from_stdlib_socket(a)))
