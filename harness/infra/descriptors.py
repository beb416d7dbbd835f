"""File descriptors: the limit the run's processes get, what its Toxiproxy will need, and whether
a process the harness started ran out.

A toxiproxy-server holds two descriptors for every connection it carries (the accepted one and
its own to the upstream), one per listener and a few for itself. On the box this was measured on
(2026-12-04) the soft and hard limits were both 20,000, and one server for a 10,001-client run
logged 405 `too many open files`: 15 clients never joined and the run blamed the load
generator. So before a run `place` sizes each server for the worst moment of the scenario and
spreads the proxies over one server per node when one server would not fit; when even that does
not fit it refuses with the arithmetic (exit 3), and after a run `exhausted` finds the errors in
the logs of the processes the harness started, so a verdict names the cause.

With `on_reconnect: next_node` or `random_node` a client may reconnect to any node's proxy over a
run (a killed node's clients land on another; a second kill moves them again), so each server is
sized for every client; with `same_node` (phoenix.js's, the default) for its node's own.
"""

from __future__ import annotations

import re
import resource
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToxiproxyError

PER_CONNECTION = 2  # the accepted connection and the proxy's own to the upstream
SPARE = 200  # the API and metrics connections, the log, the Go runtime, a margin
LINK_CONNECTIONS = 2  # a node link at its worst: the old connection and its replacement
ONE = "all"  # the key of the single server when one is enough
# What a process writes when it runs out: Go and Python ("too many open files", EMFILE's text),
# Erlang and libuv ("emfile"), Redis ("Too many open files" too)
EXHAUSTED = re.compile(rb"too many open files|\bemfile\b", re.IGNORECASE)
SCAN_LIMIT = 64 * 1024 * 1024  # bytes of a log read for the errors (its tail)


def raise_limit() -> int:
    """Raise this process's soft descriptor limit to its hard limit (every process it starts
    inherits it); the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = _nr_open()
    if soft == resource.RLIM_INFINITY or soft >= hard:
        return hard if soft == resource.RLIM_INFINITY else soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return soft
    return hard


def _nr_open() -> int:
    try:
        return int(Path("/proc/sys/fs/nr_open").read_text())
    except (OSError, ValueError):
        return 1 << 20


@dataclass(frozen=True, slots=True)
class Load:
    """What one toxiproxy-server carries at the worst moment of a run."""

    server: str  # the node whose proxies it holds, or ONE
    clients: int  # client connections
    links: int  # node-link connections (to peers, to Redis)
    listeners: int  # proxies

    @property
    def descriptors(self) -> int:
        return PER_CONNECTION * (self.clients + self.links) + self.listeners + SPARE


@dataclass(frozen=True, slots=True)
class Placement:
    """Which server holds each link's proxy, and what each server will carry."""

    servers: tuple[Load, ...]
    home: Mapping[str, str]  # link name -> server
    limit: int

    def explain(self) -> str:
        """One line per server: its connections and descriptors against the limit."""
        return "; ".join(
            f"{load.server}: {load.clients:,} client and {load.links} link connections,"
            f" ~{load.descriptors:,} descriptors of {self.limit:,}"
            for load in self.servers
        )


def clients_per_node(first: Sequence[int], nodes: Sequence[str], failover: bool) -> dict[str, int]:
    """The client connections each node's proxy may carry at once: its own clients (`first`:
    each client's first node, by index), or every client when clients fail over; under ONE,
    every client."""
    counts = dict.fromkeys(nodes, len(first) if failover else 0)
    if not failover:
        for index in first:
            counts[nodes[index]] += 1
    return {**counts, ONE: len(first)}


def place(
    links: Sequence[tuple[str, str, str]],
    clients: Mapping[str, int],
    limit: int,
    *,
    spread: bool = True,
) -> Placement:
    """Put every proxied link (name, kind: "clients" or "node", the node it belongs to) on a
    server: one for all when it fits in `limit` (or when the proxies may not be `spread`), else
    one per node; `ToxiproxyError` with the arithmetic when a node's share does not fit either.
    `clients`: the client connections each node's proxy may carry at once, and under ONE all
    of them (a client has one connection at a time, wherever it is)."""

    def load(server: str, mine: Sequence[tuple[str, str, str]]) -> Load:
        return Load(
            server,
            clients[ONE]
            if server == ONE
            else sum(clients.get(node, 0) for _, kind, node in mine if kind == "clients"),
            sum(LINK_CONNECTIONS for _, kind, _ in mine if kind != "clients"),
            len(mine),
        )

    one = load(ONE, links)
    if one.descriptors <= limit or not spread:
        return Placement((one,), {name: ONE for name, _, _ in links}, limit)
    nodes = list(dict.fromkeys(node for _, _, node in links))
    loads = tuple(load(n, [link for link in links if link[2] == n]) for n in nodes)
    worst = max(loads, key=lambda s: s.descriptors)
    if worst.descriptors > limit:
        raise ToxiproxyError(_refusal(one, worst, limit, len(nodes)))
    return Placement(loads, {name: node for name, _, node in links}, limit)


def _refusal(one: Load, worst: Load, limit: int, nodes: int) -> str:
    fits = max(0, (limit - SPARE - worst.listeners) // PER_CONNECTION - worst.links)
    more = " add nodes," if worst.clients < one.clients else ""  # each node takes a share
    return (
        f"{one.clients:,} client connections need ~{one.descriptors:,} descriptors in one"
        f" toxiproxy-server (2 per connection, {one.listeners} proxies, {SPARE} spare), and even"
        f" spread over {nodes} servers (one per node) the proxies of {worst.server} need"
        f" ~{worst.descriptors:,} for {worst.clients:,} client connections; the limit is"
        f" {limit:,} descriptors per process (`ulimit -Hn`): a server takes at most ~{fits:,}"
        " clients here. Lower clients.count, use clients.on_reconnect: same_node (with next_node"
        f" or random_node any client may land on any node's proxy),{more} or raise the hard"
        " limit (LimitNOFILE= in a systemd unit, `ulimit -Hn` as root)"
    )


def check_swarm(clients: int, workers: int, limit: int, host: str | None = None) -> None:
    """Refuse a swarm whose worker processes would run out of descriptors (one per client's
    socket; the clients are dealt evenly over the workers), here or on worker host `host`
    (`limit` then its hard limit: a worker raises its soft limit to it)."""
    per_worker = -(-clients // workers)
    if per_worker + SPARE > limit:
        needed = -(-clients // max(1, limit - SPARE))
        where, knob = (f"on {host}", "the hosts' workers") if host else ("here", "clients.workers")
        raise ToxiproxyError(
            f"{clients:,} clients over {workers} swarm worker(s) are ~{per_worker:,} sockets per"
            f" worker process; the limit {where} is {limit:,} descriptors per process"
            f" (`ulimit -Hn`): raise {knob} to {needed} or more in all"
        )


def exhausted(log: Path) -> int:
    """How many times the process that wrote `log` said it ran out of descriptors (its last
    `SCAN_LIMIT` bytes)."""
    try:
        with log.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - SCAN_LIMIT))
            count, tail = 0, b""
            while chunk := handle.read(1 << 20):
                text = tail + chunk
                end = text.rfind(b"\n") + 1  # whole lines now; a partial line waits for the rest
                if end == 0 and len(text) > 4096:  # one very long line: keep what a match needs
                    end = len(text) - 64
                count += len(EXHAUSTED.findall(text, 0, end))
                tail = text[end:]
            count += len(EXHAUSTED.findall(tail))
            return count
    except OSError:
        return 0
