"""How a swarm client reaches a node: the limits of connecting, and the socket's URL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlencode, urlsplit

OnReconnect = Literal["same_node", "next_node", "random_node"]
CONNECT_TIMEOUT = 5.0  # from the start of a handshake (`_client.connecting`)
CONNECTING_PER_NODE = 32  # handshakes in flight to one node from one worker process


def socket_url(endpoint: str, path: str, params: Mapping[str, str]) -> str:
    """`ws://host:port` of the endpoint (any path it has is ignored) + the socket path + the
    connect query: the app's params and the protocol version, as phoenix.js sends them."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}{path}?{urlencode({**params, 'vsn': '2.0.0'})}"
