"""Figures with optional thresholds: delivery latency and availability.

* `latency` (`p50`, `p99`, `max`): seconds from a publish's invoke to each first delivery of it;
  a threshold makes the check invalid when the figure over messages outside fault windows
  exceeds it.
* `availability` (`min`): the fraction of time each client was joined to each of its topics,
  from its first join attempt to the end of the run; `min` bounds the mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..history import Witness
from ..units import Duration, Fraction
from ._check import Check, Options
from ._facts import Facts
from ._result import CheckResult
from .liveness import DEFAULT_SETTLE, _percentiles


def latency(facts: Facts, options: Mapping[str, Any]) -> CheckResult:
    all_latencies: list[float] = []
    clean: list[float] = []
    for (_client, _topic, message_id), ops in facts.grouped().items():
        message = facts.publishes.get(message_id)
        if message is None:
            continue
        delay = ops[0].time - message.invoked
        all_latencies.append(delay)
        end = message.completed or message.invoked
        if not any(w.overlaps(message.invoked, end, DEFAULT_SETTLE) for w in facts.windows):
            clean.append(delay)
    figures = _percentiles(clean)
    summary: dict[str, Any] = {
        "all": _percentiles(all_latencies),
        "outside_faults": figures,
        "deliveries": len(all_latencies),
    }
    breaches = [
        Witness(
            f"{key} delivery latency {figures[key]}s exceeds {limit}s",
            evidence={"figure": key, "value": figures[key], "limit": limit},
        )
        for key, limit in options.items()
        if limit is not None and key in figures and figures[key] > limit
    ]
    return CheckResult("latency", "invalid" if breaches else "valid", summary, tuple(breaches))


def availability(facts: Facts, options: Mapping[str, Any]) -> CheckResult:
    fractions = []
    for client, topics in facts.expected_topics.items():
        for topic in topics:
            memberships = facts.memberships.get((client, topic), [])
            span = facts.end - facts.start
            if span <= 0:
                continue
            joined = sum(min(m.end, facts.end) - m.start for m in memberships)
            fractions.append(max(0.0, min(1.0, joined / span)))
    mean = sum(fractions) / len(fractions) if fractions else 0.0
    summary = {
        "mean_joined_fraction": round(mean, 4),
        "min_joined_fraction": round(min(fractions), 4) if fractions else None,
        "memberships": len(fractions),
    }
    minimum = options.get("min")
    if minimum is not None and mean < minimum:
        return CheckResult(
            "availability",
            "invalid",
            summary,
            (Witness(f"clients were joined {mean:.1%} of the time, below {minimum:.1%}"),),
        )
    return CheckResult("availability", "valid", summary)


class LatencyOptions(Options):
    p50: Duration | None = None
    p99: Duration | None = None
    max: Duration | None = None


class AvailabilityOptions(Options):
    min: Fraction | None = None


LATENCY = Check(
    "latency",
    latency,
    LatencyOptions,
    "delivery latency percentiles (optional thresholds)",
    default=False,
)
AVAILABILITY = Check(
    "availability",
    availability,
    AvailabilityOptions,
    "fraction of time clients were joined (optional minimum)",
    default=False,
)
