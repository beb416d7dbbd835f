"""What goes out to one peer: the `Outbox` (written straight to the socket when it can, else by
the connection's writer task) and the loop's `Cork`.

Why a cork: a node's fan-out is one `os.write` a subscriber a message (a third of its time in
`bench/fanout.py` under py-spy, where every other cost is small), so a burst of 200 messages to
500 subscribers is 100,000 system calls. While a socket works through frames that arrived
together (a burst: `begin`/`end` around them), writes are only appended to their outboxes, and
each outbox is written once when the burst ends, or `HOLD` after the first held write at the
latest (a handler that waits on the store or sleeps cannot hold anyone's bytes longer). Lines
of a mesh link and Redis pushes that arrive in one read are a burst too (`burst()`). A client
that sends one message at a time never starts a burst: its deliveries go out at once, exactly
as before. Redis does the same with its replies (written before its event loop sleeps).

Measured (`bench/fanout.py`, 500 subscribers x 200 messages in one write, the store in memory
so the disk's fsync a message is not what is timed; same box, alternating runs): without the
cork 44,400-51,600 deliveries/s, 0.95-1.09x the `websockets` `broadcast()` baseline; with it
82,600-132,600/s, 1.95-2.64x. `HOLD` 5 ms rather than 1 ms: at 1 ms a hold covered about one
message (a store write and 500 appends take most of a millisecond), 1.41-1.50x. Nagle's
algorithm holds up to 200 ms; this holds 5 ms, and only during a burst.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import trio

from ._errors import ServerError

HOLD = 0.005  # seconds a held write may wait at most


class Cork:
    """One per trio run (`current_cork`): held outboxes, written at the end of the last burst
    or `HOLD` after the first hold, whichever comes first."""

    def __init__(self) -> None:
        self.bursts = 0
        self._held: list[Outbox] = []
        self._first_hold = trio.Event()
        trio.lowlevel.spawn_system_task(self._bound, name="outbox cork")

    def begin(self) -> None:
        self.bursts += 1

    def end(self) -> None:
        self.bursts -= 1
        if self.bursts <= 0:
            self.bursts = 0
            self.release()

    def hold(self, outbox: Outbox) -> None:
        if not self._held:
            self._first_hold.set()
        self._held.append(outbox)

    def release(self) -> None:
        held, self._held = self._held, []
        for outbox in held:
            outbox.write_held()

    async def _bound(self) -> None:
        while True:
            await self._first_hold.wait()
            self._first_hold = trio.Event()
            await trio.sleep(HOLD)
            self.release()


@contextmanager
def burst(together: bool = True) -> Iterator[None]:
    """Messages that arrived together, handled without waiting (a mesh link's lines, Redis's
    pushes): what their handling writes goes out in one write a peer at the end. `together`
    False (one message) is a no-op."""
    if not together:
        yield
        return
    cork = current_cork()
    cork.begin()
    try:
        yield
    finally:
        cork.end()


_CORK: trio.lowlevel.RunVar[Cork] = trio.lowlevel.RunVar("outbox_cork")


def current_cork() -> Cork:
    try:
        return _CORK.get()
    except LookupError:
        cork = Cork()
        _CORK.set(cork)
        return cork


class Outbox:
    """Bytes waiting to go to one peer, drained by one writer task.

    Fast path: when nothing is queued and no send is in flight, `put` writes straight to the
    non-blocking socket (`os.write` on its file descriptor), with no task switch at all; only
    what the kernel does not take at once (EAGAIN, a partial write) is queued for the writer
    task. While the loop's `Cork` holds (a burst is being worked through), `put` only appends
    and the cork writes it later, one write for everything held. Bytes can never interleave:
    the fast path is skipped while the writer holds data.
    """

    def __init__(self, limit: int, fd: int | None = None) -> None:
        self.limit = limit
        self.fd = fd
        self.cork = current_cork() if fd is not None else None
        self._held = False  # bytes in `_buffer` wait for the cork, not for the writer
        self._buffer = bytearray()
        self._wake = trio.Event()
        self._sending = False
        self.finished = False
        self.overflowed = False
        self.broken = False
        self._send_scope: trio.CancelScope | None = None

    def put(self, data: bytes) -> None:
        if self.finished or self.overflowed or self.broken:
            return
        cork = self.cork
        if cork is not None and cork.bursts and not self._sending:
            if not self._buffer:
                self._held = True
                cork.hold(self)
            if self._held:
                self._buffer += data
                if len(self._buffer) > self.limit:
                    self._overflow()
                return
        if self.fd is not None and not self._buffer and not self._sending:
            try:
                sent = os.write(self.fd, data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.broken = True  # the peer is gone; the writer and reader will notice
                self._wake.set()
                return
            if sent == len(data):
                return
            data = data[sent:]
        self._buffer += data
        if len(self._buffer) > self.limit:
            self._overflow()
        self._wake.set()

    def _overflow(self) -> None:
        self.overflowed = True
        self._buffer.clear()
        self._held = False
        if self._send_scope is not None:
            self._send_scope.cancel()  # the writer may be stuck in send_all to this peer
        self._wake.set()

    def write_held(self) -> None:
        """The cork lets go: write what it held in one go; the writer gets what is left."""
        if not self._held:
            return
        self._held = False
        if self._sending or self.finished or self.overflowed or self.broken or not self._buffer:
            self._wake.set()
            return
        assert self.fd is not None
        try:
            sent = os.write(self.fd, self._buffer)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.broken = True
            self._wake.set()
            return
        del self._buffer[:sent]
        if self._buffer:
            self._wake.set()

    def finish(self) -> None:
        """No more data after what is queued; the writer returns once it is sent."""
        self.finished = True
        self._held = False  # the writer sends what the cork held
        self._wake.set()

    async def drain_into(self, stream: trio.abc.SendStream) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            if self.overflowed:
                raise OutboxOverflow(f"more than {self.limit} bytes queued for one peer")
            if self.broken:
                raise trio.BrokenResourceError("the peer went away during a direct write")
            while self._buffer:
                data = bytes(self._buffer)
                self._buffer.clear()
                self._held = False
                self._sending = True
                try:
                    with trio.CancelScope() as self._send_scope:
                        await stream.send_all(data)
                finally:
                    self._sending = False
                    self._send_scope = None
                if self.overflowed:  # cancelled mid-send: the stream is cut in a frame anyway
                    raise OutboxOverflow(f"more than {self.limit} bytes queued for one peer")
            if self.finished and not self._buffer:
                return


class OutboxOverflow(ServerError):
    """The peer reads too slowly; its connection is dropped."""
