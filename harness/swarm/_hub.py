"""The socket hub: one epoll set for every client socket of a trio loop, read by one task.

Why: with a task per socket, each message a client gets costs a trio wake-up, two `epoll_ctl`
calls and a task switch (about a third of a swarm worker's time in a busy room, where every
delivery arrives on its own socket). Here one `epoll.poll` names every socket that has bytes and
the hub calls each one's `readable()`, which reads and hands its messages on with no task switch.
Trio waits on the hub's own epoll fd like on any other. A socket's handler that raises never
ends the hub: the socket's `fail()` gets the exception and its own task raises it.
"""

from __future__ import annotations

import contextlib
import select
from typing import Protocol

import trio


class Pushed(Protocol):
    def fileno(self) -> int: ...

    def readable(self) -> None: ...

    def fail(self, exc: Exception) -> None: ...


class Hub:
    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._sockets: dict[int, Pushed] = {}
        trio.lowlevel.spawn_system_task(self._run, name="swarm socket hub")

    def add(self, pushed: Pushed) -> None:
        fd = pushed.fileno()
        self._sockets[fd] = pushed
        self._epoll.register(fd, select.EPOLLIN | select.EPOLLRDHUP)

    def remove(self, pushed: Pushed) -> None:
        fd = pushed.fileno()
        if fd >= 0 and self._sockets.get(fd) is pushed:
            del self._sockets[fd]
            with contextlib.suppress(OSError, ValueError):
                self._epoll.unregister(fd)

    async def _run(self) -> None:
        while True:
            await trio.lowlevel.wait_readable(self._epoll.fileno())
            for fd, _ in self._epoll.poll(0, 1024):
                pushed = self._sockets.get(fd)
                if pushed is None:
                    continue
                try:
                    pushed.readable()
                except Exception as exc:  # that connection's end, never the hub's
                    pushed.fail(exc)
                    self.remove(pushed)


_HUB: trio.lowlevel.RunVar[Hub] = trio.lowlevel.RunVar("swarm_socket_hub")


def hub() -> Hub:
    """This trio loop's hub (made, with its task, on first use)."""
    try:
        return _HUB.get()
    except LookupError:
        made = Hub()
        _HUB.set(made)
        return made
