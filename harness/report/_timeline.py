"""The report's timeline: one chart on the scenario's clock, drawn from the history alone.

The axis is the scenario's clock: 0 is the start of the workload, where a fault `at: 3s` is drawn at
3 s; set-up is to the left of 0. Rows from the top: one bar per fault window; each measurement of
the readiness probe (how long the cluster took to form, and to re-form after each heal); the run's
phases (labels placed on as many rows as it takes for none to overlap); deliveries per time bucket
and delivery latency (p50, max), each with its scale; lost connections; witness markers; then one
lane per client grouped by the node it first connected to (grey: connected with no channel joined,
light green: joined to some of its topics, green: to all), with a diamond and the node's name where
a reconnect landed on another node, and the fault windows as bands across the lanes, so a rejoin gap
or a client that came back deaf shows at a glance. Capped at `MAX_LANES` lanes, clients named by
witnesses first. Every mark has a tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..checkers import Facts
from ..checkers._warnings import exited
from ..history import Op, fault_edge
from ..vocabulary import natural
from ._svg import WIDTH, Axis, Chart, Legend, mark, polyline

LEFT = 130.0
RIGHT = WIDTH - 16.0
FAULT_COLORS = ["#f0883e", "#a371f7", "#3fb950", "#58a6ff", "#db61a2", "#d29922"]
MAX_LANES = 40  # client lanes drawn; the rest are counted in a notice
LANE_COLORS = {"all": "#2da44e", "some": "#aceebb", "none": "#d0d7de"}
BUCKETS = 150
CHAR = 5.6  # px per character of a 10 px label, for placing labels apart


def timeline(ops: Sequence[Op], results: dict[str, Any], facts: Facts) -> Chart:
    if not ops:
        return Chart("timeline", "Timeline", "", 0, (), empty="empty history")
    first = min(0.0, min(op.time for op in ops))
    end = max(max(op.time for op in ops), first + 1e-3)
    x = Axis(first, end, LEFT, RIGHT)
    marks: list[Any] = []
    y = 6.0

    faults = _faults(ops)
    colors = {fid: FAULT_COLORS[i % len(FAULT_COLORS)] for i, fid in enumerate(faults)}
    for fid, f in faults.items():
        start = f.get("start", 0.0)
        stop = f.get("stop", start + 0.05)
        text = f"{fid} {f['kind']} {f['target']}"
        name = f"{fid} {f['kind']}"
        marks.append(mark("text", text=_fit(name, 22), x=4, y=y + 11, class_="lbl"))
        beside = x(stop) + 4  # the target after the bar, or before it near the right edge
        if beside + len(str(f["target"])) * CHAR > RIGHT:
            beside_mark = mark(
                "text",
                text=str(f["target"]),
                x=x(start) - 4,
                y=y + 11,
                class_="lbl",
                text_anchor="end",
            )
        else:
            beside_mark = mark("text", text=str(f["target"]), x=beside, y=y + 11, class_="lbl")
        marks.append(beside_mark)
        marks.append(
            mark(
                "rect",
                title=f"{text}: {start:.2f} s to {stop:.2f} s{f.get('took', '')}",
                x=x(start),
                y=y,
                width=max(2.0, x(stop) - x(start)),
                height=14.0,
                fill=colors[fid],
                rx=2,
            )
        )
        y += 18

    y = _formations(facts, x, y, marks)
    y = _exits(facts, x, y, marks)
    y = _phases(ops, x, y, marks)
    y = _deliveries(ops, facts, x, first, end, y, marks)
    marks.append(mark("text", text="lost connections", x=4, y=y + 9, class_="lbl"))
    for op in (op for lost in facts.losses.values() for op in lost):
        marks.append(
            mark(
                "line",
                title=f"{op.process} lost its connection at {op.time:.2f} s"
                f" (code {op.value.get('code')})",
                x1=x(op.time),
                x2=x(op.time),
                y1=y,
                y2=y + 12,
                stroke="#6e7781",
            )
        )
    y += 16
    lanes_top = y
    marks.append(mark("text", text="witnesses", x=4, y=y + 9, class_="lbl"))
    for check in results.get("checks", []):
        for w in check.get("witnesses", [])[:50]:
            t = _witness_time(w)
            if t is not None:
                marks.append(
                    mark(
                        "circle",
                        title=f"{check['name']}: {w.get('problem', '')}",
                        cx=x(t),
                        cy=y + 6,
                        r=3.5,
                        fill="#cf222e",
                    )
                )
    y += 16
    lane_marks, y = _lanes(ops, facts, results, x, y, end)
    for w in facts.windows:
        marks.append(
            mark(
                "rect",
                title=f"{w.id} {w.kind} {w.target}",
                x=x(w.start),
                y=lanes_top,
                width=max(1.0, x(w.end) - x(w.start)),
                height=y - lanes_top,
                fill=colors.get(w.id, "#999"),
                opacity="0.13",
            )
        )
    marks.extend(lane_marks)
    for t in _ticks(first, end):
        marks.append(mark("line", x1=x(t), x2=x(t), y1=y, y2=y + 4, class_="axis"))
        marks.append(
            mark("text", text=f"{t:g}", x=x(t), y=y + 15, class_="tick", text_anchor="middle")
        )
    marks.append(
        mark(
            "text",
            text="scenario time (s): 0 is the start of the workload",
            x=(LEFT + RIGHT) / 2,
            y=y + 28,
            class_="axt",
            text_anchor="middle",
        )
    )
    legend = (
        Legend(LANE_COLORS["all"], "joined to all its topics"),
        Legend(LANE_COLORS["some"], "to some"),
        Legend(LANE_COLORS["none"], "connected, no channel"),
        Legend("#24292f", "tick: lost connection; diamond: reconnected to another node"),
        Legend("#cf222e", "dot: witness"),
    )
    return Chart("timeline", "Timeline", "bands: fault windows", y + 34, tuple(marks), legend)


def _faults(ops: Sequence[Op]) -> dict[str, dict[str, Any]]:
    faults: dict[str, dict[str, Any]] = {}
    for op in ops:
        if op.f == "fault":
            fid = str(op.value.get("id"))
            entry = faults.setdefault(
                fid, {"kind": op.value.get("kind"), "target": op.value.get("target", "")}
            )
            entry[str(fault_edge(op))] = op.time
            figures = op.value.get("figures")
            if isinstance(figures, dict) and "broadcasts_taken" in figures:
                entry["took"] = (
                    f"; took {figures['broadcasts_taken']} of "
                    f"{figures.get('broadcasts_matched')} broadcasts it matched"
                )
    return dict(sorted(faults.items(), key=lambda kv: kv[1].get("start", 0.0)))


def _formations(facts: Facts, x: Axis, y: float, marks: list[Any]) -> float:
    """One row: each measurement of the readiness probe (`harness.run.probe`), from its heal until
    every node had received every node's probe (grey), or never (red, to its timeout)."""
    if not facts.formations:
        return y
    marks.append(mark("text", text="cluster forming", x=4, y=y + 9, class_="lbl"))
    for f in facts.formations:
        after = f" after {f.after}" if f.after else " before the workload"
        if f.seconds is None:
            title = (
                f"the cluster did not re-form{after} within {f.timeout:g} s"
                f" ({', '.join(f.missing[:6])} never got through)"
            )
        else:
            slowest = max(f.pairs.items(), key=lambda p: p[1] or 0.0, default=("", 0.0))
            title = (
                f"the cluster formed in {f.seconds:.2f} s{after}"
                + (f"; slowest pair {slowest[0]}: {slowest[1]:.2f} s" if slowest[0] else "")
                + "; "
                + ", ".join(f"{p} {t:.2f} s" for p, t in f.pairs.items() if t is not None)
            )
        marks.append(
            mark(
                "rect",
                title=title,
                x=x(f.start),
                y=y,
                width=max(2.0, x(f.end) - x(f.start)),
                height=10.0,
                fill="#cf222e" if f.seconds is None else "#8c959f",
                rx=2,
            )
        )
    return y + 16


def _exits(facts: Facts, x: Axis, y: float, marks: list[Any]) -> float:
    """One row when a node's process ended and no fault had stopped it: a cross each."""
    if not facts.node_exits:
        return y
    marks.append(mark("text", text="node exited", x=4, y=y + 9, class_="lbl"))
    for op in facts.node_exits:
        at = x(op.time)
        marks.append(
            mark(
                "path",
                title=exited(op),
                d=f"M{at - 4:.1f},{y + 1:.1f} l8,8 m0,-8 l-8,8",
                stroke="#cf222e",
                stroke_width="2",
            )
        )
    return y + 14


def _fit(text: str, chars: int) -> str:
    """A label cut to `chars` with an ellipsis (its tooltip has it whole)."""
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _phases(ops: Sequence[Op], x: Axis, y: float, marks: list[Any]) -> float:
    """Phase labels on the fewest rows where no two overlap (greedy, left to right)."""
    phases = [(op.time, str(op.value.get("phase"))) for op in ops if op.f == "phase"]
    if not phases:
        return y
    rows_end: list[float] = []
    placed = []
    for t, phase in phases:
        left = x(t) + 2
        row = next((i for i, right in enumerate(rows_end) if right < left), len(rows_end))
        if row == len(rows_end):
            rows_end.append(0.0)
        rows_end[row] = left + len(phase) * CHAR + 4
        placed.append((t, phase, row))
    height = 11.0 * len(rows_end)
    for t, phase, row in placed:
        marks.append(
            mark(
                "line",
                title=f"phase {phase} from {t:.2f} s",
                x1=x(t),
                x2=x(t),
                y1=y,
                y2=y + height,
                class_="phase",
            )
        )
        if x(t) + 2 + len(phase) * CHAR > RIGHT:  # near the right edge: the label to the left
            at = mark(
                "text", text=phase, x=x(t) - 2, y=y + 9 + 11 * row, class_="ph", text_anchor="end"
            )
        else:
            at = mark("text", text=phase, x=x(t) + 2, y=y + 9 + 11 * row, class_="ph")
        marks.append(at)
    return y + height + 4


def _deliveries(
    ops: Sequence[Op],
    facts: Facts,
    x: Axis,
    first: float,
    end: float,
    y: float,
    marks: list[Any],
) -> float:
    """Deliveries per bucket and the latency p50/max per bucket, each with its scale."""
    width = max((end - first) / BUCKETS, 0.05)
    buckets: dict[int, int] = {}
    latencies: dict[int, list[float]] = {}
    for d in facts.deliveries:
        k = math.floor(d.time / width)
        buckets[k] = buckets.get(k, 0) + 1
        publish = facts.publishes.get(d.id)
        if publish is not None:
            latencies.setdefault(k, []).append(d.time - publish.invoked)
    peak = max(buckets.values(), default=0)
    if peak:
        rate = Axis(0, peak, y + 40, y + 2)
        points = [(x((k + 0.5) * width), rate(v)) for k, v in sorted(buckets.items())]
        marks.append(mark("text", text=f"deliveries/{width:.2g} s", x=4, y=y + 18, class_="lbl"))
        marks.append(mark("text", text=f"0-{peak:,}", x=4, y=y + 30, class_="lbl"))
        marks.append(polyline(points, "#0969da", f"deliveries per {width:.2g} s, peak {peak:,}"))
        y += 46
    if latencies:
        stats = {k: (sorted(v)[len(v) // 2], max(v)) for k, v in sorted(latencies.items())}
        top = max(worst for _, worst in stats.values()) or 1e-3
        scale = Axis(0, top, y + 36, y + 2)
        marks.append(mark("text", text="latency p50/max", x=4, y=y + 16, class_="lbl"))
        marks.append(mark("text", text=f"(top {top * 1000:.0f} ms)", x=4, y=y + 27, class_="lbl"))
        for index, color, name in ((1, "#cf222e", "max"), (0, "#1a7f37", "p50")):
            points = [(x((k + 0.5) * width), scale(v[index])) for k, v in stats.items()]
            marks.append(polyline(points, color, f"latency {name} per {width:.2g} s"))
        y += 42
    return y


def _lanes(
    ops: Sequence[Op], facts: Facts, results: dict[str, Any], x: Axis, y: float, end: float
) -> tuple[list[Any], float]:
    clients = sorted(facts.expected_topics, key=natural)
    if not clients:
        return [], y
    visits: dict[str, list[tuple[float, str]]] = {}
    for op in ops:
        if op.f == "connect" and op.type == "ok":
            seen = visits.setdefault(op.process, [])
            node = op.node or "?"
            if not seen or seen[-1][1] != node:
                seen.append((op.time, node))
    named: dict[str, list[tuple[float, str]]] = {}
    for check in results.get("checks", []):
        for w in check.get("witnesses", []):
            t = _witness_time(w)
            if isinstance(w.get("client"), str) and t is not None:
                what = f"{check['name']}: {w.get('problem')}"
                named.setdefault(w["client"], []).append((t, what))
    end = min(end, facts.end)
    rank = {c: i for i, c in enumerate(clients)}
    chosen = sorted(clients, key=lambda c: (c not in named, c not in facts.losses, rank[c]))
    chosen = chosen[:MAX_LANES]

    def home(client: str) -> str:
        return visits.get(client, [(0.0, "?")])[0][1]

    chosen.sort(key=lambda c: (natural(home(c)), natural(c)))
    marks: list[Any] = []
    if len(chosen) < len(clients):
        marks.append(
            mark(
                "text",
                text=f"{len(chosen)} of {len(clients)} clients shown: those"
                " named in witnesses first, then those that lost a connection",
                x=4,
                y=y + 10,
                class_="lbl",
            )
        )
        y += 14
    for client in chosen:
        route = "→".join(node for _, node in visits.get(client, [(0.0, "?")]))
        marks.append(
            mark(
                "text",
                title=f"{client}: connected to {route}",
                text=f"{client} @{route}"[:22],
                x=4,
                y=y + 8,
                class_="lbl",
            )
        )
        for start, stop in facts.connections.get(client, []):
            marks.append(_segment(x, start, min(stop, end), y, "none", "connected, no channel"))
        for start, stop, level in _joined_levels(facts, client, end):
            marks.append(_segment(x, start, stop, y, level, f"joined to {level} of its topics"))
        for op in facts.losses.get(client, []):
            marks.append(
                mark(
                    "line",
                    title=f"{client} disconnect at {op.time:.2f} s, code {op.value.get('code')}",
                    x1=x(op.time),
                    x2=x(op.time),
                    y1=y - 1,
                    y2=y + 10,
                    stroke="#24292f",
                )
            )
        for t, node in visits.get(client, [])[1:]:
            cx = x(t)
            marks.append(
                mark(
                    "polygon",
                    title=f"{client} reconnected to {node} at {t:.2f} s",
                    points=f"{cx:.1f},{y - 1:.1f} {cx + 4:.1f},{y + 4.5:.1f}"
                    f" {cx:.1f},{y + 10:.1f} {cx - 4:.1f},{y + 4.5:.1f}",
                    fill="#24292f",
                )
            )
        for t, what in named.get(client, [])[:20]:
            marks.append(mark("circle", title=what, cx=x(t), cy=y + 4.5, r=3.5, fill="#cf222e"))
        y += 12
    return marks, y + 4


def _ticks(first: float, end: float) -> range:
    """Whole seconds, about fifteen of them, through 0 (the start of the workload)."""
    step = max(1, int((end - first) / 15))
    return range(math.floor(first / step) * step, int(end) + 1, step)


def _segment(x: Axis, start: float, stop: float, y: float, level: str, title: str) -> Any:
    return mark(
        "rect",
        title=f"{title}: {start:.2f} s to {stop:.2f} s",
        x=x(start),
        y=y,
        width=max(1.0, x(stop) - x(start)),
        height=9.0,
        fill=LANE_COLORS[level],
    )


def _joined_levels(facts: Facts, client: str, end: float) -> list[tuple[float, float, str]]:
    """Intervals in which the client was joined to all (`all`) or some (`some`) of its topics."""
    topics = facts.expected_topics.get(client, set())
    steps: list[tuple[float, int]] = []
    for topic in topics:
        for m in facts.memberships.get((client, topic), []):
            steps += [(m.start, 1), (min(m.end, end), -1)]
    steps.sort()
    levels: list[tuple[float, float, str]] = []
    count, last = 0, 0.0
    for t, delta in steps:
        if count and t > last:
            levels.append((last, t, "all" if count >= len(topics) else "some"))
        count, last = count + delta, t
    return levels


def _witness_time(w: dict[str, Any]) -> float | None:
    time = w.get("time")
    return float(time) if isinstance(time, int | float) else None
