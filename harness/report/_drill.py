"""Drill-down: for each client a witness names, its own events around that witness.

A witness says what went wrong; the client's connects, joins, closes, deliveries and publishes
in the seconds around it say how (a rejoin that came late, a delivery on the old join_ref, a
publish that was retried). One small table per client, the first `MAX_CLIENTS` clients named,
`WINDOW` seconds either side of the client's first witness, at most `MAX_ROWS` rows: its
connects, joins, closes and publishes first, then the deliveries nearest the witness.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..history import Op

WINDOW = 3.0
MAX_CLIENTS = 8
MAX_ROWS = 40
RECV_ROWS = 12  # deliveries kept at least, the nearest to the witness
SHOWN = ("topic", "event", "id", "join_ref", "code", "reason", "error", "url")


@dataclass(frozen=True, slots=True)
class Row:
    time: float
    type: str
    f: str
    node: str
    detail: str
    at_witness: bool = False


@dataclass(frozen=True, slots=True)
class ClientEvents:
    client: str
    witness: str
    time: float
    rows: tuple[Row, ...]
    hidden: int  # events in the window not shown (over MAX_ROWS)


def drill(ops: Sequence[Op], results: dict[str, Any]) -> list[ClientEvents]:
    firsts: dict[str, tuple[float, str]] = {}
    for check in results.get("checks", []):
        for w in check.get("witnesses", []):
            client, t = w.get("client"), w.get("time")
            if isinstance(client, str) and isinstance(t, int | float) and client not in firsts:
                firsts[client] = (float(t), f"{check['name']}: {w.get('problem', '')}")
            if len(firsts) >= MAX_CLIENTS:
                break
    by_client: dict[str, list[Op]] = {c: [] for c in firsts}
    for op in ops:
        if op.process in by_client:
            t = firsts[op.process][0]
            if t - WINDOW <= op.time <= t + WINDOW:
                by_client[op.process].append(op)
    out = []
    for client, (t, what) in firsts.items():
        events = by_client[client]
        nearest = _pick(events, t)
        marked = min(nearest, key=lambda op: abs(op.time - t), default=None)
        rows = tuple(
            Row(op.time, op.type, op.f, op.node or "", _detail(op.value), op is marked)
            for op in nearest
        )
        out.append(ClientEvents(client, what, t, rows, len(events) - len(rows)))
    return out


def _pick(events: Sequence[Op], t: float) -> list[Op]:
    """What says most: every event but deliveries (connects, joins, closes, publishes), then
    the deliveries nearest the witness; at most MAX_ROWS, in time order."""
    others = sorted((op for op in events if op.f != "recv"), key=lambda op: abs(op.time - t))
    chosen = others[: MAX_ROWS - RECV_ROWS]
    deliveries = sorted((op for op in events if op.f == "recv"), key=lambda op: abs(op.time - t))
    chosen += deliveries[: MAX_ROWS - len(chosen)]
    return sorted(chosen, key=lambda op: op.time)


def _detail(value: Mapping[str, Any]) -> str:
    parts = [f"{k}={value[k]}" for k in SHOWN if value.get(k) not in (None, "")]
    return " ".join(parts)[:160]
