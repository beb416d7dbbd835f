"""The HTML report: one self-contained file a person can read in one screen.

A pure function of a run's `results.json` and `history.jsonl` (so `harness report RUN_DIR`
re-renders it offline); `harness.rundir.write_report` reads them and writes the page. Top to
bottom: the verdict, seed and the command that reproduces the run; one sentence per check that
did not hold, saying what happened to whom around which fault (`_headlines`); warnings when a
pass may mean little (nothing delivered, no fault injected, faults that disconnected nobody, a
check with nothing to judge); one row per check; a timeline on a real time axis (fault windows as
bars and as bands across the lanes, run phases, deliveries per bucket, then one lane per client
grouped by node: connected, joined to some or all of its topics, disconnects, witness markers);
then the witnesses of every check that failed, each with the fault windows around it. Inline
CSS and SVG only: no script, no network, opens offline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..checkers import CheckResult, facts_of
from ..history import Op, workload_clock
from ._headlines import headline as headline
from ._headlines import headlines as headlines
from ._timeline import LANE_COLORS, _e, timeline

OPEN_WITNESSES = 5  # per check, open on the page; the rest of results.json's under <details>

COLORS = {
    "valid": "#1a7f37",
    "invalid": "#cf222e",
    "unknown": "#9a6700",
    "interrupted": "#6e7781",
    "error": "#9a6700",
}
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
        ".why{font-size:15px;margin:8px 0;padding-left:20px} .why li{margin:2px 0}",
        ".key{display:inline-block;width:10px;height:10px;margin:0 3px 0 10px}",
    ]
)


def _warnings(results: dict[str, Any], ops: Sequence[Op]) -> list[str]:
    """Reasons a pass may mean little (the assessment's, from results.json)."""
    if not ops:
        return ["the history is empty: nothing was observed"]
    return [str(w) for w in results.get("warnings", [])]


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
    ops = workload_clock(ops)  # the checkers' clock: time 0 where the workload began
    facts = facts_of(ops)
    checks = results.get("checks", [])
    rows = "".join(
        f'<tr><td><span class="badge" style="background:{COLORS.get(c["validity"], "#999")}">'
        f"{_e('vacuous' if c.get('vacuous') else c['validity'])}</span></td><td><b>"
        f'{_e(c["name"])}</b><br><span class="d">{_e(c.get("description", ""))}</span></td>'
        f'<td class="s">{_summary(c.get("summary", {}))}'
        + "".join(f"<br><b>{_e(limit.get('text', ''))}</b>" for limit in c.get("limits", []))
        + f"{'<br><i>' + _e(c['error']) + '</i>' if c.get('error') else ''}</td></tr>"
        for c in checks
    )
    details = []
    for c in checks:
        if not c.get("witnesses"):
            continue
        shown = [
            f"<li><b>{_e(w.get('problem', ''))}</b><pre>{_e(_witness(w))}</pre></li>"
            for w in c["witnesses"]
        ]
        count = int(c.get("witness_count", len(c["witnesses"])))
        rest = (
            f"<details><summary>{len(shown) - OPEN_WITNESSES} more shown here</summary>"
            f'<ol start="{OPEN_WITNESSES + 1}">{"".join(shown[OPEN_WITNESSES:])}</ol></details>'
            if len(shown) > OPEN_WITNESSES
            else ""
        )
        unlisted = count - len(shown)
        details.append(
            f"<h3>{_e(c['name'])}: {count} witness(es)</h3>"
            f"<ol>{''.join(shown[:OPEN_WITNESSES])}</ol>{rest}"
            + (
                f'<p>{unlisted} more in <a href="witnesses.jsonl">witnesses.jsonl</a></p>'
                if unlisted > 0
                else ""
            )
        )
    why = headlines(CheckResult.from_json(c) for c in checks)
    explained = (
        '<ul class="why">' + "".join(f"<li>{_e(line)}</li>" for line in why) + "</ul>"
        if why
        else ""
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
    warnings = "".join(f'<div class="warn">{_e(w)}</div>' for w in _warnings(results, ops))
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
        + " &middot; black tick: lost connection &middot; red dot: witness"
        + " &middot; bands: faults</div>"
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
            explained,
            warnings,
            f"<table>{rows}</table>",
            f"<h3>Timeline</h3>{legend}{timeline(ops, results, facts)}",
            "".join(details),
            "</body></html>",
        ]
    )
