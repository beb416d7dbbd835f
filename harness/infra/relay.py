"""Relays for `cluster.forward`: a host service (a database on this machine) reachable from
nodes that live in network namespaces of their own (`network: isolated`).

Two halves meet at a Unix socket, which belongs to no network namespace (the filesystem is
shared): the `harness run` that stayed in the machine's namespace serves the socket and dials
the service (`serve_service`); the harness inside the hub listens on the hub's service address
with the service's port and dials the socket (`serve_forward`). A node connects to
10.201.0.1:PORT and reaches HOST:PORT on the machine. Bytes pass as they came, both ways, each
connection on its own; a side that cannot connect closes the other.

Why not socat: it is not on every machine, and the relay must live and die with the run's own
processes (the harness's), not as one more child to track.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import trio

CHUNK = 65536
FORWARDS_ENV = "CHAOS_FORWARDS"  # HOST:PORT=SOCKET,... for the harness inside the hub


def socket_name(service: str) -> str:
    return "fwd-" + service.replace(":", "-").replace(".", "_") + ".sock"


async def _pipe(source: trio.abc.Stream, target: trio.abc.Stream) -> None:
    with suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        while data := await source.receive_some(CHUNK):
            await target.send_all(data)
    if isinstance(target, trio.abc.HalfCloseableStream):
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await target.send_eof()


async def _join(a: trio.abc.Stream, dial: trio.abc.Stream | None) -> None:
    async with a:
        if dial is None:
            return
        async with dial, trio.open_nursery() as nursery:
            nursery.start_soon(_pipe, a, dial)
            nursery.start_soon(_pipe, dial, a)


async def serve_service(
    services: Sequence[str], directory: Path, *, task_status: trio.TaskStatus[None]
) -> None:
    """For each HOST:PORT, a Unix socket in `directory` whose connections reach it."""
    listeners = []
    for service in services:
        path = directory / socket_name(service)
        with suppress(FileNotFoundError):
            path.unlink()
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        await sock.bind(str(path))
        os.chmod(path, 0o600)
        sock.listen()
        host, _, port = service.rpartition(":")

        async def handle(stream: trio.abc.Stream, host: str = host, port: int = int(port)) -> None:
            try:
                with trio.fail_after(5):
                    dial = await trio.open_tcp_stream(host, port)
            except (OSError, trio.TooSlowError):
                dial = None
            await _join(stream, dial)

        listeners.append((trio.SocketListener(sock), handle))
    task_status.started()
    async with trio.open_nursery() as nursery:
        for listener, handle in listeners:
            nursery.start_soon(trio.serve_listeners, handle, [listener])


async def serve_forward(
    host: str, port: int, socket_path: str, *, task_status: trio.TaskStatus[None]
) -> None:
    """Listen on host:port (the hub's service address) and relay to the Unix socket."""
    listeners = await trio.open_tcp_listeners(port, host=host)

    async def handle(stream: trio.abc.Stream) -> None:
        try:
            dial: trio.abc.Stream | None = await trio.open_unix_socket(socket_path)
        except OSError:
            dial = None
        await _join(stream, dial)

    task_status.started()
    await trio.serve_listeners(handle, listeners)


def forwards_from_env() -> dict[str, str]:
    """HOST:PORT -> the Unix socket that reaches it, as the outer harness said."""
    found: dict[str, str] = {}
    for item in filter(None, os.environ.get(FORWARDS_ENV, "").split(",")):
        service, _, path = item.partition("=")
        found[service] = path
    return found
