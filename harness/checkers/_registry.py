"""The checkers' registry: one line a checker (its module defines its `Check`), and what the
grammar, `harness list`, `assess` and the first-screen sentences read from it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._check import Check, Options
from ._facts import Facts
from ._result import CheckResult
from .durability import DURABILITY
from .liveness import DELIVERY, REJOIN
from .protocol import PROTOCOL
from .pushes import PUSHES
from .safety import AT_MOST_ONCE, NO_PHANTOM, ORDER
from .stats import AVAILABILITY, LATENCY

REGISTRY: tuple[Check[Any], ...] = (
    REJOIN,
    AT_MOST_ONCE,
    NO_PHANTOM,
    DELIVERY,
    ORDER,
    DURABILITY,
    PROTOCOL,
    LATENCY,
    AVAILABILITY,
    PUSHES,
)

Checker = Callable[[Facts, Mapping[str, Any] | Options], CheckResult]

CHECKS: dict[str, Check[Any]] = {check.name: check for check in REGISTRY}
CHECKERS: dict[str, Checker] = {check.name: check.judge for check in REGISTRY}
DESCRIPTIONS: dict[str, str] = {check.name: check.description for check in REGISTRY}
DEFAULT_CHECKS: tuple[str, ...] = tuple(check.name for check in REGISTRY if check.default)
