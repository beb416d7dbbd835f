"""Checkers: pure functions of a history (and the scenario's check options).

Each checker takes the shared `Facts` and its options and returns a `CheckResult` (valid /
invalid / unknown, with witnesses). `assess` runs the scenario's checks over one history: it
finds the harness's own distress windows first (`_distress`), runs each checker (one that crashes
yields `unknown` with the error, never a crash of the run), tempers the timing checks' verdicts
by the distress, and collects the warnings. Nothing here does I/O, so `harness check RUN_DIR`
recomputes the same assessment from `history.jsonl` alone.

Adding a checker: a module with its function, its `Options` model and its `Check`, and one line
in `REGISTRY` below (the scenario grammar and `harness list` read it from here).
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .._gc import paused_gc
from ..history import Op, workload_clock
from ._catchup import CatchUp, catch_up
from ._check import Check, Options
from ._distress import distress_of, load_figures, temper
from ._facts import Distress, Facts, Membership, Publish, Window
from ._formation import Formation, formation_of
from ._headlines import figures, headline, headlines, named
from ._registry import CHECKERS, CHECKS, DEFAULT_CHECKS, DESCRIPTIONS, REGISTRY
from ._result import CheckResult, Limit, Validity, combine
from ._scan import facts_of
from ._warnings import warnings_of


@dataclass(frozen=True, slots=True)
class Assessment:
    """Everything the checkers conclude from one history."""

    results: tuple[CheckResult, ...]
    distress: tuple[Distress, ...] = ()
    warnings: tuple[str, ...] = ()
    load: Mapping[str, Mapping[str, float]] | None = None
    formation: Mapping[str, Any] | None = None  # the readiness probe's figures (`formation_of`)

    @property
    def validity(self) -> Validity:
        return combine(self.results)

    def explain(self) -> str:
        """Each check that did not hold, with its sentence (`headline`); for assertion messages:
        `assert verdict.validity == "valid", verdict.explain()`."""
        lines = [
            f"{r.name} {r.validity}: {headline(r)}" for r in self.results if r.validity != "valid"
        ]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines) or "every check valid"


def assess(
    history: Sequence[Op], checks: Mapping[str, Mapping[str, Any]], off: Sequence[str] = ()
) -> Assessment:
    """Every check over the history, on the scenario's clock (`history.workload_clock`).
    `off`: default checks the scenario turned off (each one a warning)."""
    with paused_gc():
        return assess_facts(facts_of(workload_clock(history)), checks, off)


def assess_facts(
    facts: Facts, checks: Mapping[str, Mapping[str, Any]], off: Sequence[str] = ()
) -> Assessment:
    """Every check over the facts of a history (`facts_of`: of its ops, or of a history file
    read lean, as the runner and `harness check` do: `runner.check_run`)."""
    with paused_gc():
        return _assess(facts, checks, off)


def _assess(
    facts: Facts, checks: Mapping[str, Mapping[str, Any]], off: Sequence[str]
) -> Assessment:
    facts.distress = distress_of(facts)
    results = []
    for name, options in checks.items():
        check, checker = CHECKS.get(name), CHECKERS.get(name)
        if check is None or checker is None:
            results.append(CheckResult(name, "unknown", error=f"no checker named {name!r}"))
            continue
        try:
            result = checker(facts, options)
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            result = CheckResult(name, "unknown", error=f"checker crashed: {detail}")
        if check.timing:
            result = temper(result, facts)
        results.append(replace(result, description=check.description))
    return Assessment(
        tuple(results),
        facts.distress,
        warnings_of(facts, results, off),
        load_figures(facts.load),
        formation_of(facts.formations),
    )


def check_all(history: Sequence[Op], checks: Mapping[str, Mapping[str, Any]]) -> list[CheckResult]:
    return list(assess(history, checks).results)


__all__ = [
    "CHECKERS",
    "CHECKS",
    "DEFAULT_CHECKS",
    "DESCRIPTIONS",
    "REGISTRY",
    "Assessment",
    "CatchUp",
    "Check",
    "CheckResult",
    "Distress",
    "Facts",
    "Formation",
    "Limit",
    "Membership",
    "Options",
    "Publish",
    "Validity",
    "Window",
    "assess",
    "assess_facts",
    "catch_up",
    "check_all",
    "combine",
    "facts_of",
    "figures",
    "headline",
    "headlines",
    "named",
]
