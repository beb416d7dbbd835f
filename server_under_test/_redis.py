"""The Redis PubSub adapter: every node publishes to, and subscribes to, one Redis channel.

Semantics copied from `phoenix_pubsub_redis` (`research/phoenix-protocol.md` §5):

* A broadcast is one `PUBLISH` of an envelope `{"from", "topic", "event", "payload"}` to the
  channel `phx:<name>`, encoded once, then dispatched to local subscribers. Every node
  subscribes to that channel and ignores its own envelopes (so node names must be unique).
* At most once, as Redis Pub/Sub itself: nothing is kept for a subscriber that is not connected,
  nothing is retried. A publish while the Redis connection is down is dropped and counted (the
  Elixir adapter logs and returns `:ok`: a silent loss reported as success, which is the point).
* Two connections per node, both to the `--pubsub redis://HOST:PORT` address (so a Toxiproxy
  proxy `n1->redis` can sit in the middle and cut both): one for PUBLISH, one in subscribe mode.
  Each reconnects with a capped exponential backoff. The link counts as `up` in `/stats` only
  while both are connected and the subscription is confirmed.

RESP framing lives in `_resp` (no I/O); this module is the I/O around it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import trio

from harness.phoenix import dumps

from ._bugs import Bugs
from ._errors import ConfigError
from ._outbox import Outbox, OutboxOverflow, burst
from ._pubsub import BACKOFF_START, Delivery, PubSub, Subscriber, dial, until_first_ends
from ._resp import RespError, RespProtocolError, RespReader, command

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "phx:"
OUTBOX_LIMIT = 16_000_000


def parse_redis_url(url: str) -> tuple[str, int]:
    """`redis://127.0.0.1:6379` -> ("127.0.0.1", 6379)."""
    parts = urlsplit(url)
    try:
        port = parts.port or 6379
    except ValueError:
        raise ConfigError(f"--pubsub {url!r}: the port is not a number") from None
    if parts.scheme != "redis" or not parts.hostname:
        raise ConfigError(f"--pubsub expects mesh or redis://HOST:PORT, got {url!r}")
    return parts.hostname, port


@dataclass
class RedisLink:
    """The state of one of the node's two Redis connections."""

    role: str  # "publish" | "subscribe"
    state: str = "connecting"
    connects: int = 0


class RedisPubSub(PubSub):
    """Local registry plus a Redis channel shared by every node of the cluster."""

    adapter = "redis"

    def __init__(self, node: str, *, url: str, bugs: Bugs, name: str = "reference") -> None:
        super().__init__(node, bugs=bugs)
        self.host, self.port = parse_redis_url(url)
        self.channel = f"{CHANNEL_PREFIX}{name}"
        self.publisher = RedisLink("publish")
        self.subscriber = RedisLink("subscribe")
        self._outbox: Outbox | None = None
        self.sent = self.dropped = self.received = self.own = 0

    @property
    def state(self) -> str:
        both = (self.publisher.state, self.subscriber.state)
        return "up" if both == ("up", "up") else "down"

    def broadcast(
        self, topic: str, event: str, payload: Any, *, exclude: Subscriber | None = None
    ) -> None:
        envelope = dumps({"from": self.node, "topic": topic, "event": event, "payload": payload})
        if self.publisher.state == "up" and self._outbox is not None:
            self._outbox.put(command("PUBLISH", self.channel, envelope))
            self.sent += 1
            self.trace("send", "redis", topic, payload)
        else:
            self.dropped += 1
            self.trace("drop", "redis", topic, payload)
        self.local_broadcast(topic, event, payload, exclude=exclude)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._keep, self.publisher, self._publish)
            nursery.start_soon(self._keep, self.subscriber, self._subscribe)
            task_status.started()

    async def _keep(
        self,
        link: RedisLink,
        run: Callable[[RedisLink, trio.SocketStream], Awaitable[None]],
    ) -> None:
        """Connect, run the connection until it breaks, back off, again; never raises."""

        def refused() -> None:
            link.state = "down"

        await trio.sleep(self.link_delay)
        while True:
            stream = await dial(self.host, self.port, refused)
            link.connects += 1
            try:
                await run(link, stream)
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                log.info("redis %s connection of %s lost: %s", link.role, self.node, exc)
            except (RespProtocolError, OutboxOverflow) as exc:
                log.warning("redis %s connection of %s dropped: %s", link.role, self.node, exc)
            except Exception:  # a PubSub problem must never take the node down
                log.exception("redis %s connection of %s failed", link.role, self.node)
            finally:
                link.state = "down"
                with trio.CancelScope(shield=True):
                    await stream.aclose()
            await trio.sleep(BACKOFF_START)

    async def _publish(self, link: RedisLink, stream: trio.SocketStream) -> None:
        outbox = Outbox(OUTBOX_LIMIT, stream.socket.fileno())
        self._outbox, link.state = outbox, "up"
        log.info("redis publish link of %s up", self.node)

        try:
            await until_first_ends(
                lambda: outbox.drain_into(stream), lambda: self._read_replies(stream)
            )
        finally:
            self._outbox = None
            log.info("redis publish link of %s down", self.node)

    async def _read_replies(self, stream: trio.SocketStream) -> None:
        """PUBLISH answers with the number of receivers; read them so the socket never fills."""
        reader = RespReader()
        while data := await stream.receive_some(65536):
            reader.feed(data)
            for value in reader.values():
                if isinstance(value, RespError):
                    log.warning("redis refused a publish: %s", value.message)

    async def _subscribe(self, link: RedisLink, stream: trio.SocketStream) -> None:
        await stream.send_all(command("SUBSCRIBE", self.channel))
        reader = RespReader()
        while data := await stream.receive_some(65536):
            reader.feed(data)
            values = list(reader.values())
            with burst(len(values) > 1):
                for value in values:
                    self._on_push(link, value)
        raise trio.BrokenResourceError("redis closed the subscribe connection")

    def _on_push(self, link: RedisLink, value: Any) -> None:
        if isinstance(value, RespError):
            raise RespProtocolError(f"redis refused the subscription: {value.message}")
        if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], bytes)):
            return
        kind, _channel, data = value
        if kind == b"subscribe":
            link.state = "up"
            log.info("redis subscribe link of %s up", self.node)
        elif kind == b"message" and isinstance(data, bytes):
            self._receive(data)

    def _receive(self, data: bytes) -> None:
        try:
            envelope = json.loads(data)
        except ValueError:
            log.warning("a message on %s that is not JSON", self.channel)
            return
        if not isinstance(envelope, dict):
            return
        topic, event = envelope.get("topic"), envelope.get("event")
        if not (isinstance(topic, str) and isinstance(event, str)):
            return
        origin = str(envelope.get("from"))
        if origin == self.node and not self.bugs.on("redis_echo"):
            self.own += 1  # our own publish coming back: already dispatched locally
            return
        self.received += 1
        self.trace("recv", "redis", topic, envelope.get("payload"), origin)
        self._dispatch(Delivery(topic, event, envelope.get("payload"), origin))

    def snapshot(self) -> dict[str, Any]:
        return {
            "adapter": self.adapter,
            "channel": self.channel,
            "links": {
                "redis": {
                    "address": f"{self.host}:{self.port}",
                    "state": self.state,
                    "publish": self.publisher.state,
                    "subscribe": self.subscriber.state,
                    "sent": self.sent,
                    "dropped": self.dropped,
                    "connects": self.publisher.connects + self.subscriber.connects,
                }
            },
            "received": self.received,
        }
