"""The report's timeline: one SVG on a real time axis, drawn from the history alone.

The axis is the scenario's clock: 0 is the start of the workload, where a fault `at: 3s` is
drawn at 3 s; set-up is to the left of 0. Rows from the top: one bar per fault window;
deliveries per time bucket; lost connections; witness markers; then one lane per client grouped
by the node it first connected to (grey: connected with no channel joined, light green: joined to
some of its topics, green: to all),
with the fault windows as bands across the lanes, so a rejoin gap or a client that came back
deaf shows at a glance. Capped at `MAX_LANES` lanes, clients named by witnesses first.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from typing import Any

from ..checkers import Facts
from ..history import Op

WIDTH, LEFT = 960, 110
FAULT_COLORS = ["#f0883e", "#a371f7", "#3fb950", "#58a6ff", "#db61a2", "#d29922"]
MAX_LANES = 40  # client lanes drawn; the rest are counted in a notice
LANE_COLORS = {"all": "#2da44e", "some": "#aceebb", "none": "#d0d7de"}


def _e(value: Any) -> str:
    return html.escape(str(value))


def timeline(ops: Sequence[Op], results: dict[str, Any], facts: Facts) -> str:
    if not ops:
        return "<p>empty history</p>"
    # the scenario's clock: 0 is the start of the workload, set-up is negative
    first = min(0.0, min(op.time for op in ops))
    end = max(op.time for op in ops) or 1.0
    scale = (WIDTH - LEFT - 10) / max(end - first, 1e-3)

    def x(t: float) -> float:
        return LEFT + (t - first) * scale

    rows: list[str] = []
    y: float = 10
    faults: dict[str, dict[str, Any]] = {}
    for op in ops:
        if op.f == "fault":
            fid = str(op.value.get("id"))
            entry = faults.setdefault(
                fid, {"kind": op.value.get("kind"), "target": op.value.get("target", "")}
            )
            entry[str(op.value.get("phase"))] = op.time
    order = [fid for fid, _ in sorted(faults.items(), key=lambda kv: kv[1].get("start", 0))]
    for i, fid in enumerate(order):
        f = faults[fid]
        start = f.get("start", 0.0)
        stop = f.get("stop", start + 0.05)
        color = FAULT_COLORS[i % len(FAULT_COLORS)]
        label = f"{fid} {f['kind']} {f['target']}"
        rows.append(
            f'<text x="4" y="{y + 11}" class="lbl">{_e(fid)} {_e(f["kind"])}</text>'
            f'<rect x="{x(start):.1f}" y="{y}" width="{max(2.0, (stop - start) * scale):.1f}"'
            f' height="14" fill="{color}" rx="2"><title>{_e(label)}: {start:.2f}s to'
            f" {stop:.2f}s</title></rect>"
        )
        y += 18
    phases = [(op.time, op.value.get("phase")) for op in ops if op.f == "phase"]
    buckets: dict[int, int] = {}
    width = max((end - first) / 120, 0.05)
    for op in ops:
        if op.f == "recv":
            bucket = math.floor(op.time / width)
            buckets[bucket] = buckets.get(bucket, 0) + 1
    peak = max(buckets.values(), default=1)
    spark_y = y + 4
    points = " ".join(
        f"{x(k * width):.1f},{spark_y + 40 - 40 * v / peak:.1f}" for k, v in sorted(buckets.items())
    )
    rows.append(
        f'<text x="4" y="{spark_y + 24}" class="lbl">deliveries/{width:.2g}s</text>'
        f'<polyline points="{points}" fill="none" stroke="#0969da" stroke-width="1.2"/>'
    )
    y = spark_y + 48
    latency_rows, y = _latency(facts, x, y, width)
    rows.extend(latency_rows)
    distress_rows, y = _distress(facts, results, x, y)
    rows.extend(distress_rows)
    rows.append(f'<text x="4" y="{y + 9}" class="lbl">lost connections</text>')
    for op in (op for lost in facts.losses.values() for op in lost):
        rows.append(
            f'<line x1="{x(op.time):.1f}" x2="{x(op.time):.1f}" y1="{y}" y2="{y + 12}"'
            f' stroke="#6e7781"><title>{_e(op.process)} {op.time:.2f}s code'
            f" {_e(op.value.get('code'))}</title></line>"
        )
    y += 16
    lanes_top = y
    rows.append(f'<text x="4" y="{y + 9}" class="lbl">witnesses</text>')
    for check in results.get("checks", []):
        for w in check.get("witnesses", [])[:50]:
            t = _witness_time(w)
            if t is not None:
                rows.append(
                    f'<circle cx="{x(t):.1f}" cy="{y + 6}" r="3.5" fill="#cf222e">'
                    f"<title>{_e(check['name'])}: {_e(w.get('problem', ''))}</title>"
                    "</circle>"
                )
    y += 16
    colors = {fid: FAULT_COLORS[i % len(FAULT_COLORS)] for i, fid in enumerate(order)}
    lanes, y = _lanes(ops, facts, results, x, y, end)
    rows.extend(
        f'<rect x="{x(w.start):.1f}" y="{lanes_top}"'
        f' width="{max(1.0, (w.end - w.start) * scale):.1f}" height="{y - lanes_top}"'
        f' fill="{colors.get(w.id, "#999")}" opacity="0.13">'
        f"<title>{_e(w.id)} {_e(w.kind)} {_e(w.target)}</title></rect>"
        for w in facts.windows
    )
    rows.extend(lanes)
    for i, (t, phase) in enumerate(phases):  # labels alternate rows so neighbours stay legible
        label_y = y + 34 + (i % 2) * 11
        rows.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="0" y2="{label_y - 8}" class="phase"/>'
            f'<text x="{x(t) + 2:.1f}" y="{label_y}" class="ph">{_e(phase)}</text>'
        )
    ticks = "".join(
        f'<text x="{x(t):.1f}" y="{y + 14}" class="tick">{t:g}s</text>' for t in _ticks(first, end)
    )
    return (
        f'<svg width="{WIDTH}" height="{y + 50}" role="img" aria-label="timeline">'
        + "".join(rows)
        + ticks
        + "</svg>"
    )


def _distress(
    facts: Facts, results: dict[str, Any], x: Callable[[float], float], y: float
) -> tuple[list[str], float]:
    """The harness's own lag (worst loop or publish lag per sample, 0-2 s), and its distress
    windows as orange bars: where timing verdicts could not be trusted."""
    if not facts.load:
        return [], y
    rows = [f'<text x="4" y="{y + 12}" class="lbl">harness lag (0-2s)</text>']
    for d in results.get("distress", []):
        start, end = float(d.get("start", 0.0)), float(d.get("end", 0.0))
        rows.append(
            f'<rect x="{x(start):.1f}" y="{y}" width="{max(1.0, x(end) - x(start)):.1f}"'
            f' height="18" fill="#fb8f44" opacity="0.35"><title>harness distress:'
            f" {_e(d.get('reason', ''))}</title></rect>"
        )
    for op in facts.load:
        lag = max(float(op.value.get("lag", 0.0)), float(op.value.get("publish_lag", 0.0)))
        height = min(18.0, 18.0 * lag / 2.0)
        rows.append(
            f'<line x1="{x(op.time):.1f}" x2="{x(op.time):.1f}" y1="{y + 18:.1f}"'
            f' y2="{y + 18 - max(height, 0.5):.1f}" stroke="#bc4c00">'
            f"<title>{_e(op.process)} {op.time:.1f}s lag {lag * 1000:.0f} ms</title></line>"
        )
    return rows, y + 24


def _latency(
    facts: Facts, x: Callable[[float], float], y: float, width: float
) -> tuple[list[str], float]:
    """Delivery latency (receive time minus publish time) per bucket: p50 and max, one scale."""
    per_bucket: dict[int, list[float]] = {}
    for op in facts.deliveries:
        publish = facts.publishes.get(str(op.value.get("id")))
        if publish is not None:
            bucket = math.floor(op.time / width)
            per_bucket.setdefault(bucket, []).append(op.time - publish.invoked)
    if not per_bucket:
        return [], y
    stats = {k: (sorted(v)[len(v) // 2], max(v)) for k, v in sorted(per_bucket.items())}
    top = max(worst for _, worst in stats.values()) or 1e-3
    rows = [
        f'<text x="4" y="{y + 16}" class="lbl">latency p50/max</text>'
        f'<text x="4" y="{y + 27}" class="lbl">(top {top * 1000:.0f} ms)</text>'
    ]
    for index, color in ((1, "#cf222e"), (0, "#1a7f37")):
        points = " ".join(
            f"{x((k + 0.5) * width):.1f},{y + 36 - 34 * v[index] / top:.1f}"
            for k, v in stats.items()
        )
        rows.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1"/>')
    return rows, y + 42


def _lanes(
    ops: Sequence[Op],
    facts: Facts,
    results: dict[str, Any],
    x: Callable[[float], float],
    y: float,
    end: float,
) -> tuple[list[str], float]:
    """One lane per client, grouped by the node it first joined through: grey while connected
    with no channel joined, light green while joined to some of its topics, green while joined to
    all of them; ticks for disconnects, red dots for the witnesses that name the client."""
    clients = sorted(facts.expected_topics, key=_natural)
    if not clients:
        return [], y
    home: dict[str, str] = {}
    for op in ops:
        if op.f == "connect" and op.type == "ok":
            home.setdefault(op.process, op.node or "?")
    named: dict[str, list[tuple[float, str]]] = {}
    for check in results.get("checks", []):
        for w in check.get("witnesses", []):
            t = _witness_time(w)
            if isinstance(w.get("client"), str) and t is not None:
                named.setdefault(w["client"], []).append(
                    (t, f"{check['name']}: {w.get('problem')}")
                )
    end = min(end, facts.end)
    rank = {c: i for i, c in enumerate(clients)}
    chosen = sorted(clients, key=lambda c: (c not in named, c not in facts.losses, rank[c]))
    chosen = chosen[:MAX_LANES]
    chosen.sort(key=lambda c: (_natural(home.get(c, "?")), _natural(c)))
    rows: list[str] = []
    if len(chosen) < len(clients):
        rows.append(
            f'<text x="4" y="{y + 10}" class="lbl">{len(chosen)} of {len(clients)} clients shown:'
            " those named in witnesses first, then those that lost a connection</text>"
        )
        y += 14
    for client in chosen:
        rows.append(
            f'<text x="4" y="{y + 8}" class="lbl">{_e(client)} @{_e(home.get(client, "?"))}</text>'
        )
        for start, stop in facts.connections.get(client, []):
            rows.append(_segment(x, start, min(stop, end), y, "none", "connected, no channel"))
        for start, stop, level in _joined_levels(facts, client, end):
            rows.append(_segment(x, start, stop, y, level, f"joined to {level} of its topics"))
        for op in facts.losses.get(client, []):
            rows.append(
                f'<line x1="{x(op.time):.1f}" x2="{x(op.time):.1f}" y1="{y - 1}" y2="{y + 10}"'
                f' stroke="#24292f"><title>{_e(client)} disconnect at {op.time:.2f}s, code'
                f" {_e(op.value.get('code'))}</title></line>"
            )
        for t, what in named.get(client, [])[:20]:
            rows.append(
                f'<circle cx="{x(t):.1f}" cy="{y + 4.5}" r="3.5" fill="#cf222e">'
                f"<title>{_e(what)}</title></circle>"
            )
        y += 12
    return rows, y + 4


def _ticks(first: float, end: float) -> range:
    """Whole seconds, about ten of them, through 0 (the start of the workload)."""
    step = max(1, int((end - first) / 10))
    return range(math.floor(first / step) * step, int(end) + 1, step)


def _segment(
    x: Callable[[float], float], start: float, stop: float, y: float, level: str, title: str
) -> str:
    return (
        f'<rect x="{x(start):.1f}" y="{y}" width="{max(1.0, x(stop) - x(start)):.1f}" height="9"'
        f' fill="{LANE_COLORS[level]}"><title>{_e(title)}: {start:.2f}s to {stop:.2f}s</title>'
        "</rect>"
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


def _natural(name: str) -> tuple[str, int]:
    """c2 before c10."""
    digits = len(name) - len(name.rstrip("0123456789"))
    return (name[: len(name) - digits], int(name[len(name) - digits :] or -1))


def _witness_time(w: dict[str, Any]) -> float | None:
    time = w.get("time")
    return float(time) if isinstance(time, int | float) else None
