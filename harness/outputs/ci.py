"""What a CI page shows of a run: a GitHub step summary table and `::error` annotations.

Pure text from a run's outcome and its scenario's YAML; the CLI writes them when
`GITHUB_STEP_SUMMARY` / `GITHUB_ACTIONS` say it runs under GitHub Actions
(`research/reports-and-ci.md` §3.3). An annotation points at the line of the failed check in the
scenario (`checks.delivery`), or at the scenario's first line when the check is a default one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..checkers import CheckResult
from ..errors import Problem
from ..foreign import safe
from ..grammar.yaml import YamlProblem, load

ICONS = {"valid": "✅", "invalid": "❌", "unknown": "❔", "error": "⚠️", "interrupted": "⏹️"}


def _cell(text: str) -> str:
    """Foreign text in a markdown table cell (`harness.foreign.safe`): one line, pipes and HTML
    escaped, cut to length."""
    return safe(text, "markdown", limit=300)


def _figures(result: CheckResult) -> str:
    if result.limits:
        return "; ".join(limit.text for limit in result.limits)
    shown = [f"{k}={v}" for k, v in result.summary.items() if isinstance(v, int | float | str)]
    return ", ".join(shown[:4])


def step_summary(
    scenario: str,
    seed: int,
    outcome: str,
    results: Sequence[CheckResult],
    run_dir: Path,
    *,
    error: str | None = None,
    warnings: Sequence[str] = (),
) -> str:
    """A markdown section: the verdict, one row per check, the command that reproduces it."""
    lines = [
        f"### {ICONS.get(outcome, '')} {scenario} (seed {seed}): {outcome}",
        "",
    ]
    if error:
        lines += [f"> {_cell(error)}", ""]
    if results:
        lines += ["| check | verdict | figures | first witness or reason |", "|---|---|---|---|"]
        for r in results:
            verdict = "vacuous" if r.vacuous else r.validity
            why = r.witnesses[0].problem if r.witnesses else (r.error or "")
            lines.append(
                f"| {r.name} | {ICONS.get(r.validity, '')} {verdict} | {_cell(_figures(r))} "
                f"| {_cell(why)} |"
            )
        lines.append("")
    lines += [f"- warning: {_cell(w)}" for w in warnings]
    lines += [
        f"- replay (same plan, seed and faults; not the same timing):"
        f" `harness run {run_dir / 'scenario.yaml'} --seed {seed}`",
        f"- report: `{run_dir / 'report.html'}`",
        "",
    ]
    return "\n".join(lines) + "\n"


def error_annotations(source: str, text: str, results: Sequence[CheckResult]) -> list[str]:
    """`::error` lines for GitHub Actions, one per check that did not hold."""
    try:
        located = load(text)
    except YamlProblem:
        located = None
    out = []
    for r in results:
        if r.validity == "valid":
            continue
        line = located.mark(("checks", r.name))[0] if located is not None else 1
        level = "error" if r.validity == "invalid" else "warning"
        why = r.witnesses[0].problem if r.witnesses else (r.error or r.validity)
        message = safe(f"{r.name} {r.validity}: {why}", "annotation", limit=1000)
        out.append(f"::{level} file={_property(source)},line={line}::{message}")
    return out


def problem_annotations(problems: Sequence[Problem]) -> list[str]:
    """`::error` lines for a scenario that does not validate, at each problem's line."""
    return [
        f"::error file={_property(p.source)},line={p.line},col={p.column}::"
        + safe(f"{p.path}: {p.message}" if p.path else p.message, "annotation", limit=1000)
        for p in problems
    ]


def _property(text: str) -> str:
    return safe(text, "annotation", limit=1000).replace(":", "%3A").replace(",", "%2C")
