"""The report's view model: everything the page shows, computed from the run directory's
contents (results, history, traces) as plain frozen data. The template
(`templates/report.html.j2`) only loops over it and prints; every decision (what to say, what
to draw, what to leave out) is here, where it is unit-tested.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checkers import CheckResult, facts_of, figures, headline
from ..history import Op, workload_clock
from ._catchup import catch_up_chart
from ._charts import charts
from ._drill import CAPTION, ClientEvents, drill
from ._messages import diagram, read_traces
from ._svg import Chart
from ._timeline import timeline

OPEN_WITNESSES = 3  # per check, open on the page; the rest of results.json's under <details>
COLORS = {
    "valid": "#1a7f37",
    "invalid": "#cf222e",
    "unknown": "#9a6700",
    "interrupted": "#6e7781",
    "error": "#9a6700",
}


@dataclass(frozen=True, slots=True)
class CheckRow:
    name: str
    description: str
    label: str  # valid / invalid / unknown / vacuous
    color: str
    figures: str  # the summary in words with units (`checkers.figures`), as the terminal says it
    limits: tuple[str, ...]
    error: str
    anchor: str  # its witness block's id, or "" when it has none


@dataclass(frozen=True, slots=True)
class Headline:
    check: str
    sentence: str
    anchor: str  # its witnesses' block on the page, or "" when it has none


@dataclass(frozen=True, slots=True)
class Shown:
    problem: str
    fields: str  # one per line
    drill: str  # the anchor of its client's events on the page, or ""


@dataclass(frozen=True, slots=True)
class Witnesses:
    check: str
    anchor: str
    count: int
    shown: tuple[Shown, ...]
    open: int
    unlisted: int  # in witnesses.jsonl only


@dataclass(frozen=True, slots=True)
class Report:
    title: str
    scenario: str
    validity: str
    color: str
    about: tuple[str, ...]
    reproduce: str
    error: str
    headlines: tuple[Headline, ...]
    warnings: tuple[str, ...]
    checks: tuple[CheckRow, ...]
    timeline: Chart
    charts: tuple[Chart, ...]
    messages: Chart
    drill: tuple[ClientEvents, ...]
    drill_caption: str
    witnesses: tuple[Witnesses, ...]


def view(
    results: dict[str, Any],
    ops: Sequence[Op],
    run_dir: Path | None = None,
    traces: Mapping[str, Sequence[dict[str, Any]]] | None = None,
) -> Report:
    """The page of a run. `ops` on the run's clock (as in history.jsonl); `traces`: the
    servers' trace lines per file, if any; `run_dir` only makes the reproduce command whole."""
    origin, workload = _clock(ops)
    ops = workload_clock(ops)  # the checkers' clock: time 0 where the workload began
    facts = facts_of(ops)
    validity = str(results.get("validity", "unknown"))
    checks = results.get("checks", [])
    scenario_path = run_dir / "scenario.yaml" if run_dir is not None else Path("scenario.yaml")
    warnings = tuple(str(w) for w in results.get("warnings", []))
    if not ops:
        warnings = ("the history is empty: nothing was observed",)
    drilled = tuple(drill(ops, results))
    return Report(
        title=f"{results.get('scenario')}: {validity}",
        scenario=str(results.get("scenario")),
        validity=validity,
        color=COLORS.get(validity, "#999"),
        about=(
            f"seed {results.get('seed')}",
            f"{results.get('duration')}s",
            f"exit code {results.get('exit_code')}",
            f"{len(ops):,} history events",
            f"source {results.get('source')}",
            f"harness {results.get('harness_version')}",
        ),
        reproduce=f"harness run {scenario_path} --seed {results.get('seed')}",
        error=str(results.get("error") or ""),
        headlines=tuple(_headlines(checks)),
        warnings=warnings,
        checks=tuple(_row(c) for c in checks),
        timeline=timeline(ops, results, facts),
        charts=tuple(
            c for c in (*charts(ops, facts, results), catch_up_chart(facts, results)) if c
        ),
        messages=diagram(read_traces(traces or {}, origin, workload) if traces else None, results),
        drill=drilled,
        drill_caption=CAPTION,
        witnesses=tuple(
            _witnesses(c, {d.client for d in drilled}) for c in checks if c.get("witnesses")
        ),
    )


def _clock(ops: Sequence[Op]) -> tuple[float | None, float]:
    """The run clock's origin (CLOCK_MONOTONIC, from set-up) and when the workload began."""
    origin = next(
        (
            float(op.value["clock_origin"])
            for op in ops
            if op.f == "setup" and isinstance(op.value.get("clock_origin"), int | float)
        ),
        None,
    )
    workload = next(
        (op.time for op in ops if op.f == "phase" and op.value.get("phase") == "workload"), 0.0
    )
    return origin, workload


def _anchor(c: dict[str, Any]) -> str:
    return f"w-{c['name']}" if c.get("witnesses") else ""


def _headlines(checks: Sequence[dict[str, Any]]) -> list[Headline]:
    """The sentence of each check that did not hold (`checkers.headline`, the terminal's)."""
    out = []
    for c in checks:
        sentence = headline(CheckResult.from_json(c))
        if sentence is not None:
            out.append(Headline(str(c["name"]), sentence, _anchor(c)))
    return out


def _row(c: dict[str, Any]) -> CheckRow:
    return CheckRow(
        name=str(c["name"]),
        description=str(c.get("description", "")),
        label="vacuous" if c.get("vacuous") else str(c["validity"]),
        color=COLORS.get(c["validity"], "#999"),
        figures=figures(CheckResult.from_json(c)),
        limits=tuple(str(limit.get("text", "")) for limit in c.get("limits", [])),
        error=str(c.get("error") or ""),
        anchor=_anchor(c),
    )


def _witnesses(c: dict[str, Any], drilled: set[str]) -> Witnesses:
    shown = tuple(
        Shown(
            str(w.get("problem", "")),
            _fields(w),
            f"d-{w['client']}" if w.get("client") in drilled else "",
        )
        for w in c["witnesses"]
    )
    count = int(c.get("witness_count", len(shown)))
    return Witnesses(
        str(c["name"]), _anchor(c), count, shown, OPEN_WITNESSES, max(0, count - len(shown))
    )


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={_flat(v)}" for k, v in value.items())
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def _fields(w: dict[str, Any]) -> str:
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
