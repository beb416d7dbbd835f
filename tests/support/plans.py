"""Swarm plans for tests and benchmarks, made the way a run makes them: a scenario (built from
keyword arguments) planned by `harness.scenario.plan_clients`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from harness.grammar.behaviour import Endpoint, SwarmPlan
from harness.scenario import parse_scenario, plan_clients

FAST = {
    "reconnect_after": ["10ms", "20ms", "50ms", "100ms"],
    "rejoin_after": ["50ms", "100ms", "200ms"],
    "heartbeat_interval": "500ms",
    "timeout": "2s",
}


def swarm_plan(
    endpoints: Sequence[Endpoint],
    *,
    clients: int = 10,
    topics: Sequence[str] = ("room:1",),
    publishers: int = 1,
    rate: float = 10.0,
    seed: int = 0,
    run_id: str = "",
    timings: dict[str, Any] | None = FAST,
    workload: dict[str, Any] | None = None,
    app: dict[str, Any] | None = None,
    **more: Any,
) -> SwarmPlan:
    """The plan of a scenario with these clients (`more`: other `clients:` keys)."""
    section: dict[str, Any] = {"count": clients, "topics": list(topics), **more}
    if timings is not None:
        section["timings"] = timings
    data: dict[str, Any] = {
        "name": "t",
        "duration": "1h",
        "seed": seed,
        "cluster": {"nodes": len(endpoints)},
        "clients": section,
        "workload": {"publishers": publishers, "rate": rate, **(workload or {})},
    }
    if app is not None:
        data["app"] = app
    return plan_clients(parse_scenario(yaml.safe_dump(data)), endpoints, run_id)
