"""A swarm client's configuration: where it connects and what it says there (plain data, so a
plan crosses to a worker process as JSON; `harness.swarm._codec`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from ..phoenix import Timings

OnReconnect = Literal["same_node", "next_node", "random_node"]
CONNECT_TIMEOUT = 5.0  # from the start of a handshake (`_client.connecting`)
CONNECTING_PER_NODE = 32  # handshakes in flight to one node from one worker process


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a client connects to a node: its name and URL (`ws://host:port/socket`)."""

    name: str
    url: str


@dataclass(frozen=True, slots=True)
class ClientConfig:
    client_id: str
    nodes: tuple[Endpoint, ...]
    topics: tuple[str, ...]
    first_node: int = 0
    on_reconnect: OnReconnect = "same_node"
    timings: Timings = field(default_factory=Timings)
    params: Mapping[str, str] = field(default_factory=dict)
    join_params: Mapping[str, Any] = field(default_factory=dict)
    legacy_close_1000: bool = False
    rejoin_on_reconnect: bool = True
    duplicate_join: bool = False
    publish_retries: int = 0  # re-send a timed-out publish with the same id this many times
    publisher: bool = False
    socket_path: str = "/socket/websocket"
    publish_event: str = "new_msg"
    deliver_event: str = "new_msg"
    deliver_id: str = "id"  # dotted path of the message id in a delivery's payload
    run_id: str = ""


def socket_url(endpoint: str, path: str, params: Mapping[str, str]) -> str:
    """`ws://host:port` of the endpoint (any path it has is ignored) + the socket path + the
    connect query: the app's params and the protocol version, as phoenix.js sends them."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}{path}?{urlencode({**params, 'vsn': '2.0.0'})}"
