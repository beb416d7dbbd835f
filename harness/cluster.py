"""The local process backend: each node of the cluster under test is an OS process.

A node runs in its own process group (so a kill reaches everything it spawned and nothing
else), with stdout and stderr captured in its log file. It counts as started when its health
URL answers 200. The operations are the ones the nemesis needs: kill (SIGKILL), terminate
(SIGTERM, graceful), pause/resume (SIGSTOP/SIGCONT), and restart on the same ports.

Processes are only ever signalled through the process group of a process this module started.
`command` is a template (see `NodeSpec.command`) so any server that speaks the protocol can
stand in for the reference one.
"""

from __future__ import annotations

import os
import random
import shlex
import signal
import subprocess
import sys
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import trio

from ._http import get_json
from .errors import ClusterError

POLL_INTERVAL = 0.02

REFERENCE_COMMAND = (
    "{python} -m server_under_test --node {node} --host {host} --port {port}"
    " {pubsub_args} --store {store} {bug_args}"
)


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """Everything needed to start one node."""

    name: str
    host: str
    port: int
    pubsub_port: int
    peers: dict[str, tuple[str, int]] = field(default_factory=dict)
    store: str = "sqlite:///:memory:"
    bugs: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()
    pubsub: str = "mesh"  # or redis://HOST:PORT (then peers and pubsub_port are unused)

    def command(self, template: str = REFERENCE_COMMAND) -> list[str]:
        """Fill the template's placeholders: {python} {node} {host} {port} {pubsub_port}
        {peers} (n2=h:p,n3=h:p) {peer_args} (--peer n2=h:p ...) {pubsub} (mesh or the Redis
        URL) {pubsub_args} (the mesh's --pubsub-port and --peer arguments, or --pubsub URL)
        {store} {bug_args}."""
        peer_list = [f"{n}={h}:{p}" for n, (h, p) in sorted(self.peers.items())]
        peer_args = " ".join(f"--peer {p}" for p in peer_list)
        if self.pubsub == "mesh":
            pubsub_args = f"--pubsub-port {self.pubsub_port} {peer_args}"
        else:
            pubsub_args = f"--pubsub {shlex.quote(self.pubsub)}"
        text = template.format(
            python=shlex.quote(sys.executable),
            node=self.name,
            host=self.host,
            port=self.port,
            pubsub_port=self.pubsub_port,
            peers=",".join(peer_list),
            peer_args=peer_args,
            pubsub=shlex.quote(self.pubsub),
            pubsub_args=pubsub_args,
            store=shlex.quote(self.store),
            bug_args=" ".join(f"--bug {b}" for b in self.bugs),
        )
        return [*shlex.split(text), *self.extra_args]


class LocalNode:
    """One node process: start it, signal it, wait for it."""

    def __init__(
        self,
        spec: NodeSpec,
        log_path: Path,
        *,
        template: str = REFERENCE_COMMAND,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.spec = spec
        self.log_path = log_path
        self.template = template
        self.env = env
        self.cwd = cwd
        self.process: trio.Process | None = None
        self.paused = False
        self._log: IO[bytes] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def url(self) -> str:
        return f"ws://{self.spec.host}:{self.spec.port}/socket"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def start(self, *, timeout: float = 15.0) -> None:
        """Start the process and wait until its health URL answers 200."""
        if self.alive:
            raise ClusterError(f"node {self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        argv = self.spec.command(self.template)
        self._log.write(f"--- start: {shlex.join(argv)}\n".encode())
        self._log.flush()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {})}
        try:
            self.process = await open_process_group(argv, self._log, env=env, cwd=self.cwd)
        except OSError as exc:
            raise ClusterError(f"node {self.name} cannot be started: {exc}") from exc
        self.paused = False
        await self.wait_healthy(timeout=timeout)

    async def wait_healthy(self, *, timeout: float = 15.0) -> None:
        with trio.move_on_after(timeout):
            while True:
                if not self.alive:
                    code = self.process.returncode if self.process else None
                    raise ClusterError(
                        f"node {self.name} exited with code {code} before it became healthy"
                        f"{_last_words(self.log_path)}; see {self.log_path}"
                    )
                try:
                    status, _ = await get_json(self.spec.host, self.spec.port, "/health", timeout=1)
                    if status == 200:
                        return
                except (OSError, trio.TooSlowError):
                    pass
                await trio.sleep(POLL_INTERVAL)
        raise ClusterError(f"node {self.name} not healthy after {timeout}s; see {self.log_path}")

    def signal(self, signum: int) -> None:
        """Send a signal to the node's process group (only ever one this object started)."""
        if self.process is None or self.process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def terminate(self) -> None:
        if self.paused:
            self.resume()
        self.signal(signal.SIGTERM)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self.paused = False

    async def wait_exit(self, *, timeout: float = 10.0) -> int | None:
        """Wait for the process to end; its exit code (negative: killed by that signal)."""
        if self.process is None:
            return None
        with trio.move_on_after(timeout):
            code = await self.process.wait()
            self._close_log()
            return code
        raise ClusterError(f"node {self.name} still running {timeout}s after it was stopped")

    async def stop(self, *, graceful: bool = True, timeout: float = 5.0) -> None:
        """Terminate (or kill) and wait; escalate to SIGKILL if it does not go in time."""
        if not self.alive:
            self._close_log()
            return
        if graceful:
            self.terminate()
            try:
                await self.wait_exit(timeout=timeout)
                return
            except ClusterError:
                pass
        self.kill()
        await self.wait_exit(timeout=timeout)

    async def restart(self, *, timeout: float = 15.0) -> None:
        """Kill if running, then start again on the same ports."""
        if self.alive:
            self.kill()
            await self.wait_exit()
        await self.start(timeout=timeout)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


async def open_process_group(
    argv: Sequence[str],
    log: IO[bytes],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> trio.Process:
    """Start `argv` in a session (and process group) of its own, output into `log`."""
    return await trio.lowlevel.open_process(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
        cwd=cwd,
    )


async def stop_process_group(process: trio.Process, *, grace: float = 3.0) -> None:
    """SIGTERM the process group this module started, SIGKILL it after `grace`, reap it."""
    if process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with trio.move_on_after(grace):
        await process.wait()
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


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


async def wait_links(
    nodes: dict[str, LocalNode],
    state: str,
    pairs: Sequence[tuple[str, str]],
    *,
    timeout: float = 10.0,
) -> None:
    """Wait until each PubSub link `a->b` in `pairs` reports `state` ("up"/"down") in a's /stats.

    Works with any server whose /stats has `pubsub.links.<peer>.state`, as the reference one does.
    """
    with trio.move_on_after(timeout):
        while True:
            states = []
            for a, b in pairs:
                try:
                    _, stats = await get_json(nodes[a].spec.host, nodes[a].spec.port, "/stats")
                    states.append(stats["pubsub"]["links"][b]["state"])
                except (OSError, trio.TooSlowError, KeyError, TypeError):
                    states.append(None)
            if all(s == state for s in states):
                return
            await trio.sleep(POLL_INTERVAL)
    raise ClusterError(f"links {list(pairs)} not {state} after {timeout}s")


def _last_words(log_path: Path) -> str:
    """The last line a node wrote before it died (its error, usually), for the message."""
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
    the same port twice.
    """
    import socket

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


def mesh_specs(
    names: Sequence[str],
    *,
    host: str = "127.0.0.1",
    store: str,
    bugs: Sequence[str] = (),
    peer_address: dict[tuple[str, str], tuple[str, int]] | None = None,
    extra_args: Sequence[str] = (),
) -> list[NodeSpec]:
    """Specs for a full mesh on fresh ports. `peer_address[(a, b)]` overrides where a dials b
    (a Toxiproxy listener, say); by default a dials b's PubSub port directly."""
    ports = free_ports(2 * len(names), host)
    ws_ports, pubsub_ports = ports[: len(names)], ports[len(names) :]
    direct = {n: (host, p) for n, p in zip(names, pubsub_ports, strict=True)}
    overrides = peer_address or {}
    return [
        NodeSpec(
            name=name,
            host=host,
            port=ws_port,
            pubsub_port=pubsub_port,
            peers={
                peer: overrides.get((name, peer), direct[peer]) for peer in names if peer != name
            },
            store=store,
            bugs=tuple(bugs),
            extra_args=tuple(extra_args),
        )
        for name, ws_port, pubsub_port in zip(names, ws_ports, pubsub_ports, strict=True)
    ]
