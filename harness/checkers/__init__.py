"""Checkers: pure functions of a history (and the scenario's check options).

Each checker takes the shared `Facts` and its options and returns a `CheckResult` (valid /
invalid / unknown, with witnesses). `check_all` runs the scenario's checks; a checker that
crashes yields `unknown` with the error, never a crash of the run. Nothing here does I/O, so
`harness check RUN_DIR` recomputes the same results from `history.jsonl` alone.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..history import Op
from ._facts import Facts, facts_of
from ._result import CheckResult, Validity, combine
from .durability import durability
from .liveness import delivery, rejoin
from .safety import at_most_once, no_phantom, order
from .stats import availability, latency

Checker = Callable[[Facts, Mapping[str, Any]], CheckResult]

CHECKERS: dict[str, Checker] = {
    "rejoin": rejoin,
    "at_most_once": at_most_once,
    "no_phantom": no_phantom,
    "delivery": delivery,
    "order": order,
    "durability": durability,
    "latency": latency,
    "availability": availability,
}


def check_all(
    history: Sequence[Op],
    checks: Mapping[str, Mapping[str, Any]],
    descriptions: Mapping[str, str] | None = None,
) -> list[CheckResult]:
    facts = facts_of(history)
    results = []
    for name, options in checks.items():
        checker = CHECKERS.get(name)
        if checker is None:
            results.append(CheckResult(name, "unknown", error=f"no checker named {name!r}"))
            continue
        try:
            result = checker(facts, options)
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            result = CheckResult(name, "unknown", error=f"checker crashed: {detail}")
        results.append(replace(result, description=(descriptions or {}).get(name, "")))
    return results


__all__ = ["CHECKERS", "CheckResult", "Facts", "Validity", "check_all", "combine", "facts_of"]
