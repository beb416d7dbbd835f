"""`harness run` with `cluster.network: isolated`: the command re-entered in the run's hub.

The hub is a network namespace of the run's own (`harness.infra.netns`); the harness, Toxiproxy,
Redis and the swarm live in it, so every connection to a node's private address starts inside
the run's namespaces and the machine's own namespace never gets a route to them.
"""

from __future__ import annotations

import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import trio
import trio.lowlevel

from ..exits import Exit
from ..infra import netns, relay
from ._say import say


def in_hub(argv: Sequence[str], *, toxiproxy: str | None, forwards: Sequence[str] = ()) -> int:
    """`harness run` again, inside a new network namespace that becomes the run's hub
    (`harness.infra.netns`): the harness, Toxiproxy, Redis and the swarm live there, so every
    connection to a node's private address starts inside the run's own namespaces. Ctrl-C
    reaches both; this one waits for the other's exit code, serving the host side of the
    `forwards` (`cluster.forward`, `harness.infra.relay`) meanwhile."""
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
    with tempfile.TemporaryDirectory(prefix="chaos-forward-") as directory:
        if forwards:
            env[relay.FORWARDS_ENV] = ",".join(
                f"{service}={Path(directory) / relay.socket_name(service)}" for service in forwards
            )
        return trio.run(_wait, argv, env, forwards, Path(directory))


async def _wait(
    argv: list[str], env: dict[str, str], forwards: Sequence[str], directory: Path
) -> int:
    """Serve the forwards' host side while the run inside goes; its exit code."""
    async with trio.open_nursery() as nursery:
        if forwards:
            await nursery.start(relay.serve_service, forwards, directory)  # bound first
        child = await trio.lowlevel.open_process(argv, env=env)
        # after the start: a child would inherit an ignored SIGINT; the run inside handles it
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            code = await child.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
        nursery.cancel_scope.cancel()
    return code
