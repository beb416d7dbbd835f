"""Node-to-node traffic around the first violation, as a space-time diagram (what Maelstrom's
messages.svg is for its nodes): one column per node (and one for Redis), time running down, an
arrow per broadcast from the node that sent it to the one that received it.

Drawn from the reference server's `--trace` files (`server_under_test/_trace.py`, on with
`cluster.trace: true`, as in the zoo scenarios): a broadcast that was sent and never arrived is
an arrow that stops halfway with a cross; one that arrived twice is two arrows; one dropped at
the sender (its link was down) is a cross on the sender's column. The witness's own message is
drawn thick and red. Windowed (`BEFORE`/`AFTER` seconds around the violation) and capped at
`MAX_ARROWS`, the witness's message always kept. Servers without a trace get no diagram and a
line saying why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._svg import WIDTH, Axis, Chart, Legend, mark

BEFORE, AFTER = 1.0, 2.0
MAX_ARROWS = 150
ROW = 36.0  # px per 0.1 s of time down the page, at most


@dataclass(frozen=True, slots=True)
class Trace:
    """One trace line on the scenario's clock."""

    time: float
    node: str
    direction: str  # send | recv | drop
    peer: str
    topic: str
    id: str | None
    origin: str | None = None


def focus(results: dict[str, Any]) -> tuple[float, str | None, str] | None:
    """The first violation to center on: its time, its message id, and what it was."""
    for check in results.get("checks", []):
        if check.get("validity") != "invalid":
            continue
        for w in check.get("witnesses", []):
            t = w.get("time")
            if isinstance(t, int | float):
                mid = w.get("id") or w.get("message") or (w.get("evidence") or {}).get("id")
                return float(t), str(mid) if mid else None, f"{check['name']}: {w.get('problem')}"
    return None


def diagram(traces: Sequence[Trace] | None, results: dict[str, Any]) -> Chart:
    if traces is None:
        return Chart(
            "messages",
            "Messages between nodes",
            "",
            0,
            (),
            empty=(
                "no trace: the server was not run with `--trace` (the reference server writes one"
                " with `cluster.trace: true`; other servers have none)"
            ),
        )
    center = focus(results)
    if center is None:
        return Chart(
            "messages",
            "Messages between nodes",
            "",
            0,
            (),
            empty="no violation to center on: nothing to draw",
        )
    t0, mid, what = center
    sends = [r for r in traces if r.direction in ("send", "drop")]
    if mid is not None:
        own = [r.time for r in sends if r.id == mid]
        if own:
            t0 = min(own)
    low, high = t0 - BEFORE, t0 + AFTER
    window = [r for r in traces if low <= r.time <= high]
    if not window:
        return Chart(
            "messages",
            "Messages between nodes",
            "",
            0,
            (),
            empty=f"no traced PubSub traffic between {low:.1f} s and {high:.1f} s",
        )
    columns = sorted({r.node for r in traces} | {r.peer for r in traces if r.peer == "redis"})
    arrows = _arrows(window, traces)
    arrows.sort(key=lambda a: (a.id != mid, a.start))
    shown = sorted(arrows[:MAX_ARROWS], key=lambda a: a.start)
    height = max(220.0, min(1400.0, (high - low) * 10 * ROW / 4))
    x = {c: 120 + i * (WIDTH - 200) / max(1, len(columns) - 1) for i, c in enumerate(columns)}
    y = Axis(low, high, 40, height - 20)
    marks = []
    for c in columns:
        marks.append(mark("text", text=c, x=x[c], y=24, class_="axt", text_anchor="middle"))
        marks.append(mark("line", x1=x[c], x2=x[c], y1=30, y2=height - 16, class_="axis"))
    for tick in Axis(low, high, 0, 1).ticks(8):
        marks.append(mark("text", text=f"{tick:g} s", x=8, y=y(tick) + 3, class_="tick"))
        marks.append(mark("line", x1=40, x2=WIDTH - 20, y1=y(tick), y2=y(tick), class_="grid"))
    for a in shown:
        if a.source not in x or a.target not in x:
            continue
        hot = mid is not None and a.id == mid
        color = "#cf222e" if hot else ("#bc4c00" if a.copies > 1 else "#57606a")
        width = "2.5" if hot else "1"
        sx, sy = x[a.source], y(a.start)
        label = f"{a.id} on {a.topic}: {a.source}→{a.target} at {a.start:.3f} s"
        if a.dropped:
            marks.append(_cross(sx, sy, color, f"{label}: dropped at the sender (link down)"))
        elif a.end is None:
            mx, my = (sx + x[a.target]) / 2, sy + 12
            marks.append(
                mark(
                    "line",
                    title=f"{label}: never received",
                    x1=sx,
                    y1=sy,
                    x2=mx,
                    y2=my,
                    stroke=color,
                    stroke_width=width,
                    stroke_dasharray="4 3",
                )
            )
            marks.append(_cross(mx, my, "#cf222e", f"{label}: never received"))
        else:
            times = f" (one of {a.copies} receipts)" if a.copies > 1 else ""
            marks.append(
                mark(
                    "line",
                    title=f"{label}, received at {a.end:.3f} s{times}",
                    x1=sx,
                    y1=sy,
                    x2=x[a.target],
                    y2=y(a.end),
                    stroke=color,
                    stroke_width=width,
                    marker_end="url(#arrow)",
                )
            )
    caption = (
        f"{len(shown)} of {len(arrows)} arrows between {low:.1f} s and {high:.1f} s,"
        f" around {what}" + (f"; {mid} in red" if mid else "")
    )
    legend = (
        Legend("#cf222e", "the witness's message"),
        Legend("#bc4c00", "received more than once"),
        Legend("#57606a", "dashed with a cross: sent, never received; a cross: dropped"),
    )
    return Chart("messages", "Messages between nodes", caption, height, tuple(marks), legend)


@dataclass(frozen=True, slots=True)
class Arrow:
    source: str
    target: str
    start: float
    end: float | None  # None: never received
    topic: str
    id: str | None
    copies: int = 1  # receipts of this (source, target, id)
    dropped: bool = False


def _arrows(window: Sequence[Trace], traces: Sequence[Trace]) -> list[Arrow]:
    """An arrow per send (or drop) in the window to each receive it caused: a receive of the
    same id and topic at the peer, from this sender, belongs to the latest send before it (so a
    resend is its own arrow). Through Redis: the node to Redis (received if any node got it),
    then Redis to each node that received it."""
    receives: dict[tuple[str, str, str | None, str], list[Trace]] = {}
    for r in traces:
        if r.direction == "recv":
            sender = (r.origin or "?") if r.peer == "redis" else r.peer
            via = "redis" if r.peer == "redis" else r.node
            receives.setdefault((sender, via, r.id, r.topic), []).append(r)
    sends: dict[tuple[str, str, str | None, str], list[Trace]] = {}
    for r in traces:
        if r.direction == "send":
            sends.setdefault((r.node, r.peer, r.id, r.topic), []).append(r)
    arrows = []
    for send in window:
        if send.direction == "drop":
            arrows.append(
                Arrow(send.node, send.peer, send.time, None, send.topic, send.id, dropped=True)
            )
            continue
        if send.direction != "send":
            continue
        key = (send.node, send.peer, send.id, send.topic)
        later = [s.time for s in sends.get(key, []) if s.time > send.time]
        until = min(later, default=float("inf"))
        got = [r for r in receives.get(key, []) if send.time <= r.time < until]
        total = len(receives.get(key, []))
        if send.peer == "redis":
            first = min((r.time for r in got), default=None)
            arrows.append(Arrow(send.node, "redis", send.time, first, send.topic, send.id))
            arrows.extend(Arrow("redis", r.node, send.time, r.time, r.topic, r.id) for r in got)
        elif not got:
            arrows.append(Arrow(send.node, send.peer, send.time, None, send.topic, send.id))
        else:
            arrows.extend(
                Arrow(send.node, send.peer, send.time, r.time, send.topic, send.id, copies=total)
                for r in got
            )
    return arrows


def _cross(cx: float, cy: float, color: str, title: str) -> Any:
    d = 4.0
    path = (
        f"M{cx - d:.1f},{cy - d:.1f}L{cx + d:.1f},{cy + d:.1f}"
        f"M{cx + d:.1f},{cy - d:.1f}L{cx - d:.1f},{cy + d:.1f}"
    )
    return mark("path", title=title, d=path, stroke=color, stroke_width="2", fill="none")


def read_traces(
    lines: Mapping[str, Sequence[dict[str, Any]]], origin: float | None, workload: float
) -> list[Trace] | None:
    """Trace records (monotonic seconds) onto the scenario's clock; None without any file or
    without the run's clock origin to place them."""
    if not lines or origin is None:
        return None
    out = []
    for records in lines.values():
        for r in records:
            t = r.get("t")
            if not isinstance(t, int | float):
                continue
            out.append(
                Trace(
                    float(t) - origin - workload,
                    str(r.get("node")),
                    str(r.get("dir")),
                    str(r.get("peer")),
                    str(r.get("topic")),
                    None if r.get("id") is None else str(r.get("id")),
                    None if r.get("from") is None else str(r.get("from")),
                )
            )
    out.sort(key=lambda r: r.time)
    return out
