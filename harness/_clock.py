"""One clock for a whole run: seconds since the run started, on CLOCK_MONOTONIC.

CLOCK_MONOTONIC is system-wide on Linux, so worker processes given the same `origin` stamp
their ops on the same time line. (trio's own clock has a random per-run offset, so it cannot be
shared between processes.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import trio


@dataclass(frozen=True, slots=True)
class RunClock:
    origin: float = field(default_factory=time.monotonic)

    def now(self) -> float:
        return time.monotonic() - self.origin

    async def sleep_until(self, when: float) -> None:
        await trio.sleep(max(0.0, when - self.now()))
