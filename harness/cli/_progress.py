"""The live progress of `harness run`: a rich status line on a terminal, plain lines every
2 s otherwise (CI logs)."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from ..outputs.terminal import progress_line


class ProgressView:
    """Live progress: a rich status line on a terminal, plain lines otherwise."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.fancy = self.out.isatty() and not os.environ.get("NO_COLOR")
        self.last_plain = -10.0
        self.live = None
        if self.fancy:
            from rich import console, live

            self.live = live.Live(console=console.Console(file=self.out), transient=True)
            self.live.start()

    def __call__(self, p: object) -> None:
        from ..run.runner import Progress

        assert isinstance(p, Progress)
        line = progress_line(p.phase, p.elapsed, p.total, p.stats, p.active_faults)
        if self.live is not None:
            self.live.update(line)
        elif p.elapsed - self.last_plain >= 2.0:
            self.last_plain = p.elapsed
            print(line, file=self.out, flush=True)

    def close(self) -> None:
        self.live.stop() if self.live is not None else None
