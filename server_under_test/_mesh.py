"""The mesh adapter: local subscriptions plus a fire-and-forget link to every peer.

Semantics copied from Phoenix.PubSub's PG2 adapter (`research/phoenix-protocol.md` §5):

* Subscriptions are local. A broadcast is sent **once over each peer link** (no per-subscriber
  fan-out across the link), then dispatched to local subscribers; the receiving node dispatches
  it to its own subscribers.
* Delivery between nodes is at most once: no acks, no retries, no replay. Whatever cannot be sent
  because a link is down is dropped and counted; what was queued on a link that breaks is lost.
* Each node dials every peer at the address `--peer` gives (so a Toxiproxy proxy can sit in the
  middle); the link `n1->n2` carries n1's broadcasts to n2, so cutting it is a one-way partition.
  Links reconnect with a capped exponential backoff, cut short when the peer dials in (it is back).
* A link is up once the peer has answered the hello (`{"welcome": node}`), not when the TCP
  connect returns (a proxy accepts for a peer that is not there). Both ends then send a tick
  every `--link-tick` seconds (like Erlang's `net_ticktime`), and an end that hears nothing for
  `TICKS_MISSED` ticks declares the link down and closes it (the dialer redials): a netsplit by
  packet rules drops packets without a reset, and TCP alone would wait minutes to notice. What
  was queued on that link is lost, as at-most-once allows.

Wire format on a link: newline-delimited JSON, a `{"hello": node, "boot": id}` line first (answered
by `{"welcome": node}`, then `{"tick": 1}` lines both ways) and the sender's topics (`{"interest":
[...]}`), then one `{"from", "topic", "event", "payload"}` object per broadcast, encoded once for
all peers, and `{"subscribe"|"unsubscribe": topic}` when the sender's local topics change. A correct
node only reports what it learns of its peers' interest in `/stats`; it always sends every broadcast
to every peer. (The `forget_remote_interest_after_restart` defect uses interest to filter, and gets
it wrong.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import trio

from harness.phoenix import dumps

from ._auth import mesh_hello_ok, mesh_proof
from ._bugs import Bugs
from ._outbox import Outbox, burst
from ._pubsub import (
    Backoff,
    Delivery,
    PubSub,
    Subscriber,
    dial,
    until_first_ends,
)

log = logging.getLogger(__name__)

LINK_OUTBOX_LIMIT = 16_000_000
REPLAY_DEPTH = 50  # only with the resend_after_reconnect bug
MAX_LINE = 4_000_000
TICK = 1.0  # seconds between ticks on an idle link (`--link-tick`)
TICKS_MISSED = 4  # a link that heard nothing for this many ticks is down
TICK_LINE = b'{"tick":1}\n'


async def _abort(stream: trio.SocketStream) -> None:
    """Close a link and drop what its kernel buffers still hold (SO_LINGER 0: a reset). A link
    that broke loses what was queued on it (at most once); a graceful close would deliver it
    later, after what a newer link already delivered: out of order."""
    with contextlib.suppress(OSError):
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()


@dataclass
class PeerLink:
    """This node's outgoing link to one peer."""

    peer: str
    host: str
    port: int
    state: str = "connecting"
    sent: int = 0
    dropped: int = 0
    connects: int = 0  # links the peer answered
    attempts: int = 0  # connections made (a proxy may accept for a dead peer)
    outbox: Outbox | None = None
    backoff: Backoff = field(default_factory=Backoff)
    recent: deque[bytes] = field(default_factory=lambda: deque(maxlen=REPLAY_DEPTH))

    def snapshot(self) -> dict[str, Any]:
        return {
            "address": f"{self.host}:{self.port}",
            "state": self.state,
            "sent": self.sent,
            "dropped": self.dropped,
            "connects": self.connects,
            "attempts": self.attempts,
        }


class MeshPubSub(PubSub):
    """Local registry plus a fire-and-forget link to every peer."""

    adapter = "mesh"

    def __init__(
        self,
        node: str,
        *,
        peers: dict[str, tuple[str, int]],
        listen: tuple[str, int] | None,
        bugs: Bugs,
        dial: bool = True,
        secret: str | None = None,
    ) -> None:
        super().__init__(node, bugs=bugs)
        self.tick = TICK  # `--link-tick`
        self.dial = dial
        self.secret = secret  # the cluster's shared secret (`_auth`): a hello proves it
        self.boot = uuid.uuid4().hex[:12]
        self.interest: dict[str, set[str]] = {}  # peer -> topics it has subscribers for
        self.boots: dict[str, str] = {}  # peer -> the boot id it last said hello with
        self.forgotten: set[str] = set()  # only with forget_remote_interest_after_restart
        self.listen = listen
        self.links = {name: PeerLink(name, host, port) for name, (host, port) in peers.items()}
        self.inbound: dict[str, dict[str, Any]] = {}
        self.current: dict[str, trio.CancelScope] = {}  # peer -> its inbound link in use
        self.received = 0

    def _topics_changed(self, message: dict[str, Any]) -> None:
        wire = (dumps(message) + "\n").encode()
        for link in self.links.values():
            if link.state == "up" and link.outbox is not None:
                link.outbox.put(wire)

    # -- publishing --------------------------------------------------------------------------

    def broadcast(
        self, topic: str, event: str, payload: Any, *, exclude: Subscriber | None = None
    ) -> None:
        """Send to every peer once, then to local subscribers (Phoenix's order)."""
        line = dumps({"from": self.node, "topic": topic, "event": event, "payload": payload})
        wire = (line + "\n").encode()
        for link in self.links.values():
            self._send(link, wire, topic, payload)
        self.local_broadcast(topic, event, payload, exclude=exclude)

    def _send(self, link: PeerLink, wire: bytes, topic: str, payload: Any) -> None:
        if self.bugs.on("forget_remote_interest_after_restart") and topic not in self.interest.get(
            link.peer, set()
        ):
            return  # "nobody there is subscribed": skipped, not even counted as dropped
        if link.state == "up" and link.outbox is not None:
            link.outbox.put(wire)
            link.sent += 1
            self.trace("send", link.peer, topic, payload)
            if self.bugs.on("resend_after_reconnect"):
                link.recent.append(wire)
            return
        link.dropped += 1
        self.trace("drop", link.peer, topic, payload)

    # -- the mesh ----------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen for peers, dial every peer, run until cancelled."""
        async with trio.open_nursery() as nursery:
            if self.listen is not None:
                host, port = self.listen
                listeners = await trio.open_tcp_listeners(port, host=host)
                nursery.start_soon(trio.serve_listeners, self._serve_inbound, listeners)
            if self.dial:
                for link in self.links.values():
                    nursery.start_soon(self._dial, link)
            else:
                for link in self.links.values():
                    link.state = "down"
            task_status.started()

    async def _dial(self, link: PeerLink) -> None:
        def refused() -> None:
            link.state = "down"

        await trio.sleep(self.link_delay)
        while True:
            stream = await dial(link.host, link.port, refused, link.backoff)
            link.attempts += 1
            try:
                welcomed = await self._run_link(link, stream)
            except Exception:  # a link problem must never take the node down
                log.exception("link %s->%s failed", self.node, link.peer)
                welcomed = False
            if welcomed:  # only an answered hello resets the backoff, never a bare connect
                link.backoff.reset()
                continue
            await link.backoff.wait()  # a proxy that accepts for a dead peer: back off for real

    async def _run_link(self, link: PeerLink, stream: trio.SocketStream) -> bool:
        """Say hello; once answered, carry the link until it ends. Whether it was answered."""
        outbox = Outbox(LINK_OUTBOX_LIMIT, stream.socket.fileno())
        hello: dict[str, Any] = {"hello": self.node, "boot": self.boot}
        if self.secret is not None:
            hello["proof"] = mesh_proof(self.secret, self.node, self.boot)
        welcomed = False
        try:
            await stream.send_all((dumps(hello) + "\n").encode())
            welcomed = await self._welcomed(stream)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        if not welcomed:  # a proxy that accepted for a peer not there, or a peer that refused
            link.state = "down"
            with trio.CancelScope(shield=True):
                await _abort(stream)
            return False
        outbox.put((dumps({"interest": sorted(self._local)}) + "\n").encode())
        for wire in link.recent:  # only ever filled with the resend_after_reconnect bug
            outbox.put(wire)
            link.sent += 1
            if self.trace.on:
                resent = json.loads(wire)
                self.trace("send", link.peer, resent.get("topic", ""), resent.get("payload"))
        link.outbox, link.state = outbox, "up"
        link.connects += 1
        log.info("link %s->%s up", self.node, link.peer)

        async def tick() -> None:
            while True:
                await trio.sleep(self.tick)
                outbox.put(TICK_LINE)

        try:
            await until_first_ends(
                lambda: outbox.drain_into(stream), lambda: self._hear(stream, link.peer), tick
            )
        finally:
            link.outbox, link.state = None, "down"
            log.info("link %s->%s down", self.node, link.peer)
            with trio.CancelScope(shield=True):
                await _abort(stream)
        return True

    async def _welcomed(self, stream: trio.SocketStream) -> bool:
        """Whether the peer answers the hello with a welcome within the tick timeout."""
        buffer = b""
        with trio.move_on_after(self.tick * TICKS_MISSED):
            while b"\n" not in buffer and len(buffer) < 4096:
                data = await stream.receive_some(4096)
                if not data:
                    return False
                buffer += data
            try:
                answer = json.loads(buffer.split(b"\n", 1)[0])
            except ValueError:
                return False
            return isinstance(answer, dict) and "welcome" in answer
        return False

    async def _hear(self, stream: trio.SocketStream, peer: str) -> None:
        """Read the peer's ticks until it closes or is silent for `TICKS_MISSED` ticks."""
        while True:
            with trio.move_on_after(self.tick * TICKS_MISSED):
                if not await stream.receive_some(65536):
                    return
                continue
            log.warning(
                "link %s->%s heard nothing for %g s: down",
                self.node,
                peer,
                self.tick * TICKS_MISSED,
            )
            return

    async def _serve_inbound(self, stream: trio.SocketStream) -> None:
        buffer = bytearray()
        peer = "?"
        silent = self.tick * TICKS_MISSED
        nursery: trio.Nursery | None = None
        try:
            async with trio.open_nursery() as nursery:
                while True:
                    data = b""
                    with trio.move_on_after(silent):
                        try:
                            data = await stream.receive_some(65536)
                        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                            data = b""
                    if not data:  # closed, or silent for TICKS_MISSED ticks: down
                        break
                    buffer += data
                    with burst(buffer.count(b"\n") > 1):
                        while (end := buffer.find(b"\n")) >= 0:
                            line = bytes(buffer[:end])
                            del buffer[: end + 1]
                            if peer == "?":  # nothing is believed before a hello that checks out
                                peer = self._hello(line)
                                if peer == "?":
                                    return
                                # a new link from a peer replaces its old one, whose unread
                                # lines are older than the new link's: lost, never reordered
                                older = self.current.get(peer)
                                if older is not None:
                                    older.cancel()
                                self.current[peer] = nursery.cancel_scope
                                nursery.start_soon(self._answer, stream)
                                continue
                            peer = self._receive_line(line, peer)
                    if len(buffer) > MAX_LINE:
                        log.warning("peer %s sent an over-long line; dropping the link", peer)
                        break
                nursery.cancel_scope.cancel()
        finally:
            if nursery is not None and self.current.get(peer) is nursery.cancel_scope:
                del self.current[peer]
                if peer in self.inbound:
                    self.inbound[peer]["state"] = "down"
            with trio.CancelScope(shield=True):
                await _abort(stream)

    async def _answer(self, stream: trio.SocketStream) -> None:
        """Welcome a peer whose hello checked out, then tick to it until the link ends."""
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await stream.send_all((dumps({"welcome": self.node}) + "\n").encode())
            while True:
                await trio.sleep(self.tick)
                await stream.send_all(TICK_LINE)

    def _hello(self, line: bytes) -> str:
        """The peer's name if its first line is a hello from a known peer with a valid proof
        (with a cluster secret), else "?" (and the link is dropped, logged)."""
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict) or "hello" not in message:
            log.warning("refusing a mesh link that did not start with a hello")
            return "?"
        name, boot = str(message["hello"]), str(message.get("boot", ""))
        if not mesh_hello_ok(self.secret, self.links, name, boot, str(message.get("proof", ""))):
            log.warning("refusing a mesh link from %r: unknown peer or wrong proof", name[:40])
            return "?"
        return self._receive_line(line, name)

    def _receive_line(self, line: bytes, peer: str) -> str:
        try:
            message = json.loads(line)
        except ValueError:
            log.warning("peer %s sent a line that is not JSON", peer)
            return peer
        if not isinstance(message, dict):
            return peer
        if "hello" in message:
            peer = str(message["hello"])
            boot = str(message.get("boot", ""))
            self.inbound[peer] = {"state": "up", "since": time.time(), "received": 0}
            if (
                self.bugs.on("forget_remote_interest_after_restart")
                and self.boots.get(peer, boot) != boot
            ):
                self.forgotten.add(peer)  # "a stranger with an old name": its interest is dropped
                self.interest[peer] = set()
            self.boots[peer] = boot
            link = self.links.get(peer)
            if link is not None and link.state != "up":
                link.backoff.wake()  # the peer dialed us, so it is back: redial it now
            return peer
        if "interest" in message or "subscribe" in message or "unsubscribe" in message:
            if peer not in self.forgotten:
                topics = self.interest.setdefault(peer, set())
                if "interest" in message:
                    topics.clear()
                    topics.update(str(t) for t in message["interest"])
                elif "subscribe" in message:
                    topics.add(str(message["subscribe"]))
                else:
                    topics.discard(str(message["unsubscribe"]))
            return peer
        topic, event = message.get("topic"), message.get("event")
        if isinstance(topic, str) and isinstance(event, str):
            self.received += 1
            if peer in self.inbound:
                self.inbound[peer]["received"] += 1
            origin = str(message.get("from", peer))
            self.trace("recv", peer, topic, message.get("payload"), origin)
            self._dispatch(Delivery(topic, event, message.get("payload"), origin))
        return peer

    def snapshot(self) -> dict[str, Any]:
        return {
            "adapter": self.adapter,
            "links": {name: link.snapshot() for name, link in sorted(self.links.items())},
            "inbound": dict(sorted(self.inbound.items())),
            "received": self.received,
            "peer_interest": {p: sorted(t) for p, t in sorted(self.interest.items())},
        }
