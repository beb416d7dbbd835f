"""Figures with optional thresholds: delivery latency and availability.

* `latency` (`p50`, `p99`, `max`; `scope`): seconds from a publish's invoke to each client's first
  delivery of it. A threshold bounds the figure over `scope`: `steady` (the default) takes only
  messages whose publish falls outside every fault window (+ the delivery check's default settle)
  and outside harness distress; `all` takes every delivery. Vacuous with no delivery in scope.
* `availability` (`min`; `of`): the fraction of time each client was joined to each of its
  topics, from the start of the workload (clients join before it) to the end of the
  observation. `min` bounds `of`: `mean` (the default) the mean over every (client, topic), or
  `each_client` the lowest one. Vacuous when no client asked to join.

Both print each threshold as figure vs limit (`p99 612 ms > 500 ms`) and depend on the harness
keeping time, so distress (`harness.checkers._distress`) can make them unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from ..grammar.units import Duration, Fraction
from ..witness import Witness
from ._check import Check, Options, count, percentiles, quantiles
from ._facts import Facts
from ._result import CheckResult, Limit, vacuous
from .liveness import DEFAULT_SETTLE

FIGURES = ("p50", "p99", "max")


def latency(facts: Facts, options: LatencyOptions) -> CheckResult:
    scope = options.scope
    deliveries, messages = facts.deliveries, facts.messages
    first = deliveries.first[deliveries.message[deliveries.first] < deliveries.published]
    message, times = deliveries.message[first], deliveries.times[first]
    all_latencies = times - messages.invoked[message]
    invoked, completed = messages.invoked, messages.completed
    end = np.where(np.isnan(completed) | (completed == 0), invoked, completed)
    faulted = np.zeros(len(invoked), np.bool_)  # published inside a fault window (+ settle)
    for w in facts.windows:
        faulted |= (invoked <= w.end + DEFAULT_SETTLE) & (end >= w.start)
    calm = ~faulted[message]
    for x in facts.distress:
        calm &= ~((x.start <= times) & (x.end >= invoked[message]))
    steady = all_latencies[calm]
    summary: dict[str, Any] = {
        "all": quantiles(all_latencies),
        "steady": quantiles(steady),
        "deliveries": len(all_latencies),
        "scope": scope,
    }
    figures = summary["all"] if scope == "all" else summary["steady"]
    if not figures:
        return vacuous(
            "latency",
            "no message was delivered"
            + ("" if scope == "all" else " outside fault windows and harness distress"),
            summary,
        )
    bounds = {key: getattr(options, key) for key in FIGURES}
    limits = tuple(
        Limit(f"{key} ({scope})", figures[key], float(bound))
        for key, bound in bounds.items()
        if bound is not None
    )
    breaches = tuple(
        Witness(limit.text, evidence=limit.to_json()) for limit in limits if not limit.ok
    )
    return CheckResult(
        "latency", "invalid" if breaches else "valid", summary, breaches, limits=limits
    )


def availability(facts: Facts, options: AvailabilityOptions) -> CheckResult:
    of = options.of
    begin = facts.workload if facts.workload is not None else facts.start
    fractions: dict[tuple[str, str], float] = {}
    for client, topics in facts.expected_topics.items():
        for topic in sorted(topics):  # a set: sorted, or ties would depend on the hash seed
            memberships = facts.memberships.get((client, topic), [])
            span = facts.end - begin
            if span <= 0:
                continue
            joined = sum(max(0.0, min(m.end, facts.end) - max(m.start, begin)) for m in memberships)
            fractions[(client, topic)] = max(0.0, min(1.0, joined / span))
    if not fractions:
        return vacuous("availability", "no client asked to join a topic during the workload")
    mean = sum(fractions.values()) / len(fractions)
    lowest = min(fractions, key=lambda k: fractions[k])
    summary = {
        "mean_joined_fraction": round(mean, 4),
        "min_joined_fraction": round(fractions[lowest], 4),
        "lowest": f"{lowest[0]} on {lowest[1]}",
        "memberships": len(fractions),
        "from": round(begin, 3),
        "of": of,
    }
    minimum = options.min
    if minimum is None:
        return CheckResult("availability", "valid", summary)
    value = mean if of == "mean" else fractions[lowest]
    figure = "mean joined" if of == "mean" else f"joined ({lowest[0]} on {lowest[1]})"
    limit = Limit(figure, round(value, 4), float(minimum), "%", above=True)
    if limit.ok:
        return CheckResult("availability", "valid", summary, limits=(limit,))
    witness = Witness(limit.text, evidence=limit.to_json())
    return CheckResult("availability", "invalid", summary, (witness,), limits=(limit,))


class LatencyOptions(Options):
    p50: Duration | None = None
    p99: Duration | None = None
    max: Duration | None = None
    scope: Literal["steady", "all"] = "steady"


class AvailabilityOptions(Options):
    min: Fraction | None = None
    of: Literal["mean", "each_client"] = "mean"


def _latency_says(s: Mapping[str, Any]) -> str:
    scope = s.get("scope", "steady")
    other = "all" if scope == "steady" else "steady"
    return (
        f"{percentiles(s.get(scope))} ({scope}; {other}: {percentiles(s.get(other))}) over"
        f" {count(s.get('deliveries'))} deliveries"
    )


def _availability_says(s: Mapping[str, Any]) -> str:
    mean, low = s.get("mean_joined_fraction"), s.get("min_joined_fraction")
    if not isinstance(mean, int | float) or not isinstance(low, int | float):
        return "no membership to measure"
    return f"joined {mean:.1%} of the time on average, the lowest {low:.1%} ({s.get('lowest')})"


LATENCY = Check(
    "latency",
    latency,
    LatencyOptions,
    "delivery latency percentiles (optional thresholds over `scope`: steady or all)",
    default=False,
    timing=True,
    says=_latency_says,
)
AVAILABILITY = Check(
    "availability",
    availability,
    AvailabilityOptions,
    "fraction of time clients were joined (optional minimum of the mean or of each client)",
    default=False,
    timing=True,
    says=_availability_says,
)
