"""`say`: the one way the command line prints a line a person reads."""

from __future__ import annotations

import sys
from typing import TextIO

from ..foreign import safe, safe_lines


def say(text: str, file: TextIO | None = None, *, lines: bool = False) -> None:
    """Print one line a person reads (`lines`: several, the harness's own line breaks):
    whatever part of it the server sent (an id, a refusal reason) is made safe for a terminal
    and a CI log first (`harness.foreign.safe`: a foreign newline cannot start a line)."""
    shown = safe_lines(text) if lines else safe(text, "terminal", limit=4000)
    print(shown, file=file or sys.stdout, flush=True)
