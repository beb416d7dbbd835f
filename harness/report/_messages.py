"""Node-to-node traffic around the first violation, as a space-time diagram (what Maelstrom's
messages.svg is for its nodes): one column per node (and one for Redis), time running down, an
arrow per broadcast from the node that sent it to the one that received it.

The window: every send and receive of the witness's own message, whenever it happened, and the
rest of the traffic `AROUND` seconds either side of the violation. Drawn from the reference
server's `--trace` files (`server_under_test/_trace.py`, on with `cluster.trace: true`, as in
the zoo scenarios): a broadcast that was sent and never arrived is an arrow that stops halfway
with a cross; one that arrived twice is two arrows; one dropped at the sender (its link was
down) is a cross on the sender's column. The witness's own message is drawn thick and red, and
always kept; the rest is capped at `MAX_ARROWS`. Servers without a trace get no diagram and a
line saying why.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._svg import WIDTH, Chart, Legend, mark

AROUND = 0.3  # seconds of other traffic drawn either side of the violation
MAX_ARROWS = 80
PX_PER_S = 600.0  # down the page, where something happens
GAP = 0.12  # seconds: a longer stretch with nothing drawn is cut to this, and marked
MAX_HEIGHT = 1400.0


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
    own = [r for r in traces if mid is not None and r.id == mid]
    near = [r for r in traces if abs(r.time - t0) <= AROUND and r.id != mid]
    window = own + near
    times = [r.time for r in window] + [t0 - AROUND, t0 + AROUND]
    low, high = min(times) - 0.05, max(times) + 0.05
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
    ends = [t for a in shown for t in (a.start, a.end) if t is not None]
    y = Squeezed([low, high, *ends], top=40.0)
    height = y.bottom + 20
    x = {c: 120 + i * (WIDTH - 200) / max(1, len(columns) - 1) for i, c in enumerate(columns)}
    marks = []
    for c in columns:
        marks.append(mark("text", text=c, x=x[c], y=24, class_="axt", text_anchor="middle"))
        marks.append(mark("line", x1=x[c], x2=x[c], y1=30, y2=height - 16, class_="axis"))
    for tick in y.ticks():
        marks.append(mark("text", text=f"{tick:.2f} s", x=8, y=y(tick) + 3, class_="tick"))
        marks.append(mark("line", x1=56, x2=WIDTH - 20, y1=y(tick), y2=y(tick), class_="grid"))
    for cut_from, cut_to in y.breaks:
        mid_y = (y(cut_from) + y(cut_to)) / 2
        marks.append(
            mark(
                "text",
                title=f"{cut_to - cut_from:.2f} s with nothing drawn, left out",
                text=f"⋯ {cut_to - cut_from:.2f} s ⋯",
                x=WIDTH / 2,
                y=mid_y + 3,
                class_="tick",
                text_anchor="middle",
            )
        )
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
            receipts = f" (one of {a.copies} receipts)" if a.copies > 1 else ""
            marks.append(
                mark(
                    "line",
                    title=f"{label}, received at {a.end:.3f} s{receipts}",
                    x1=sx,
                    y1=sy,
                    x2=x[a.target],
                    y2=y(a.end),
                    stroke=color,
                    stroke_width=width,
                    marker_end="url(#arrow)",
                )
            )
    caption = " ".join(
        (
            f"{len(shown)} of {len(arrows)} arrows: the witness's message whenever it was sent,"
            f" and the traffic {AROUND:g} s either side of {what} (at {t0:.2f} s); stretches with"
            " nothing drawn are cut" + (f"; {mid} in red." if mid else "."),
            _what_it_shows(arrows, mid),
        )
    )
    legend = (
        Legend("#cf222e", "the witness's message"),
        Legend("#bc4c00", "received more than once"),
        Legend("#57606a", "dashed with a cross: sent, never received; a cross: dropped"),
    )
    return Chart("messages", "Messages between nodes", caption, height, tuple(marks), legend)


def _what_it_shows(arrows: Sequence[Arrow], mid: str | None) -> str:
    """What the diagram can and cannot show of this violation, said under it."""
    lost = sum(1 for a in arrows if a.dropped or a.end is None)
    said = [
        "Only broadcasts between nodes are drawn: what a node delivers to its own clients,"
        " a duplicate it makes itself (a replay to a rejoining client) included, never crosses"
        " a link and is not here (the client's events above show it)."
    ]
    if mid is not None:
        own = [a for a in arrows if a.id == mid]
        if own and all(a.copies <= 1 for a in own):
            said.append(
                f"{mid} crossed each link at most once: its duplicate was made inside a node."
            )
    if lost:
        said.append(
            f"{lost} cross{'es' if lost != 1 else ''}: broadcasts sent while a link or the"
            " receiving node was down; PubSub between nodes is at-most-once, so inside a fault"
            " window that loss is allowed, and a crash loses what was in flight."
        )
    return " ".join(said)


class Squeezed:
    """A time axis down the page that cuts the stretches where nothing is drawn: between
    consecutive event times, at most `GAP` seconds are drawn (at `PX_PER_S`, less if the whole
    would be taller than `MAX_HEIGHT`); `breaks` are the stretches cut."""

    def __init__(self, times: Sequence[float], top: float) -> None:
        knots = sorted(set(times))
        drawn = sum(min(b - a, GAP) for a, b in itertools.pairwise(knots))
        scale = min(PX_PER_S, (MAX_HEIGHT - top - 20) / drawn) if drawn else PX_PER_S
        self.knots = knots
        self.ys = [top]
        for a, b in itertools.pairwise(knots):
            self.ys.append(self.ys[-1] + min(b - a, GAP) * scale)
        self.breaks = [(a, b) for a, b in itertools.pairwise(knots) if b - a > GAP]
        self.bottom = max(self.ys[-1], top + 160)

    def __call__(self, t: float) -> float:
        i = bisect.bisect_right(self.knots, t) - 1
        if i < 0:
            return self.ys[0]
        if i >= len(self.knots) - 1:
            return self.ys[-1]
        a, b = self.knots[i], self.knots[i + 1]
        return self.ys[i] + (self.ys[i + 1] - self.ys[i]) * (t - a) / (b - a)

    def ticks(self, spacing: float = 48.0) -> list[float]:
        """Knot times at least `spacing` px apart (the first and those after a cut)."""
        chosen: list[float] = []
        last = -1e9
        for t, y in zip(self.knots, self.ys, strict=True):
            if y - last >= spacing:
                chosen.append(t)
                last = y
        return chosen


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
