"""RESP2, the Redis wire protocol, without I/O: what the Redis PubSub adapter needs.

`command("PUBLISH", channel, data)` gives the bytes of one command; a `RespReader` is fed bytes
as they arrive and hands back every complete value (bulk strings as bytes, simple strings as
str, integers, arrays as lists, `None` for null, `RespError` for a `-ERR` reply). The adapter
only ever sees whole values, so a frame cut anywhere by TCP (or by a Toxiproxy `slicer`) reads
the same. Malformed input raises `RespProtocolError`: the adapter drops the link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from ._errors import ServerError

MAX_BULK = 64 * 1024 * 1024  # what a bulk string may claim (Redis's proto-max-bulk-len is 512 MB)
MAX_ARRAY = 1024 * 1024
MAX_DEPTH = 32  # arrays inside arrays; Pub/Sub replies nest one level


class RespProtocolError(ServerError):
    """The peer sent something that is not RESP2."""


@dataclass(frozen=True, slots=True)
class RespError:
    """An error reply, e.g. `-ERR unknown command`."""

    message: str


RespValue: TypeAlias = "bytes | str | int | RespError | list[RespValue] | None"


def command(*args: str | bytes | int) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts += [f"${len(data)}\r\n".encode(), data, b"\r\n"]
    return b"".join(parts)


class RespReader:
    """Incremental parser: `feed` bytes, then take complete values from `values()`."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def values(self) -> list[RespValue]:
        """Every complete value buffered so far, in order; the rest stays for the next feed."""
        out: list[RespValue] = []
        while True:
            self._pos = 0
            try:
                value = self._value()
            except _Incomplete:
                return out
            del self._buffer[: self._pos]
            out.append(value)

    def _line(self) -> bytes:
        end = self._buffer.find(b"\r\n", self._pos)
        if end < 0:
            if len(self._buffer) - self._pos > 64 * 1024:
                raise RespProtocolError("a header line longer than 64 KiB")
            raise _Incomplete
        line = bytes(self._buffer[self._pos : end])
        self._pos = end + 2
        return line

    def _int(self, text: bytes, what: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise RespProtocolError(f"{what} is not an integer: {text[:40]!r}") from None

    def _value(self, depth: int = 0) -> RespValue:
        if depth > MAX_DEPTH:
            raise RespProtocolError(f"arrays nested more than {MAX_DEPTH} deep")
        line = self._line()
        if not line:
            raise RespProtocolError("an empty line where a value should start")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode(errors="replace")
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return self._int(rest, "an integer reply")
        if kind == b"$":
            length = self._int(rest, "a bulk length")
            if length == -1:
                return None
            if not 0 <= length <= MAX_BULK:
                raise RespProtocolError(f"a bulk string of {length} bytes")
            if len(self._buffer) < self._pos + length + 2:
                raise _Incomplete
            data = bytes(self._buffer[self._pos : self._pos + length])
            if self._buffer[self._pos + length : self._pos + length + 2] != b"\r\n":
                raise RespProtocolError("a bulk string not followed by CRLF")
            self._pos += length + 2
            return data
        if kind == b"*":
            count = self._int(rest, "an array length")
            if count == -1:
                return None
            if not 0 <= count <= MAX_ARRAY:
                raise RespProtocolError(f"an array of {count} elements")
            return [self._value(depth + 1) for _ in range(count)]
        raise RespProtocolError(f"unknown RESP type byte {kind!r}")


class _Incomplete(Exception):
    """Not enough bytes yet for one whole value."""
