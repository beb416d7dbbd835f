"""One node of the reference cluster: listeners, HTTP routes, sockets, graceful drain.

`serve_node` runs until cancelled or until `Node.drain()` is called (the `__main__` module calls
it on SIGTERM/SIGINT). Draining closes every socket with 1012 ("service restart"), as Phoenix's
socket drainer does, so clients of every phoenix.js version reconnect (to this node once it is
back, or to another one), then stops.

HTTP routes on the websocket port: `GET /health` (200 while serving, 503 while draining) and
`GET /stats` (sockets, channels per topic, PubSub links and their state; `--no-stats` turns it
off, like a real Phoenix endpoint). `--link-delay S` dials the PubSub links only S seconds after
the node starts (at every start): a cluster that forms after its nodes answer health, as one
clustered by libcluster does.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from harness.phoenix import RemoteProtocolError, codec_for_vsn

from . import _chat
from ._app import route
from ._auth import origin_allowed, verify
from ._bugs import Bugs
from ._edge import CLOSE_SERVICE_RESTART, EdgeConfig, HttpResponse, WebSocket, serve_connection
from ._mesh import MeshPubSub
from ._pubsub import PubSub
from ._redis import RedisPubSub
from ._socket import NodeServices, PhoenixSocket
from ._store import Store
from ._trace import Tracer

log = logging.getLogger(__name__)

DRAIN_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class NodeConfig:
    node: str
    host: str = "127.0.0.1"
    port: int = 4001
    pubsub_port: int | None = None
    peers: dict[str, tuple[str, int]] = field(default_factory=dict)
    pubsub: str = "mesh"  # or redis://HOST:PORT
    store: str = "sqlite:///:memory:"
    bugs: Bugs = field(default_factory=Bugs)
    idle_timeout: float = 60.0
    max_frame_size: int = 1_000_000
    app: str = "rooms"  # or "chat": the second demo contract (`_chat`)
    token: str = _chat.DEFAULT_TOKEN  # with app chat: the socket token clients must present
    secret: str | None = None  # signed socket tokens (`_auth`): the only source of a user_id
    cluster_secret: str | None = None  # the mesh's shared secret
    origins: tuple[str, ...] = ()  # hosts allowed besides the request's own (check_origin)
    check_origin: bool = True
    outbox_limit: int = 16_000_000  # bytes queued for one peer before it is dropped
    trace: str | None = None  # a file for every PubSub send and receive (`_trace`)
    link_delay: float = 0.0  # PubSub links dialled this long after start (a slow-forming cluster)
    link_tick: float = 1.0  # seconds between a mesh link's ticks (a link silent 4 ticks is down)
    stats: bool = True  # False: no `/stats` (like a real Phoenix endpoint)


class Node:
    """A running node; `serve` it, then `drain` it or cancel it."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.store = Store(config.store)
        self.pid_file = self.store.sibling(f"{config.node}.pid")
        dial = True
        if config.bugs.on("no_link_restore_after_kill") and self.pid_file is not None:
            # "a previous instance is still running": a crash leaves the file behind
            dial = not self.pid_file.exists()
        self.pubsub: PubSub
        if config.pubsub == "mesh":
            listen = (config.host, config.pubsub_port) if config.pubsub_port is not None else None
            self.pubsub = MeshPubSub(
                config.node,
                peers=config.peers,
                listen=listen,
                bugs=config.bugs,
                dial=dial,
                secret=config.cluster_secret,
            )
        else:
            self.pubsub = RedisPubSub(config.node, url=config.pubsub, bugs=config.bugs)
        if config.trace:
            self.pubsub.trace = Tracer(config.node, config.trace)
        self.pubsub.link_delay = config.link_delay
        if isinstance(self.pubsub, MeshPubSub):
            self.pubsub.tick = config.link_tick
        self.services = NodeServices(
            node=config.node,
            store=self.store,
            pubsub=self.pubsub,
            bugs=config.bugs,
            idle_timeout=config.idle_timeout,
            route=_chat.route if config.app == "chat" else route,
            spawn=self._spawn,
        )
        self._background: trio.Nursery | None = None
        self.edge = EdgeConfig(
            socket_path=_chat.SOCKET_PATH if config.app == "chat" else "/socket/websocket",
            max_message_size=config.max_frame_size,
            outbox_limit=config.outbox_limit,
        )
        self.sockets: set[PhoenixSocket] = set()
        self.started_at = time.time()
        self.draining = False
        self._drained = trio.Event()
        self._stop = trio.Event()

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._background = nursery
                if self.config.bugs.on("no_link_restore_after_kill") and self.pid_file is not None:
                    self.pid_file.write_text(str(os.getpid()))
                await nursery.start(self.pubsub.serve)
                listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host)
                port = listeners[0].socket.getsockname()[1]
                nursery.start_soon(trio.serve_listeners, self._serve_connection, listeners)
                log.info("node %s serving on %s:%s", self.config.node, self.config.host, port)
                task_status.started(port)
                await self._stop.wait()
                nursery.cancel_scope.cancel()
        finally:
            self.store.close()
            if self.pid_file is not None and self.config.bugs.on("no_link_restore_after_kill"):
                self.pid_file.unlink(missing_ok=True)  # a clean stop removes it; a kill does not

    def _spawn(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run `job` on the node, outliving the socket that asked for it."""
        assert self._background is not None
        self._background.start_soon(job)

    async def drain(self) -> None:
        """Close every socket with 1012, wait for them to go (bounded), then stop serving."""
        self.draining = True
        for sock in list(self.sockets):
            sock.ws.close(CLOSE_SERVICE_RESTART, "restart")
        with trio.move_on_after(DRAIN_TIMEOUT):
            while self.sockets:
                await self._drained.wait()
                self._drained = trio.Event()
        self._stop.set()

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        try:
            await serve_connection(stream, self.edge, self._http, self._check_upgrade, self._socket)
        except Exception:
            log.exception("connection handler failed; the node carries on")

    def _check_upgrade(
        self, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> HttpResponse | None:
        if self.draining:
            return HttpResponse(503, {"error": "draining"})
        try:
            codec_for_vsn(query.get("vsn"))
        except RemoteProtocolError as exc:
            log.warning("refusing a socket: %s", exc)
            return HttpResponse(403, {"error": str(exc)})
        if query.get("reject_connect"):
            return HttpResponse(403, {"error": "connect refused"})
        config = self.config
        origin = headers.get("origin")
        if config.check_origin and not origin_allowed(origin, headers.get("host"), config.origins):
            log.warning("refusing a socket from origin %r (check_origin)", origin)
            return HttpResponse(403, {"error": "origin not allowed"})
        if "token" in query and config.secret is not None and config.app != "chat":
            try:
                verify(config.secret, query["token"])
            except ValueError as exc:
                log.warning("refusing a socket: %s", exc)
                return HttpResponse(403, {"error": str(exc)})
        if self.config.app == "chat":
            return _chat.refuse_socket(query, self.config.token)
        return None

    async def _socket(self, ws: WebSocket) -> None:
        codec = codec_for_vsn(ws.query.get("vsn"), max_size=self.config.max_frame_size)
        assigns: dict[str, str] = {}  # identity only from a verified token (`_auth`)
        token, secret = ws.query.get("token"), self.config.secret
        if token is not None and secret is not None and self.config.app != "chat":
            assigns["user_id"] = verify(secret, token)  # checked at the upgrade already
        sock = PhoenixSocket(self.services, ws, codec, assigns)
        self.sockets.add(sock)
        try:
            await sock.run()
        finally:
            self.sockets.discard(sock)
            self._drained.set()

    async def _http(self, method: str, path: str, query: dict[str, str]) -> HttpResponse | None:
        if method != "GET":
            return None
        if path == "/health":
            status = 503 if self.draining else 200
            return HttpResponse(
                status, {"status": "draining" if self.draining else "ok", "node": self.config.node}
            )
        if self.config.app == "chat":  # like a real Phoenix endpoint: no /stats
            return await _chat.messages(self.store, query) if path == "/api/messages" else None
        if path == "/stats" and self.config.stats:
            return HttpResponse(200, self.stats())
        return None

    def stats(self) -> dict[str, Any]:
        return {
            "node": self.config.node,
            "uptime": round(time.time() - self.started_at, 3),
            "sockets": len(self.sockets),
            "channels": self.pubsub.subscriber_counts(),
            "pubsub": self.pubsub.snapshot(),
            "bugs": sorted(self.config.bugs.names),
        }
