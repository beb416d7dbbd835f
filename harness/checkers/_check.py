"""What a checker is: a pure function of the facts, the grammar of its options, a description.

Each checker module defines its `Check` (name, function, options model, one-line description,
whether it runs when a scenario names no checks, whether its verdict depends on the harness
keeping time) beside the function; `harness.checkers` lists
them in its registry. The scenario grammar builds its `checks:` section from the registry, so
adding a checker is one module and one registry line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from ._facts import Facts
from ._result import CheckResult


class Options(BaseModel):
    """A checker's options; none by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    run: Callable[[Facts, Mapping[str, Any]], CheckResult]
    options: type[Options]
    description: str
    default: bool = True
    timing: bool = False  # its verdict depends on the harness keeping time (see _distress)
