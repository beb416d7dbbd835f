"""Erlang's External Term Format, read far enough to see what a real Phoenix broadcast says of
itself, without I/O.

phoenix_pubsub_redis (3.x) publishes `:erlang.term_to_binary({3, mode, node_name, topic,
message, dispatcher}, compressed: level)`: a 6-tuple, zlib-compressed (tag 80) when the level is
not 0. `mode` is `:except` for a broadcast (every node but `node_name`, the publisher) and `:only`
for a direct one; `message` is a `%Phoenix.Socket.Broadcast{topic, event, payload}` (a map with
atom keys and `__struct__`) for a channel broadcast. `envelope` gives the origin, the topic and
the event from those bytes, or None for anything else.

Hand-written: the ETF libraries on PyPI (erlang_py, erlpack, term) each decode a subset of the
tags, build Python objects of their own for every term and have no bound on nesting or size; the
proxy needs a few fields of an untrusted term and a hard limit on what reading it may cost. Tags
from the format's documentation (erts, "External Term Format"); the tests decode bytes made by
a real BEAM (Debian's erlang-base).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

from ..foreign import MAX_DEPTH

VERSION = 131
COMPRESSED = 80
MAX_TERM = 4_000_000  # bytes of a term once inflated (the mesh's own line limit)


class Atom(str):
    """An atom (a binary decodes to bytes, so the two stay apart)."""


@dataclass(frozen=True, slots=True)
class Opaque:
    """A term this reader skips over (a pid, a reference, a fun, a port)."""

    tag: int


class NotETF(ValueError):
    """Bytes that are not a term this reader takes."""


def decode(data: bytes) -> Any:
    """The term `term_to_binary` made these bytes from."""
    if not data or data[0] != VERSION:
        raise NotETF("no version byte")
    if len(data) > 1 and data[1] == COMPRESSED:
        if len(data) < 6:
            raise NotETF("a compressed term without its size")
        (size,) = struct.unpack(">I", data[2:6])
        if size > MAX_TERM:
            raise NotETF(f"a compressed term of {size} bytes")
        inflater = zlib.decompressobj()
        try:
            body = inflater.decompress(data[6:], size + 1)
        except zlib.error as exc:
            raise NotETF(f"a compressed term that does not inflate: {exc}") from None
        if len(body) != size:
            raise NotETF("a compressed term of another size than it says")
    else:
        body = data[1:]
    reader = _Reader(body)
    term = reader.term(0)
    if reader.at != len(body):
        raise NotETF("bytes after the term")
    return term


@dataclass(frozen=True, slots=True)
class Envelope:
    origin: str | None
    topic: str | None
    event: str | None
    mode: str | None


def envelope(data: bytes) -> Envelope | None:
    """What a phoenix_pubsub_redis message says of its broadcast, or None when it is not one."""
    try:
        term = decode(data)
    except (NotETF, RecursionError):
        return None
    if not (isinstance(term, tuple) and len(term) == 6 and isinstance(term[0], int)):
        return None
    _, mode, node, topic, message, _dispatcher = term
    event = None
    if isinstance(message, dict):
        found = message.get(Atom("event"))
        event = _text(found)
    return Envelope(_text(node), _text(topic), event, _text(mode))


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return str(value)
    return None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise NotETF("the term ends early")
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def count(self, n: int) -> int:
        """A count of elements, each at least a byte: never more than the bytes left."""
        if n > len(self.data) - self.at:
            raise NotETF("more elements than bytes")
        return n

    def term(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise NotETF("nested too deep")
        tag = self.u8()
        match tag:
            case 97:  # SMALL_INTEGER_EXT
                return self.u8()
            case 98:  # INTEGER_EXT
                return int(struct.unpack(">i", self.take(4))[0])
            case 70:  # NEW_FLOAT_EXT
                return float(struct.unpack(">d", self.take(8))[0])
            case 110 | 111:  # SMALL_BIG_EXT, LARGE_BIG_EXT
                n = self.u8() if tag == 110 else self.u32()
                sign = self.u8()
                value = int.from_bytes(self.take(self.count(n)), "little")
                return -value if sign else value
            case 100 | 118:  # ATOM_EXT, ATOM_UTF8_EXT
                return Atom(self.take(self.u16()).decode("utf-8", errors="replace"))
            case 115 | 119:  # SMALL_ATOM_EXT, SMALL_ATOM_UTF8_EXT
                return Atom(self.take(self.u8()).decode("utf-8", errors="replace"))
            case 104 | 105:  # SMALL_TUPLE_EXT, LARGE_TUPLE_EXT
                n = self.u8() if tag == 104 else self.count(self.u32())
                return tuple(self.term(depth + 1) for _ in range(n))
            case 106:  # NIL_EXT
                return []
            case 107:  # STRING_EXT: a list of bytes
                return list(self.take(self.u16()))
            case 108:  # LIST_EXT (its tail is read and dropped unless it is [])
                n = self.count(self.u32())
                items = [self.term(depth + 1) for _ in range(n)]
                self.term(depth + 1)
                return items
            case 109:  # BINARY_EXT
                return self.take(self.count(self.u32()))
            case 77:  # BIT_BINARY_EXT
                n = self.count(self.u32())
                self.u8()
                return self.take(n)
            case 116:  # MAP_EXT
                n = self.count(self.u32())
                out: dict[Any, Any] = {}
                for _ in range(n):
                    key = self.term(depth + 1)
                    value = self.term(depth + 1)
                    if isinstance(key, str | bytes | int | float):
                        out[key] = value
                return out
            case 88:  # NEW_PID_EXT
                self.term(depth + 1)
                self.take(12)
                return Opaque(tag)
            case 90:  # NEWER_REFERENCE_EXT
                n = self.u16()
                self.term(depth + 1)
                self.take(4 + 4 * n)
                return Opaque(tag)
            case 89:  # NEW_PORT_EXT
                self.term(depth + 1)
                self.take(8)
                return Opaque(tag)
            case 113:  # EXPORT_EXT
                self.term(depth + 1)
                self.term(depth + 1)
                self.term(depth + 1)
                return Opaque(tag)
            case 112:  # NEW_FUN_EXT: its size covers it whole
                size = self.u32()
                self.take(size - 4)
                return Opaque(tag)
        raise NotETF(f"tag {tag} is not read here")
