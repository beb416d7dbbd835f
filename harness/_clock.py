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


@dataclass(frozen=True, slots=True)
class Offset:
    """Another machine's clock against this one's: `offset` seconds ahead (theirs - ours),
    within +- `bound` (half the round trip of the exchange it came from)."""

    offset: float
    bound: float
    rtt: float
    samples: int


def estimate(readings: list[tuple[float, float, float]]) -> Offset:
    """NTP's estimate from exchanges (sent, theirs, received): `sent` and `received` on this
    clock, `theirs` read on the other between the two. The exchange of least round trip wins
    (the one queueing delayed least); its offset is `theirs` minus the midpoint, and the true
    offset lies within half its round trip of it, whatever the path's asymmetry."""
    if not readings:
        raise ValueError("no clock readings")
    sent, theirs, received = min(readings, key=lambda r: r[2] - r[0])
    rtt = received - sent
    return Offset(theirs - (sent + received) / 2, rtt / 2, rtt, len(readings))
