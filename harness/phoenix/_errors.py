"""Errors of the Phoenix protocol layer, split by whose fault they are.

    ProtocolError
    ├── LocalProtocolError    we were asked to send something the protocol cannot carry
    └── RemoteProtocolError   the peer sent something the protocol does not allow

Like h11 and wsproto: a `RemoteProtocolError` is what a server turns into a close of the
offending socket (Phoenix closes with 1011), a `LocalProtocolError` is a bug on our side.
Every malformed input a codec can see (not JSON, wrong arity, wrong types, too large, too deep)
raises `RemoteProtocolError` and nothing else.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Root of every error raised by `harness.phoenix`."""


class LocalProtocolError(ProtocolError):
    """We tried to encode something the wire format cannot represent."""


class RemoteProtocolError(ProtocolError):
    """The peer sent a frame that does not follow the protocol."""
