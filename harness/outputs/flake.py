"""Flake rate over repeated runs (`harness run --repeat N`): how often each check failed.

A check that fails 1 run in 5 is not "flaky but fine": with a 95% Wilson score interval the true
failure rate could be anywhere from 4% to 62%. The interval (not the raw ratio) is what a CI
owner needs to decide whether a red run is noise, so it is printed per check. Wilson's interval
is used rather than the normal approximation because it stays inside [0, 1] and behaves at 0 and
N failures, which is where small repeat counts live.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..checkers import CheckResult

Z95 = 1.959964


def wilson(failures: int, runs: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for `failures` out of `runs`."""
    if runs <= 0:
        return (0.0, 1.0)
    p = failures / runs
    denominator = 1 + z * z / runs
    centre = (p + z * z / (2 * runs)) / denominator
    half = z * math.sqrt(p * (1 - p) / runs + z * z / (4 * runs * runs)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True, slots=True)
class FlakeRate:
    check: str
    runs: int
    failed: int
    unknown: int

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.failed, self.runs)

    @property
    def text(self) -> str:
        low, high = self.interval
        unknown = f", {self.unknown} unknown" if self.unknown else ""
        return (
            f"{self.check:<13} failed {self.failed}/{self.runs}{unknown}"
            f"  (95% interval {low:.0%}-{high:.0%})"
        )


def flake_rates(runs: Sequence[Sequence[CheckResult]]) -> list[FlakeRate]:
    """Per check, in first-seen order, over the runs that judged it."""
    counts: dict[str, list[int]] = {}
    for results in runs:
        for result in results:
            row = counts.setdefault(result.name, [0, 0, 0])
            row[0] += 1
            row[1] += result.validity == "invalid"
            row[2] += result.validity == "unknown"
    return [FlakeRate(name, n, failed, unknown) for name, (n, failed, unknown) in counts.items()]
