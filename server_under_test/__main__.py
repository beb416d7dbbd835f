"""`python -m server_under_test --node n1 --host 127.0.0.1 --port 4001 [--pubsub-port 5001
--peer n2=127.0.0.1:5002 ...] [--store sqlite:///path/db.sqlite] [--bug NAME]`

or, with Redis PubSub instead of the mesh: `... --pubsub redis://127.0.0.1:6379`.

Exit codes: 0 after a graceful stop (SIGTERM/SIGINT), 2 for a bad command line, 3 when the node
cannot start (port busy, store unusable). Logs go to stderr, one line per event.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

import trio

from ._bugs import CATALOGUE, MESH_ONLY, REDIS_ONLY, Bugs
from ._chat import DEFAULT_TOKEN
from ._errors import ConfigError, ServerError
from ._node import Node, NodeConfig
from ._redis import parse_redis_url


def _peer(text: str) -> tuple[str, tuple[str, int]]:
    name, sep, address = text.partition("=")
    host, colon, port = address.rpartition(":")
    if not sep or not name or not colon or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=HOST:PORT, got {text!r}")
    return name, (host, int(port))


def parse_args(argv: list[str]) -> NodeConfig:
    parser = argparse.ArgumentParser(
        prog="python -m server_under_test",
        description="A node of the reference Phoenix Channels cluster.",
        epilog="bugs: " + "; ".join(f"{k}: {v}" for k, v in CATALOGUE.items()),
    )
    parser.add_argument("--node", required=True, help="this node's name, e.g. n1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4001, help="websocket + HTTP port (0: any)")
    parser.add_argument("--pubsub-port", type=int, help="port for inbound PubSub links")
    parser.add_argument(
        "--peer",
        type=_peer,
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help="a peer's PubSub address (repeat per peer)",
    )
    parser.add_argument(
        "--pubsub",
        default="mesh",
        metavar="mesh|redis://HOST:PORT",
        help="how broadcasts reach the other nodes (default: mesh)",
    )
    parser.add_argument("--store", default="sqlite:///:memory:", help="sqlite:///path/db.sqlite")
    parser.add_argument(
        "--bug",
        action="append",
        default=[],
        choices=sorted(CATALOGUE),
        help="switch on a deliberate defect",
    )
    parser.add_argument(
        "--app",
        choices=["rooms", "chat"],
        default="rooms",
        help="rooms: the demo contract (room:*, new_msg); chat: the second one (see _chat.py)",
    )
    parser.add_argument("--token", help="with --app chat: the socket token (default: a demo one)")
    parser.add_argument("--secret", help="verify signed socket tokens (`token` param) with it")
    parser.add_argument(
        "--cluster-secret", help="the mesh's shared secret (peers prove it in their hello)"
    )
    parser.add_argument(
        "--origin",
        action="append",
        default=[],
        help="a host whose pages may open sockets (besides this one); repeatable",
    )
    parser.add_argument(
        "--no-check-origin", action="store_true", help="accept sockets from any page"
    )
    parser.add_argument("--idle-timeout", type=float, default=60.0, help="seconds")
    parser.add_argument("--max-frame-size", type=int, default=1_000_000, help="bytes")
    parser.add_argument(
        "--trace", metavar="PATH", help="write every PubSub send and receive to PATH (JSON lines)"
    )
    parser.add_argument(
        "--link-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="dial the PubSub links only this long after start (a cluster that forms late)",
    )
    parser.add_argument(
        "--link-tick",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="a mesh link ticks this often and is down after 4 silent ticks (net_ticktime)",
    )
    parser.add_argument(
        "--no-stats", action="store_true", help="no GET /stats (like a real Phoenix endpoint)"
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    peers = dict(args.peer)
    if args.node in peers:
        parser.error(f"--peer names this node itself ({args.node})")
    redis_bugs = sorted(set(args.bug) & REDIS_ONLY)
    if args.pubsub == "mesh" and redis_bugs:
        parser.error(f"--bug {', '.join(redis_bugs)} is a Redis defect; it needs --pubsub redis")
    if args.pubsub != "mesh":
        try:
            parse_redis_url(args.pubsub)
        except ConfigError as exc:
            parser.error(str(exc))
        if peers or args.pubsub_port is not None:
            parser.error("--peer and --pubsub-port belong to the mesh; not with --pubsub redis")
        mesh_bugs = sorted(set(args.bug) & MESH_ONLY)
        if mesh_bugs:
            parser.error(f"--bug {', '.join(mesh_bugs)} is a mesh defect; not with --pubsub redis")
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s {args.node} %(levelname)s %(name)s: %(message)s",
    )
    return NodeConfig(
        node=args.node,
        host=args.host,
        port=args.port,
        pubsub_port=args.pubsub_port,
        peers=peers,
        pubsub=args.pubsub,
        store=args.store,
        bugs=Bugs.parse(args.bug),
        idle_timeout=args.idle_timeout,
        max_frame_size=args.max_frame_size,
        app=args.app,
        token=args.token or os.environ.get("CHAT_TOKEN") or DEFAULT_TOKEN,
        secret=args.secret or os.environ.get("SOCKET_SECRET") or None,
        cluster_secret=args.cluster_secret or os.environ.get("CLUSTER_SECRET") or None,
        origins=tuple(args.origin),
        check_origin=not args.no_check_origin,
        trace=args.trace,
        link_delay=max(0.0, min(args.link_delay, 3600.0)),
        link_tick=max(0.05, min(args.link_tick, 600.0)),
        stats=not args.no_stats,
    )


async def _main(config: NodeConfig) -> None:
    node = Node(config)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(node.serve)
        print(f"ready node={config.node} port={port}", flush=True)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                await node.drain()
                break


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_args(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        trio.run(_main, config)
    except Exception as exc:
        leaf = _leaf(exc)
        if isinstance(leaf, ServerError):
            print(f"error: {leaf}", file=sys.stderr)
            return 3
        if isinstance(leaf, OSError):
            print(f"error: node {config.node} cannot start: {leaf}", file=sys.stderr)
            return 3
        raise
    return 0


def _leaf(exc: BaseException) -> BaseException:
    """The one error inside trio's nested ExceptionGroups, if there is exactly one."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


if __name__ == "__main__":
    sys.exit(main())
