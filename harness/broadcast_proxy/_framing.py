"""The node-to-node framings a broadcast proxy understands, without I/O.

A framer is fed the bytes of one direction of one connection as they arrive and hands back
whole frames, each with its bytes exactly as they came (`Frame.raw`: what passes is passed byte
for byte) and, when the frame is a remote broadcast, what it carries (`Broadcast`):

* `MeshFramer`: the reference mesh's newline-delimited JSON. A broadcast is a line
  `{"from", "topic", "event", "payload"}`; hellos, interest and subscribe lines are frames too,
  never broadcasts.
* `RespFramer`: RESP2, Redis's protocol. A broadcast is a `PUBLISH channel data` command (a
  node to Redis) or a pushed `message`/`pmessage` (Redis to a subscribed node). Its data is
  read as the reference server's JSON envelope when it is one, or as a real Phoenix node's
  (phoenix_pubsub_redis: an Erlang term, `_etf`: origin, topic and event where the message is
  a `Phoenix.Socket.Broadcast`).

Neither framer ever breaks a link: a line longer than `MAX_FRAME`, or bytes that are not RESP2,
turn the framer *opaque*: from then on everything it is fed comes back as non-broadcast frames.

Hand-written rather than `server_under_test/_resp.py` (the harness never imports the reference
server) or a Redis client library (they parse values; the proxy needs each value's raw bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import orjson

from ._etf import envelope as etf_envelope

MAX_FRAME = 4_000_000  # the reference mesh's own line limit
_MESH_BROADCAST = b'{"from"'  # how `harness.phoenix.dumps` writes a broadcast line


@dataclass(frozen=True, slots=True)
class Broadcast:
    """What a remote broadcast says of itself (None: not readable from the frame)."""

    origin: str | None
    topic: str | None
    event: str | None


@dataclass(frozen=True, slots=True)
class Frame:
    raw: bytes
    broadcast: Broadcast | None = None


class Framer(Protocol):
    def feed(self, data: bytes) -> list[Frame]: ...


def envelope(data: bytes) -> Broadcast:
    """The broadcast an envelope describes: the reference server's JSON `{"from", "topic",
    "event", ...}`, or phoenix_pubsub_redis's Erlang term (a direct broadcast, `:only`, names
    its target, not its origin)."""
    if data[:1] == b"\x83":
        found = etf_envelope(data)
        if found is None:
            return Broadcast(None, None, None)
        origin = found.origin if found.mode == "except" else None
        return Broadcast(origin, found.topic, found.event)
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return Broadcast(None, None, None)
    if not isinstance(value, dict):
        return Broadcast(None, None, None)

    def text(key: str) -> str | None:
        item = value.get(key)
        return item if isinstance(item, str) else None

    return Broadcast(text("from"), text("topic"), text("event"))


class MeshFramer:
    """Newline-delimited JSON lines."""

    def __init__(self, limit: int = MAX_FRAME) -> None:
        self._pending = bytearray()
        self._limit = limit
        self.opaque = False

    def feed(self, data: bytes) -> list[Frame]:
        if self.opaque:
            return [Frame(data)] if data else []
        self._pending += data
        frames: list[Frame] = []
        start = 0
        pending = self._pending
        while (end := pending.find(b"\n", start)) >= 0:
            line = bytes(pending[start : end + 1])
            start = end + 1
            frames.append(Frame(line, envelope(line) if line.startswith(_MESH_BROADCAST) else None))
        del pending[:start]
        if len(pending) > self._limit:
            self.opaque = True
            frames.append(Frame(bytes(pending)))
            pending.clear()
        return frames


class RespFramer:
    """RESP2 values, each with its raw bytes."""

    def __init__(self, limit: int = MAX_FRAME) -> None:
        self._pending = bytearray()
        self._limit = limit
        self.opaque = False

    def feed(self, data: bytes) -> list[Frame]:
        if self.opaque:
            return [Frame(data)] if data else []
        self._pending += data
        pending = self._pending
        frames: list[Frame] = []
        start = 0
        while start < len(pending):
            try:
                parsed = _value(pending, start, 0)
            except _NotResp:
                self.opaque = True
                frames.append(Frame(bytes(pending[start:])))
                pending.clear()
                return frames
            if parsed is None:
                break
            value, end = parsed
            frames.append(Frame(bytes(pending[start:end]), _broadcast(value)))
            start = end
        del pending[:start]
        if len(pending) > self._limit:
            self.opaque = True
            frames.append(Frame(bytes(pending)))
            pending.clear()
        return frames


class _NotResp(Exception):
    pass


_Value = bytes | int | str | list["_Value"] | None
MAX_DEPTH = 8


def _value(buf: bytearray, at: int, depth: int) -> tuple[_Value, int] | None:
    """The value that starts at `at` and where it ends; None if it is not complete yet."""
    line_end = buf.find(b"\r\n", at)
    if line_end < 0:
        if len(buf) - at > 64 * 1024:
            raise _NotResp  # no header line is that long
        return None
    kind, header = bytes(buf[at : at + 1]), bytes(buf[at + 1 : line_end])
    after = line_end + 2
    if kind in (b"+", b"-"):
        return header.decode("utf-8", "replace"), after
    if kind == b":":
        return _integer(header), after
    if kind == b"$":
        size = _integer(header)
        if size < 0:
            return None, after
        if len(buf) < after + size + 2:
            return None
        if buf[after + size : after + size + 2] != b"\r\n":
            raise _NotResp
        return bytes(buf[after : after + size]), after + size + 2
    if kind == b"*":
        count = _integer(header)
        if count < 0:
            return None, after
        if depth >= MAX_DEPTH:
            raise _NotResp
        items: list[_Value] = []
        for _ in range(count):
            parsed = _value(buf, after, depth + 1)
            if parsed is None:
                return None
            item, after = parsed
            items.append(item)
        return items, after
    raise _NotResp  # RESP3 or an inline command: not framed, passed as it comes


def _integer(header: bytes) -> int:
    try:
        return int(header)
    except ValueError:
        raise _NotResp from None


def _broadcast(value: _Value) -> Broadcast | None:
    if not isinstance(value, list) or not value or not isinstance(value[0], bytes):
        return None
    head = value[0].lower()
    if head == b"publish" and len(value) == 3 and isinstance(value[2], bytes):
        return envelope(value[2])
    if head == b"message" and len(value) == 3 and isinstance(value[2], bytes):
        return envelope(value[2])
    if head == b"pmessage" and len(value) == 4 and isinstance(value[3], bytes):
        return envelope(value[3])
    return None
