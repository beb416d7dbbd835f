"""Processes the harness owns, and the ports it hands them.

Every process the harness starts runs in a session (and process group) of its own, with its
output in a log file, and is only ever signalled through that group: a node, toxiproxy-server,
redis-server, a swarm worker. Each group is registered with the watchdog (`harness.infra.watchdog`),
which kills what is left of them if the harness itself is killed. `ServerProcess` is a helper
server's lifetime (spawn, stop by group); `wait_ready` is the one "poll until it answers, or
until it died" loop they all use; `free_ports` picks loopback ports below the kernel's
ephemeral range.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO

import trio

from ..errors import ClusterError, HarnessError

POLL_INTERVAL = 0.02


async def open_process_group(
    argv: Sequence[str],
    log: IO[bytes] | int | None,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: int | None = subprocess.DEVNULL,
    stderr: IO[bytes] | int | None = None,
) -> trio.Process:
    """Start `argv` in a session (and process group) of its own, output into `log` (errors too,
    unless `log` is a pipe: then into `stderr`, by default this process's); the watchdog kills
    the group if this process dies without stopping it."""
    process = await trio.lowlevel.open_process(
        list(argv),
        stdin=stdin,
        stdout=log,
        stderr=subprocess.STDOUT if log is not subprocess.PIPE else stderr,
        start_new_session=True,
        env=env,
        cwd=cwd,
    )
    watch(f"group {process.pid}")
    return process


_watchdog: subprocess.Popen[bytes] | None = None


def watch(line: str) -> None:
    """Tell the watchdog (`harness.infra.watchdog`, started on first use) about something to remove
    if this process dies before it does: `group PID`, `proxy HOST PORT NAME`, `drop ...`."""
    global _watchdog  # one watchdog per harness process, for its whole life
    if _watchdog is None or _watchdog.poll() is not None:
        _watchdog = subprocess.Popen(
            [sys.executable, "-m", "harness.infra.watchdog"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    assert _watchdog.stdin is not None
    with suppress(BrokenPipeError):
        _watchdog.stdin.write(f"{line}\n".encode())
        _watchdog.stdin.flush()


def signal_group(process: trio.Process, signum: int) -> None:
    """Signal the process group of a process this harness started (never anything else)."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signum)


async def stop_process_group(process: trio.Process, *, grace: float = 3.0) -> None:
    """SIGTERM the group, SIGKILL it after `grace`, reap it."""
    if process.poll() is not None:
        return
    signal_group(process, signal.SIGTERM)
    with trio.move_on_after(grace):
        await process.wait()
    if process.poll() is None:
        signal_group(process, signal.SIGKILL)
        await process.wait()


async def wait_ready(
    ready: Callable[[], Awaitable[bool]],
    *,
    died: Callable[[], str | None],
    timeout: float,
    what: str,
    error: type[HarnessError] = ClusterError,
) -> None:
    """Poll `ready()` until it is true; raise as soon as `died()` names a reason, or at the
    deadline."""
    with trio.move_on_after(timeout):
        while True:
            reason = died()
            if reason is not None:
                raise error(reason)
            if await ready():
                return
            await trio.sleep(POLL_INTERVAL)
    raise error(f"{what} after {timeout:g}s")


class ServerProcess:
    """A helper server the harness owns (toxiproxy-server, redis-server): started in its own
    process group with its output in a log file, stopped through that group only."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: trio.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def exited(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    async def spawn(self, argv: Sequence[str]) -> trio.Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = await open_process_group(argv, self._log)
        return self.process

    async def stop(self) -> None:
        if self.process is not None:
            await stop_process_group(self.process)
        if self._log is not None:
            self._log.close()
            self._log = None


def last_words(log_path: Path) -> str:
    """The last line a process wrote before it died (its error, usually), for a message."""
    try:
        with log_path.open("rb") as log:
            log.seek(max(0, log_path.stat().st_size - 4096))
            lines = log.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return ""
    last = lines[-1].strip() if lines else ""
    return f" ({last})" if last and not last.startswith("--- start:") else ""


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports that are free now, chosen below the kernel's ephemeral range.

    A port from the ephemeral range (what binding port 0 gives) can be handed straight back
    by the kernel to the next socket that binds port 0 or connects out: a Toxiproxy listener,
    a client connection. A node would then fail to start, or fail to restart on its own port
    after a kill. Ports below the range are only ever taken by someone asking for them.
    Each port is checked by binding it without SO_REUSEADDR, and one process never hands out
    the same port twice (until half the range has gone, when it starts over).
    """
    low, high = _unassigned_range()
    ports: list[int] = []
    for _ in range(50 * count + 1000):
        if len(ports) == count:
            return ports
        port = _random.randrange(low, high)
        if port in _handed_out:
            continue
        if len(_handed_out) > (high - low) // 2:  # a long-lived process: start over
            _handed_out.clear()
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        ports.append(port)
    raise ClusterError(f"no {count} free ports between {low} and {high} on {host}")


_random = random.Random()  # seeded from the OS: two runs at once pick different ports
_handed_out: set[int] = set()


def _unassigned_range() -> tuple[int, int]:
    """Ports from 10000 up to the start of the ephemeral range (Linux: 32768 by default)."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        ephemeral_low = int(text.split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    if ephemeral_low - 10000 < 2000:  # a machine that made almost everything ephemeral
        return 1024, max(ephemeral_low, 3024)
    return 10000, ephemeral_low
