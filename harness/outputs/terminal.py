"""What the terminal shows of a run: lines of text, a pure function of its results.json.

The run prints them when it ends and `harness check RUN_DIR` prints the same from the file, so
the two cannot differ. A run's block, as k6 and pytest end theirs:

    zoo-kill seed 1: INVALID (exit 1)
      ok   rejoin        12 of 12 losses rejoined within 5 s; time to rejoin p50 210 ms, ...
      FAIL at_most_once  3,663 deliveries, 361 of them again
           why: 361 messages delivered again; the 20 shown: to 6 clients (c2, c4, c6, ...) ...
           - r1a2b3c-p1-1 delivered 2 times to c2 on room:1
           ... 358 more (the first 361 in witnesses.jsonl)
      ok   latency       p50 3 ms, p99 4 ms, max 7 ms (steady; all: ...) over 14,451 deliveries
           p99 (steady) 4 ms <= 500 ms
      cluster: formed in 25 ms; re-formed in 210 ms after kill n2
      warning: ...
      run directory: reports/zoo-kill/... (report: .../report.html)

Each check says its figures in words with units (`Check.says`, beside the check); a threshold is
said once, against its limit. With `colour` the verdict and the marks are coloured (ANSI), for a
terminal that is one (`NO_COLOR` turns it off, as everywhere). Everything that came from the
server (ids, reasons, topics) is made safe for a terminal here (`harness.foreign.safe`), so the
lines are printed as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..checkers import CheckResult, figures, headline
from ..checkers._check import seconds
from ..foreign import safe

SHOWN = 3  # witnesses under a check that did not hold
MARKS = {"valid": "ok  ", "invalid": "FAIL", "unknown": "??  ", "vacuous": "--  "}
COLOURS = {"valid": "32", "invalid": "31", "unknown": "33", "vacuous": "2", "error": "31"}
VERDICTS = {"valid": "valid", "invalid": "INVALID", "unknown": "UNKNOWN", "error": "ERROR"}


def paint(text: str, style: str, colour: bool) -> str:
    code = COLOURS.get(style)
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text


def _safe(text: Any, limit: int = 400) -> str:
    return safe(text, "terminal", limit=limit)


def run_lines(
    results: Mapping[str, Any],
    run_dir: str | None = None,
    *,
    colour: bool = False,
    label: str | None = None,
) -> list[str]:
    """The block of one run, from its results.json."""
    validity = str(results.get("validity", "unknown"))
    name = label or f"{results.get('scenario')} seed {results.get('seed')}"
    verdict = paint(VERDICTS.get(validity, validity), validity, colour)
    lines = [f"{_safe(name)}: {verdict} (exit {results.get('exit_code')})"]
    if results.get("error"):
        lines.append(f"  error: {_safe(results['error'], 2000)}")
    width = max((len(str(c.get("name"))) for c in results.get("checks", ())), default=12)
    for check in results.get("checks", ()):
        lines.extend(_check_lines(check, width, colour))
    formation = _formation(results.get("formation"))
    if formation:
        lines.append(f"  cluster: {formation}")
    lines.extend(f"  warning: {_safe(w, 1000)}" for w in results.get("warnings", ()))
    if run_dir is not None:
        lines.append(f"  run directory: {run_dir} (report: {run_dir}/report.html)")
    return lines


def _check_lines(check: Mapping[str, Any], width: int, colour: bool) -> list[str]:
    result = CheckResult.from_json(check)
    state = "vacuous" if result.vacuous else result.validity
    mark = paint(MARKS[state], state, colour)
    lines = [f"  {mark} {result.name:<{width}}  {_safe(figures(result))}"]
    for limit in result.limits:
        held = paint("ok" if limit.ok else "over", "valid" if limit.ok else "invalid", colour)
        lines.append(f"       {held}  {_safe(limit.text)}")
    if result.validity == "valid":
        return lines
    if result.error:
        lines.append(f"       {_safe(result.error, 1000)}")
    if result.limits:
        return lines  # the limits above are the witnesses: said once
    if result.validity == "invalid" and result.witnesses:
        lines.append(f"       why: {_safe(headline(result), 1000)}")
    lines.extend(f"       - {_safe(w.problem)}" for w in result.witnesses[:SHOWN])
    total = int(result.summary.get("violations", len(result.witnesses)))
    if total > SHOWN:
        kept = int(check.get("witness_count", total))
        where = "all" if kept >= total else f"the first {kept:,}"
        lines.append(f"       ... {total - SHOWN:,} more ({where} in witnesses.jsonl)")
    return lines


def _formation(formation: Any) -> str:
    """One line of the readiness probe's figures (`results.json` `formation`)."""
    if not isinstance(formation, Mapping):
        return ""
    said = []
    formed = formation.get("formed")
    if isinstance(formed, Mapping):
        said.append(
            f"formed in {seconds(formed.get('seconds'))}"
            if formed.get("seconds") is not None
            else "did not form"
        )
    for r in formation.get("reformations") or ():
        took = r.get("seconds")
        after = _safe(r.get("after") or "a heal", 80)
        said.append(
            f"re-formed in {seconds(took)} after {after}"
            if took is not None
            else f"did not re-form after {after} within {seconds(r.get('timeout'))}"
        )
    final = formation.get("final")
    if isinstance(final, Mapping) and final.get("seconds") is None:
        said.append("not whole after the final heal")
    return "; ".join(said)


def progress_line(
    phase: str, elapsed: float, total: float, stats: Any, faults: Sequence[str]
) -> str:
    """The live progress line: clients and publishers apart (`harness.swarm.SwarmStats`)."""
    clients = stats.clients - stats.publishers
    joined = stats.joined - stats.publishers_joined
    return (
        f"[{phase:<10}] {elapsed:5.1f}/{total:.0f}s  clients {joined}/{clients} joined"
        f" ({stats.connected} connected), publishers {stats.publishers_joined}/"
        f"{stats.publishers}  published {stats.published} (acked {stats.acknowledged})"
        f"  received {stats.received}  faults: {', '.join(faults) or 'none'}"
    )


def total_line(outcomes: Sequence[str], code: int, *, colour: bool = False) -> str:
    """One line over several runs: `5 runs: 4 valid, 1 invalid (exit 1)`; `code` is the
    worst run's (`harness.exits.worst`)."""
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    parts = [
        paint(f"{n} {outcome}", outcome, colour)
        for outcome in ("valid", "invalid", "unknown", "error", "interrupted")
        if (n := counts.get(outcome))
    ]
    runs = len(outcomes)
    return f"{runs} run{'s' if runs != 1 else ''}: {', '.join(parts)} (exit {code})"
