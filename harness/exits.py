"""Exit codes: one table from a run's outcome to the code a CI reads (`shared/design.md`).

0  every check valid          2  bad scenario or usage
1  a check invalid            3  infrastructure error, or a check that could not decide
                              130 interrupted (Ctrl-C, SIGTERM): cleanup done, history kept
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

Outcome = Literal["valid", "invalid", "unknown", "error", "interrupted"]


class Exit(IntEnum):
    VALID = 0
    INVALID = 1
    USAGE = 2
    INFRA = 3
    INTERRUPTED = 130


EXIT_CODES: dict[Outcome, Exit] = {
    "valid": Exit.VALID,
    "invalid": Exit.INVALID,
    "unknown": Exit.INFRA,
    "error": Exit.INFRA,
    "interrupted": Exit.INTERRUPTED,
}


def exit_code(outcome: Outcome) -> Exit:
    return EXIT_CODES[outcome]


WORST_FIRST: tuple[Exit, ...] = (Exit.INTERRUPTED, Exit.INVALID, Exit.INFRA, Exit.USAGE, Exit.VALID)


def worst(codes: list[int]) -> int:
    """The exit code of several runs: the worst one (a violation outranks an unknown)."""
    for code in WORST_FIRST:
        if code in codes:
            return int(code)
    return max(codes, default=int(Exit.VALID))
