"""What the terminal shows of a run's checks: lines of text, a pure function of the results.

The CLI prints them (`harness.cli.say` makes each safe for a terminal and a CI log first);
`harness check RUN_DIR` prints the same lines from results.json as the run did.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..checkers import CheckResult, headline

MARKS = {"valid": "ok  ", "invalid": "FAIL", "unknown": "??  "}
SHOWN = 3  # witnesses under a check that did not hold


def result_lines(results: Sequence[CheckResult], warnings: Sequence[str] = ()) -> list[str]:
    """One line per check, then its limits, its reason or sentence and first witnesses; then
    the warnings."""
    lines: list[str] = []
    for r in results:
        mark = "--  " if r.vacuous else MARKS[r.validity]
        summary = ", ".join(f"{k}={v}" for k, v in r.summary.items() if not isinstance(v, dict))
        lines.append(f"  {mark} {r.name:<13} {summary}")
        lines.extend(f"       {limit.text}" for limit in r.limits)
        if r.error:
            lines.append(f"       {r.error}")
        if r.validity == "invalid" and r.witnesses:
            lines.append(f"       why: {headline(r)}")
        if r.validity != "valid":
            lines.extend(f"       - {w.problem}" for w in r.witnesses[:SHOWN])
            total = int(r.summary.get("violations", len(r.witnesses)))
            if total > SHOWN:
                kept = len(r.witnesses)
                where = "all" if kept >= total else f"the first {kept:,}"
                lines.append(f"       ... {total - SHOWN:,} more ({where} in witnesses.jsonl)")
    lines.extend(f"  warning: {warning}" for warning in warnings)
    return lines
