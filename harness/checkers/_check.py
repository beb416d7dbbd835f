"""What a checker is: a pure function of the facts, the grammar of its options, a description.

Each checker module defines its `Check` (name, function, options model, one-line description,
whether it runs when a scenario names no checks, whether its verdict depends on the harness
keeping time) beside the function; `harness.checkers` lists
them in its registry. The scenario grammar builds its `checks:` section from the registry, so
adding a checker is one module and one registry line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from ._facts import Facts
from ._result import CheckResult


class Options(BaseModel):
    """A checker's options; none by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Opts = TypeVar("Opts", bound=Options)


@dataclass(frozen=True)
class Check(Generic[Opts]):
    """One checker: its name, its function of the facts and its options model, its one-line
    description; whether it runs when a scenario names no checks (`default`) and whether its
    verdict depends on the harness keeping time (`timing`, see `_distress`); and the words of
    its first-screen sentence (`harness.checkers.headline`): the noun of one violation and of
    several, and whether it names clients "for" (rejoins missed for c1) rather than "to"."""

    name: str
    run: Callable[[Facts, Opts], CheckResult]
    options: type[Opts]
    description: str
    default: bool = True
    timing: bool = False
    nouns: tuple[str, str] | Callable[[Mapping[str, Any]], tuple[str, str]] = (
        "violation",
        "violations",
    )  # or a function of the summary (a check whose options change what it counts)
    for_clients: bool = False
    says: Callable[[Mapping[str, Any]], str] | None = None  # its summary in words, with units

    def judge(self, facts: Facts, options: Mapping[str, Any] | Options) -> CheckResult:
        """The check over `facts`, with its options as a model or as the scenario writes them."""
        chosen = (
            options
            if isinstance(options, self.options)
            else self.options.model_validate(dict(options))
        )
        return self.run(facts, chosen)


def seconds(value: Any) -> str:
    """A time a person reads: `3 ms`, `250 ms`, `2.9 s`, `15 s`."""
    if not isinstance(value, int | float):
        return "?"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2g} s" if value < 10 else f"{value:.0f} s"


def count(value: Any) -> str:
    """A count with thousands separated: `14,451`."""
    return f"{value:,}" if isinstance(value, int) else str(value)


def counted(value: Any, noun: str, plural: str | None = None) -> str:
    """`1 room`, `3 rooms`, `14,451 deliveries` (`plural` where adding an s is wrong)."""
    many = plural if plural is not None else f"{noun}s"
    return f"{count(value)} {noun if value == 1 else many}"


def quantiles(values: Sequence[float] | npt.NDArray[np.float64]) -> dict[str, float]:
    """`{p50, p99, max}` of some seconds (rounded to the millisecond); `{}` of none."""
    ordered = np.sort(np.asarray(values, np.float64))
    if not len(ordered):
        return {}

    def pick(q: float) -> float:
        return round(float(ordered[min(len(ordered) - 1, int(q * len(ordered)))]), 3)

    return {"p50": pick(0.5), "p99": pick(0.99), "max": round(float(ordered[-1]), 3)}


def percentiles(figures: Any) -> str:
    """`p50 3 ms, p99 12 ms, max 40 ms` of a `{p50, p99, max}` summary."""
    if not isinstance(figures, Mapping) or not figures:
        return "none"
    shown = (f"{key} {seconds(figures[key])}" for key in ("p50", "p99", "max") if key in figures)
    return ", ".join(shown)
