"""`--trace PATH`: every PubSub send and receive of a broadcast, one JSON line each.

    {"t": 12345.678901, "node": "n1", "dir": "send", "peer": "n2", "topic": "room:1", "id": "m-7"}

`dir` is `send` (handed to the link to a peer, or to Redis), `drop` (the link was down, so the
broadcast never left: at most once) or `recv` (arrived from a peer, or from Redis; `peer` is
where it came from, `from` the node that published it). `t` is CLOCK_MONOTONIC, the clock the
harness stamps its history with, so the report can draw node-to-node traffic on the run's time
line (the message diagram). Line-buffered: a SIGKILL loses at most the line being written.
Off unless asked for: one write per broadcast per peer.
"""

from __future__ import annotations

import json
import time
from typing import IO, Any


def message_id(payload: Any) -> str | None:
    """The broadcast's message id: `id`, or the chat contract's `msg.id`."""
    if isinstance(payload, dict):
        if "id" in payload:
            return str(payload["id"])
        inner = payload.get("msg")
        if isinstance(inner, dict) and "id" in inner:
            return str(inner["id"])
    return None


class Tracer:
    """Writes trace lines to `path` (appending: a restarted node continues its file)."""

    def __init__(self, node: str, path: str | None = None) -> None:
        self.node = node
        self._file: IO[str] | None = open(path, "a", buffering=1) if path else None  # noqa: SIM115

    @property
    def on(self) -> bool:
        return self._file is not None

    def __call__(
        self, direction: str, peer: str, topic: str, payload: Any, origin: str | None = None
    ) -> None:
        if self._file is None:
            return
        line: dict[str, Any] = {
            "t": round(time.monotonic(), 6),
            "node": self.node,
            "dir": direction,
            "peer": peer,
            "topic": topic,
            "id": message_id(payload),
        }
        if origin is not None:
            line["from"] = origin
        self._file.write(json.dumps(line, separators=(",", ":")) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
