"""The HTML report: one self-contained file a person can read in one screen.

A pure function of a run's `results.json` and `history.jsonl` (so `harness report RUN_DIR`
re-renders it offline). Top to bottom: the verdict, seed and the command that reproduces the
run; warnings when a pass may mean little (nothing delivered, no fault injected, faults that
disconnected nobody, a check with nothing to judge); one row per check; a timeline on a real
time axis (fault windows as bars and as bands across the lanes, run phases, deliveries per
bucket, then one lane per client grouped by node: connected, joined to some or all of its
topics, disconnects, witness markers); then the witnesses of every check that failed, each with
the fault windows around it. Inline CSS and SVG only: no script, no network, opens offline.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .checkers._facts import Facts, facts_of
from .history import Op

COLORS = {
    "valid": "#1a7f37",
    "invalid": "#cf222e",
    "unknown": "#9a6700",
    "interrupted": "#6e7781",
    "error": "#9a6700",
}
FAULT_COLORS = ["#f0883e", "#a371f7", "#3fb950", "#58a6ff", "#db61a2", "#d29922"]
WIDTH, LEFT = 960, 110
MAX_LANES = 40  # client lanes drawn; the rest are counted in a notice
LANE_COLORS = {"all": "#2da44e", "some": "#aceebb", "none": "#d0d7de"}
DISRUPTIVE = frozenset(
    {
        "down",
        "kill",
        "terminate",
        "restart",
        "rolling_restart",
        "timeout",
        "reset_peer",
        "client_close",
        "client_crash",
    }
)
CSS = " ".join(
    [
        "body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px;color:#1f2328;max-width:1000px}",
        "h1{font-size:20px;margin:0 0 4px} h3{font-size:15px;margin:14px 0 4px}",
        ".badge{color:#fff;border-radius:10px;padding:1px 8px;font-size:12px;",
        "text-transform:uppercase}",
        "table{border-collapse:collapse;width:100%}",
        "td{border-top:1px solid #d0d7de;padding:4px 6px;vertical-align:top}",
        ".d{color:#656d76;font-size:12px} .s{font-size:12px}",
        "pre{font-size:11px;background:#f6f8fa;padding:4px;margin:2px 0 8px;white-space:pre-wrap}",
        ".lbl,.tick,.ph{font-size:10px;fill:#656d76}",
        ".phase{stroke:#d0d7de;stroke-dasharray:3 3} .err{color:#cf222e}",
        ".warn{background:#fff8c5;border:1px solid #d4a72c;padding:4px 8px;margin:6px 0}",
        "code{background:#f6f8fa;padding:1px 4px;font-size:12px}",
        ".key{display:inline-block;width:10px;height:10px;margin:0 3px 0 10px}",
    ]
)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _timeline(ops: Sequence[Op], results: dict[str, Any], facts: Facts) -> str:
    if not ops:
        return "<p>empty history</p>"
    end = max(op.time for op in ops) or 1.0
    scale = (WIDTH - LEFT - 10) / end

    def x(t: float) -> float:
        return LEFT + t * scale

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
    width = max(end / 120, 0.05)
    for op in ops:
        if op.f == "recv":
            buckets[int(op.time / width)] = buckets.get(int(op.time / width), 0) + 1
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
        f'<text x="{x(t):.1f}" y="{y + 14}" class="tick">{t:g}s</text>'
        for t in range(0, int(end) + 1, max(1, int(end / 10) or 1))
    )
    return (
        f'<svg width="{WIDTH}" height="{y + 50}" role="img" aria-label="timeline">'
        + "".join(rows)
        + ticks
        + "</svg>"
    )


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


def _warnings(results: dict[str, Any], ops: Sequence[Op], facts: Facts) -> list[str]:
    """Reasons a pass may mean little, Jepsen-style: the run did not exercise what it claims."""
    warnings: list[str] = []
    if not ops:
        return ["the history is empty: nothing was observed"]
    if not facts.deliveries:
        warnings.append("no message was delivered to any client: delivery was never exercised")
    kinds = {w.kind for w in facts.windows}
    if not facts.windows:
        warnings.append("no fault was injected: this run shows steady-state behaviour only")
    elif kinds & DISRUPTIVE and not facts.losses:
        warnings.append(
            f"faults ran ({', '.join(sorted(kinds & DISRUPTIVE))}) but no client lost its"
            " connection: reconnect and rejoin were not exercised"
        )
    checks = {c["name"]: c.get("summary", {}) for c in results.get("checks", [])}
    if checks.get("delivery", {}).get("outside_faults") == 0 and facts.windows:
        warnings.append(
            "delivery: no acknowledged message was published outside the fault windows,"
            " so zero loss outside faults was not tested"
        )
    if checks.get("durability", {}).get("acknowledged") == 0:
        warnings.append("durability: no write was acknowledged, so none could be checked")
    if "rejoin" in checks and checks["rejoin"].get("losses") == 0 and facts.windows:
        warnings.append("rejoin: no disconnect happened, so no rejoin was judged")
    return warnings


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={_flat(v)}" for k, v in value.items())
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def _witness(w: dict[str, Any]) -> str:
    """One line per field; a list of records (deliveries, faults) one line per record."""
    lines = []
    for key, value in w.items():
        if key == "problem":
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{key}:")
            lines.extend(f"  {_flat(v)}" for v in value)
        elif isinstance(value, list) and not value:
            lines.append(f"{key}: none")
        else:
            lines.append(f"{key}: {_flat(value)}")
    return "\n".join(lines)


def _witness_time(w: dict[str, Any]) -> float | None:
    for key in ("published_at", "acknowledged_at"):
        if isinstance(w.get(key), int | float):
            return float(w[key])
    for key in ("lost", "delivery", "later"):
        if isinstance(w.get(key), dict) and "time" in w[key]:
            return float(w[key]["time"])
    if w.get("deliveries"):
        return float(w["deliveries"][-1]["time"])
    return None


def _summary(summary: dict[str, Any]) -> str:
    parts = []
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        parts.append(f"{_e(key)}: <b>{_e(value)}</b>")
    return " &middot; ".join(parts)


def render(results: dict[str, Any], ops: Sequence[Op], run_dir: Path | None = None) -> str:
    """The report's HTML. `run_dir` only makes the reproduce command a full path."""
    validity = results.get("validity", "unknown")
    facts = facts_of(ops)
    checks = results.get("checks", [])
    rows = "".join(
        f'<tr><td><span class="badge" style="background:{COLORS.get(c["validity"], "#999")}">'
        f'{_e(c["validity"])}</span></td><td><b>{_e(c["name"])}</b><br><span class="d">'
        f'{_e(c.get("description", ""))}</span></td><td class="s">{_summary(c.get("summary", {}))}'
        f"{'<br><i>' + _e(c['error']) + '</i>' if c.get('error') else ''}</td></tr>"
        for c in checks
    )
    details = []
    for c in checks:
        if not c.get("witnesses"):
            continue
        items = "".join(
            f"<li><b>{_e(w.get('problem', ''))}</b><pre>{_e(_witness(w))}</pre></li>"
            for w in c["witnesses"][:5]
        )
        more = len(c["witnesses"]) - 5
        details.append(
            f"<h3>{_e(c['name'])}: {len(c['witnesses'])} witness(es)</h3><ol>{items}</ol>"
            + (f"<p>{more} more in results.json</p>" if more > 0 else "")
        )
    error = f'<p class="err">{_e(results["error"])}</p>' if results.get("error") else ""
    badge = COLORS.get(validity, "#999")
    about = " &middot; ".join(
        [
            f"seed {_e(results.get('seed'))}",
            f"{_e(results.get('duration'))}s",
            f"exit code {_e(results.get('exit_code'))}",
            f"{len(ops):,} history events",
            f"source {_e(results.get('source'))}",
            f"harness {_e(results.get('harness_version'))}",
        ]
    )
    title = f"{_e(results.get('scenario'))}: {_e(validity)}"
    scenario_path = run_dir / "scenario.yaml" if run_dir is not None else Path("scenario.yaml")
    reproduce = (
        f'<div class="d">reproduce: <code>harness run {_e(scenario_path)} --seed'
        f" {_e(results.get('seed'))}</code> (the resolved scenario of this run)</div>"
    )
    warnings = "".join(f'<div class="warn">{_e(w)}</div>' for w in _warnings(results, ops, facts))
    legend = (
        '<div class="d">lanes:'
        + "".join(
            f'<span class="key" style="background:{LANE_COLORS[k]}"></span>{label}'
            for k, label in (
                ("all", "joined to all its topics"),
                ("some", "to some"),
                ("none", "connected, no channel"),
            )
        )
        + " &middot; black tick: disconnect &middot; red dot: witness &middot; bands: faults</div>"
    )
    return "\n".join(
        [
            "<!doctype html>",
            f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title>',
            f"<style>{CSS}</style></head><body>",
            f"<h1>{_e(results.get('scenario'))} "
            f'<span class="badge" style="background:{badge}">{_e(validity)}</span></h1>',
            f'<div class="d">{about}</div>',
            reproduce,
            error,
            warnings,
            f"<table>{rows}</table>",
            f"<h3>Timeline</h3>{legend}{_timeline(ops, results, facts)}",
            "".join(details),
            "</body></html>",
        ]
    )
