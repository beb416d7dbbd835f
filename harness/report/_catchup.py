"""The catch-up chart, for a run whose `delivery` was judged at least once: how long each rejoin
took to catch up (from the join to the last missed message's arrival), as a histogram, with the
deliveries that came live, caught up, late and never in its caption (`checkers.catch_up`)."""

from __future__ import annotations

from typing import Any

from ..checkers import Facts, catch_up
from ._charts import HALF, histogram
from ._svg import Chart


def catch_up_chart(facts: Facts, results: dict[str, Any]) -> Chart | None:
    """None when the run's `delivery` was not judged at least once."""
    summary: dict[str, Any] = next(
        (c.get("summary", {}) for c in results.get("checks", []) if c.get("name") == "delivery"),
        {},
    )
    if summary.get("guarantee") != "at_least_once":
        return None
    found = catch_up(facts, float(summary.get("within", 5.0)))
    said = (
        f"{found.caught_up:,} deliveries caught up after {len(found.times):,}"
        f" rejoin{'s' if len(found.times) != 1 else ''},"
        f" {found.on_time - found.caught_up:,} live, {found.late:,} late,"
        f" {found.missing:,} never"
    )
    if not found.times:
        return Chart("catch_up", "Time to catch up", "", 0, (), width=HALF, empty=said)
    times = sorted(found.times)
    plot = histogram(
        times,
        scale=1000,
        x_title="ms from the rejoin to the last missed message",
        y_title="rejoins",
        fill="#1a7f37",
        says=lambda n, low, high: f"{n} rejoins caught up in {low:.0f}-{high:.0f} ms",
    )
    p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(0.99 * len(times)))]
    caption = (
        f"{said}; p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms"
    )
    return Chart("catch_up", "Time to catch up", caption, 200, tuple(plot.marks), width=HALF)
