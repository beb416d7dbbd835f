"""The report's charts, each a pure function of the run's facts (the scenario's clock).

    latency       delivery latency as a distribution (CDF, log time axis): steady state vs
                  inside fault windows (+3 s), so a tail that only faults cause reads as such
    rejoin        time from a lost connection or a crashed channel to the channel's next join
    publishes     publishes per time bucket by outcome: acknowledged, failed, timed out, never
                  answered
    nodes         clients connected and channels joined, per node, over time
    distress      the load generator's own lag per process over time, distress windows shaded

Every chart has axes with units and a tooltip on every mark; a chart with nothing to draw says
why instead. Sizes are bounded whatever the run: distributions are drawn at 200 quantiles,
series at `BUCKETS` time buckets.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import Any

from ..checkers import Facts
from ..history import Op
from ..vocabulary import natural
from ._svg import Chart, Frame, Legend, mark, polyline
from ._svg import frame as full_frame

BUCKETS = 120
HALF = 640.0  # the charts sit two to a row: a narrower box keeps their text legible


def _chart(
    key: str,
    title: str,
    caption: str,
    height: float,
    marks: tuple[Any, ...],
    legend: tuple[Legend, ...] = (),
    *,
    empty: str = "",
) -> Chart:
    return Chart(key, title, caption, height, marks, legend, HALF, empty)


def frame(
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    height: float,
    *,
    x_title: str,
    y_title: str,
    x_log: bool = False,
) -> Frame:
    return full_frame(
        x_range, y_range, height, x_title=x_title, y_title=y_title, x_log=x_log, width=HALF
    )


QUANTILES = 200
STEADY_MARGIN = 3.0  # seconds after a fault window still counted as "inside faults"
NODE_COLORS = ["#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e", "#57606a"]
OUTCOME_COLORS = {"ok": "#2da44e", "fail": "#cf222e", "info": "#d4a72c", "invoke": "#8c959f"}
OUTCOME_TEXT = {
    "ok": "acknowledged",
    "fail": "refused",
    "info": "timed out",
    "invoke": "never answered",
}


def charts(ops: Sequence[Op], facts: Facts, results: dict[str, Any]) -> list[Chart]:
    return [
        latency(facts),
        rejoin(facts),
        publishes(facts),
        nodes(facts, connected_per_node(ops, facts.end)),
        distress(facts, results),
    ]


def _quantiles(values: Sequence[float]) -> list[tuple[float, float]]:
    """(value, cumulative share) at up to QUANTILES points of a sorted list."""
    n = len(values)
    if n == 0:
        return []
    step = max(1, n // QUANTILES)
    picks = [*range(0, n, step), n - 1]
    return [(values[i], (i + 1) / n) for i in sorted(set(picks))]


def latency(facts: Facts) -> Chart:
    steady: list[float] = []
    faulted: list[float] = []
    seen: set[tuple[str, str]] = set()
    for d in facts.deliveries:
        key = (d.client, d.id)
        publish = facts.publishes.get(d.id)
        if publish is None or key in seen:
            continue
        seen.add(key)
        took = max(d.time - publish.invoked, 1e-4) * 1000
        inside = facts.windows_near(publish.invoked, d.time, STEADY_MARGIN)
        (faulted if inside else steady).append(took)
    if not steady and not faulted:
        return _chart("latency", "Delivery latency", "", 0, (), empty="no delivery to draw")
    steady.sort()
    faulted.sort()
    everything = steady + faulted
    low = 10 ** math.floor(math.log10(max(min(everything), 0.1)))
    high = 10 ** math.ceil(math.log10(max(everything)))
    plot = frame(
        (low, high),
        (0, 100),
        230,
        x_title="latency, publish to delivery (ms, log)",
        y_title="% of deliveries",
        x_log=True,
    )
    legend = []
    for values, color, name in ((steady, "#1a7f37", "steady"), (faulted, "#cf222e", "faults")):
        if not values:
            continue
        points = [(plot.x(v), plot.y(share * 100)) for v, share in _quantiles(values)]
        p50, p99 = values[len(values) // 2], values[min(len(values) - 1, int(len(values) * 0.99))]
        text = f"{name}: {len(values):,} deliveries, p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        plot.marks.append(polyline(points, color, text))
        for value, share in _quantiles(values)[:: max(1, QUANTILES // 20)]:
            plot.marks.append(
                mark(
                    "circle",
                    title=f"{name}: {share * 100:.1f}% within {value:.1f} ms",
                    cx=plot.x(value),
                    cy=plot.y(share * 100),
                    r=2.5,
                    fill=color,
                )
            )
        legend.append(Legend(color, text))
    caption = (
        f"first deliveries only; 'faults' = published or delivered inside a fault window"
        f" or {STEADY_MARGIN:g} s after it"
    )
    return _chart("latency", "Delivery latency", caption, 230, tuple(plot.marks), tuple(legend))


def rejoin_delays(facts: Facts) -> tuple[list[float], int]:
    """Seconds from each loss (a disconnect, or a crashed channel) to that channel's next join;
    and how many losses never saw one."""
    starts: dict[tuple[str, str], list[float]] = {}
    for key, members in facts.memberships.items():
        starts[key] = sorted(m.start for m in members)
    delays: list[float] = []
    missed = 0
    losses: list[tuple[str, float, str | None]] = [
        (op.process, op.time, None) for ops in facts.losses.values() for op in ops
    ]
    losses += [(op.process, op.time, str(op.value.get("topic"))) for op in facts.channel_errors]
    for client, at, only in losses:
        topics = [only] if only else sorted(facts.expected_topics.get(client, ()))
        for topic in topics:
            joins = starts.get((client, topic), [])
            i = bisect.bisect_right(joins, at)
            if i < len(joins):
                delays.append(joins[i] - at)
            else:
                missed += 1
    return sorted(delays), missed


BINS = 24


def histogram(
    values: Sequence[float],
    *,
    x_title: str,
    y_title: str,
    fill: str,
    says: Callable[[int, float, float], str],
    scale: float = 1.0,
) -> Frame:
    """A histogram of `values` in `BINS` bins from 0 (drawn times `scale`: 1000 for ms), each
    bar's tooltip `says(count, low, high)` in the drawn unit."""
    top = (max(values) * 1.05 or 0.001) * scale
    width = top / BINS
    counts = [0] * BINS
    for value in values:
        counts[min(BINS - 1, int(value * scale / width))] += 1
    plot = frame((0, top), (0, max(counts) * 1.1), 200, x_title=x_title, y_title=y_title)
    for i, count in enumerate(counts):
        if count:
            x0, x1 = plot.x(i * width), plot.x((i + 1) * width)
            plot.marks.append(
                mark(
                    "rect",
                    title=says(count, i * width, (i + 1) * width),
                    x=x0 + 1,
                    y=plot.y(count),
                    width=max(1.0, x1 - x0 - 2),
                    height=plot.y(0) - plot.y(count),
                    fill=fill,
                )
            )
    return plot


def rejoin(facts: Facts) -> Chart:
    delays, missed = rejoin_delays(facts)
    if not delays:
        why = "no channel was lost and joined again" + (f" ({missed} never were)" if missed else "")
        return _chart("rejoin", "Time to rejoin", "", 0, (), empty=why)
    plot = histogram(
        delays,
        x_title="seconds from loss to rejoin",
        y_title="channels",
        fill="#0969da",
        says=lambda n, low, high: f"{n} rejoined {low:.2f}-{high:.2f} s after the loss",
    )
    p50, worst = delays[len(delays) // 2], delays[-1]
    caption = f"{len(delays):,} rejoins: p50 {p50:.2f} s, max {worst:.2f} s" + (
        f"; {missed} lost channel(s) never joined again" if missed else ""
    )
    return _chart("rejoin", "Time to rejoin", caption, 200, tuple(plot.marks))


def _buckets(facts: Facts) -> tuple[float, float, float]:
    start = min(facts.start, 0.0)
    end = max(facts.end, start + 1.0)
    return start, end, (end - start) / BUCKETS


def publishes(facts: Facts) -> Chart:
    if not facts.publishes:
        return _chart("publishes", "Publishes", "", 0, (), empty="nothing was published")
    start, end, width = _buckets(facts)
    order = ("ok", "fail", "info", "invoke")
    counts = [dict.fromkeys(order, 0) for _ in range(BUCKETS)]
    totals = dict.fromkeys(order, 0)
    for p in facts.publishes.values():
        i = min(BUCKETS - 1, max(0, int((p.invoked - start) / width)))
        outcome = p.outcome if p.outcome in order else "invoke"
        counts[i][outcome] += 1
        totals[outcome] += 1
    peak = max(sum(c.values()) for c in counts) or 1
    plot = frame(
        (start, end),
        (0, peak * 1.1),
        200,
        x_title="scenario time (s)",
        y_title=f"publishes / {width:.2g} s",
    )
    _bands(plot, facts)
    for i, bucket in enumerate(counts):
        base = 0
        for outcome in order:
            n = bucket[outcome]
            if not n:
                continue
            x0, x1 = plot.x(start + i * width), plot.x(start + (i + 1) * width)
            plot.marks.append(
                mark(
                    "rect",
                    title=f"{start + i * width:.1f} s: {n} {OUTCOME_TEXT[outcome]}",
                    x=x0,
                    y=plot.y(base + n),
                    width=max(0.5, x1 - x0 - 0.5),
                    height=plot.y(base) - plot.y(base + n),
                    fill=OUTCOME_COLORS[outcome],
                )
            )
            base += n
    legend = tuple(
        Legend(OUTCOME_COLORS[o], f"{OUTCOME_TEXT[o]} ({totals[o]:,})") for o in order if totals[o]
    )
    return _chart(
        "publishes",
        "Publishes by outcome",
        "by the time each was first sent; retries keep their first send",
        200,
        tuple(plot.marks),
        legend,
    )


def _bands(plot: Any, facts: Facts) -> None:
    for w in facts.windows:
        plot.marks.append(
            mark(
                "rect",
                title=f"{w.id} {w.kind} {w.target}: {w.start:.2f}-{w.end:.2f} s",
                x=plot.x(w.start),
                y=plot.y.end,
                width=max(1.0, plot.x(w.end) - plot.x(w.start)),
                height=plot.y.start - plot.y.end,
                class_="band",
            )
        )


def _count_at(
    intervals: dict[str, list[tuple[float, float]]], times: Sequence[float]
) -> dict[str, list[int]]:
    """Per key, how many intervals cover each time (a sweep over sorted ends)."""
    counted = {}
    for key, spans in intervals.items():
        starts = sorted(s for s, _ in spans)
        ends = sorted(e for _, e in spans)
        counted[key] = [
            bisect.bisect_right(starts, t) - bisect.bisect_right(ends, t) for t in times
        ]
    return counted


PANEL = 110.0  # the height of one node's panel in "Clients per node"


def nodes(facts: Facts, connected: dict[str, list[tuple[float, float]]]) -> Chart:
    """Small multiples: one panel per node on one time axis and one scale (lines of nodes that
    carry the same clients would hide each other on a single plot)."""
    joined: dict[str, list[tuple[float, float]]] = {}
    for members in facts.memberships.values():
        for m in members:
            joined.setdefault(m.node or "?", []).append((m.start, min(m.end, facts.end)))
    if not joined and not connected:
        return _chart("nodes", "Clients per node", "", 0, (), empty="no client connected")
    start, end, width = _buckets(facts)
    times = [start + (i + 0.5) * width for i in range(BUCKETS)]
    counts_joined = _count_at(joined, times)
    counts_connected = _count_at(connected, times)
    peak = (
        max(
            [max(v, default=0) for v in [*counts_joined.values(), *counts_connected.values()]]
            or [1]
        )
        or 1
    )
    names = sorted(set(joined) | set(connected), key=natural)
    marks: list[Any] = []
    for i, node in enumerate(names):
        last = i == len(names) - 1
        plot = full_frame(
            (start, end),
            (0, peak * 1.15),
            PANEL + (14 if last else 0),
            x_title="scenario time (s)" if last else "",
            y_title="clients",
            width=HALF,
            top=i * PANEL,
        )
        _bands(plot, facts)
        color = NODE_COLORS[i % len(NODE_COLORS)]
        for counts, name, dash in (
            (counts_connected, "sockets connected", "4 3"),
            (counts_joined, "channels joined", ""),
        ):
            series = counts.get(node)
            if not series:
                continue
            points = [(plot.x(t), plot.y(n)) for t, n in zip(times, series, strict=True)]
            extra = {"stroke_dasharray": dash} if dash else {}
            plot.marks.append(
                polyline(points, color, f"{node}: {name} (max {max(series)})", **extra)
            )
        plot.marks.append(
            mark("text", text=node, x=plot.x.start + 6, y=plot.y.end + 10, class_="axt")
        )
        marks.extend(plot.marks)
    return _chart(
        "nodes",
        "Clients per node",
        "one panel per node, one scale; solid: channels joined, dashed: sockets connected,"
        f" sampled at the middle of each of {BUCKETS} buckets; a client that reconnects to"
        " another node leaves one panel for another",
        len(names) * PANEL + 14,
        tuple(marks),
    )


def connected_per_node(ops: Sequence[Op], end: float) -> dict[str, list[tuple[float, float]]]:
    """Sockets open per node: from each `connect` ok (its node) to the client's next
    `disconnect`, or the end."""
    per_node: dict[str, list[tuple[float, float]]] = {}
    open_since: dict[str, tuple[str, float]] = {}
    for op in ops:
        if op.f == "connect" and op.type == "ok":
            open_since[op.process] = (op.node or "?", op.time)
        elif op.f == "disconnect" and op.process in open_since:
            node, since = open_since.pop(op.process)
            per_node.setdefault(node, []).append((since, op.time))
    for node, since in open_since.values():
        per_node.setdefault(node, []).append((since, end))
    return per_node


def distress(facts: Facts, results: dict[str, Any]) -> Chart:
    if not facts.load:
        return _chart(
            "distress",
            "Load generator",
            "",
            0,
            (),
            empty="no load samples in this history (an older run?)",
        )
    start, end, _ = _buckets(facts)
    per_process: dict[str, list[tuple[float, float]]] = {}
    for op in facts.load:
        lag = max(float(op.value.get("lag", 0.0)), float(op.value.get("publish_lag", 0.0)))
        per_process.setdefault(op.process, []).append((op.time, lag))
    top = max(0.5, max(lag for series in per_process.values() for _, lag in series) * 1.1)
    plot = frame(
        (start, end), (0, top), 180, x_title="scenario time (s)", y_title="harness lag (s)"
    )
    for d in results.get("distress", []):
        d_start, d_end = float(d.get("start", 0.0)), float(d.get("end", 0.0))
        plot.marks.append(
            mark(
                "rect",
                title=f"harness distress: {d.get('reason', '')}",
                x=plot.x(d_start),
                y=plot.y.end,
                width=max(1.0, plot.x(d_end) - plot.x(d_start)),
                height=plot.y.start - plot.y.end,
                class_="distress",
            )
        )
    legend = []
    for i, (process, series) in enumerate(sorted(per_process.items())):
        color = NODE_COLORS[i % len(NODE_COLORS)]
        step = max(1, len(series) // (BUCKETS * 2))
        points = [(plot.x(t), plot.y(lag)) for t, lag in series[::step]]
        worst = max(lag for _, lag in series)
        plot.marks.append(polyline(points, color, f"{process}: worst lag {worst * 1000:.0f} ms"))
        legend.append(Legend(color, f"{process} (worst {worst * 1000:.0f} ms)"))
    windows = len(results.get("distress", []))
    caption = "the worst of event-loop lag and publish lag per sample; " + (
        f"{windows} distress window(s) shaded: timing verdicts there are not trusted"
        if windows
        else "no distress: the load generator kept up"
    )
    return _chart("distress", "Load generator", caption, 180, tuple(plot.marks), tuple(legend))
