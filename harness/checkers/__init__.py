"""Checkers: pure functions of a history (and the scenario's check options).

Each checker takes the shared `Facts` and its options and returns a `CheckResult` (valid /
invalid / unknown, with witnesses). `check_all` runs the scenario's checks; a checker that
crashes yields `unknown` with the error, never a crash of the run. Nothing here does I/O, so
`harness check RUN_DIR` recomputes the same results from `history.jsonl` alone.

Adding a checker: a module with its function, its `Options` model and its `Check`, and one line
in `REGISTRY` below (the scenario grammar and `harness list` read it from here).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..history import Op
from ._check import Check, Options
from ._facts import Facts, Membership, Publish, Window, facts_of
from ._result import CheckResult, Validity, combine
from .durability import DURABILITY
from .liveness import DELIVERY, REJOIN
from .safety import AT_MOST_ONCE, NO_PHANTOM, ORDER
from .stats import AVAILABILITY, LATENCY

REGISTRY: tuple[Check, ...] = (
    REJOIN,
    AT_MOST_ONCE,
    NO_PHANTOM,
    DELIVERY,
    ORDER,
    DURABILITY,
    LATENCY,
    AVAILABILITY,
)

Checker = Callable[[Facts, Mapping[str, Any]], CheckResult]

CHECKS: dict[str, Check] = {check.name: check for check in REGISTRY}
CHECKERS: dict[str, Checker] = {check.name: check.run for check in REGISTRY}
DESCRIPTIONS: dict[str, str] = {check.name: check.description for check in REGISTRY}
DEFAULT_CHECKS: tuple[str, ...] = tuple(check.name for check in REGISTRY if check.default)


def check_all(
    history: Sequence[Op] | Facts, checks: Mapping[str, Mapping[str, Any]]
) -> list[CheckResult]:
    facts = history if isinstance(history, Facts) else facts_of(history)
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
        results.append(replace(result, description=DESCRIPTIONS.get(name, "")))
    return results


__all__ = [
    "CHECKERS",
    "CHECKS",
    "DEFAULT_CHECKS",
    "DESCRIPTIONS",
    "REGISTRY",
    "Check",
    "CheckResult",
    "Facts",
    "Membership",
    "Options",
    "Publish",
    "Validity",
    "Window",
    "check_all",
    "combine",
    "facts_of",
]
