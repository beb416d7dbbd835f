"""`harness run` with `cluster.network: isolated`: the command re-entered in the run's hub.

The hub is a network namespace of the run's own (`harness.infra.netns`); the harness, Toxiproxy,
Redis and the swarm live in it, so every connection to a node's private address starts inside
the run's namespaces and the machine's own namespace never gets a route to them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence

from ..exits import Exit
from ..infra import netns
from ._say import say


def in_hub(argv: Sequence[str], *, toxiproxy: str | None) -> int:
    """`harness run` again, inside a new network namespace that becomes the run's hub
    (`harness.infra.netns`): the harness, Toxiproxy, Redis and the swarm live there, so every
    connection to a node's private address starts inside the run's own namespaces. Ctrl-C
    reaches both; this one waits for the other's exit code."""
    if toxiproxy:
        say(
            "error: --toxiproxy: under cluster.network: isolated the run starts its own"
            " toxiproxy-server inside its namespace (a server outside cannot reach the nodes)",
            file=sys.stderr,
        )
        return Exit.USAGE
    refused = netns.refused()
    if refused is not None:
        say(f"error: cluster.network: isolated cannot run here: {refused}", file=sys.stderr)
        return Exit.INFRA
    argv, env = netns.hub_command([sys.executable, "-m", "harness", *argv])
    sys.stdout.flush()
    child = subprocess.Popen(argv, env=env)  # before ignoring SIGINT: it would inherit that
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run inside handles Ctrl-C
    try:
        return child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
