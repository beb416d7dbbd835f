"""Scenarios: the YAML grammar as typed models, read with every problem located, resolved for a
seed, dumped back, and published as a JSON Schema.

    parse_scenario(text, source) -> Scenario     (or InvalidScenario listing every problem)
    resolve(scenario, seed) -> Scenario          seed fixed, `random` faults expanded
    resolved_yaml(scenario) -> str               what the run directory keeps (replayable)
    plan_clients(scenario, endpoints, run_id)    every client's plan and behaviour (seeded)
    scenario_schema() -> dict                    what `harness schema` prints

Durations are `800ms`, `5s`, `2m` (or a number of seconds); rates `50/s` or `3000/m`. Node names
(`n1`..`nN`) and link names (`clients->n1`, `n1->n2`, `n1->redis`) are checked against the
cluster, fault times against the run. Pure: text in, models out.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import InvalidScenario, Problem
from ..faults import Fault, expand_random
from ..grammar.behaviour import ClientsSpec, TimingsSpec, WorkloadSpec
from ..grammar.contract import AppSpec, HttpRead, PushRead
from ..grammar.templates import dig, render
from ..grammar.units import parse_duration, parse_rate
from ._cluster import ClusterSpec
from ._load import parse_scenario, read_scenario
from ._model import Scenario
from ._plan import plan_clients
from ._schema import scenario_schema


def resolve(scenario: Scenario, seed: int) -> Scenario:
    """The scenario as it runs with `seed`: random faults expanded (deterministic per seed)."""
    faults = expand_random(scenario.faults, seed, scenario.cluster.topology)
    return scenario.with_faults(faults, seed)


def fault_data(fault: Fault) -> dict[str, Any]:
    """A fault as YAML data: at, for, kind, then its own parameters."""
    head: dict[str, Any] = {"at": f"{fault.at:g}s"}
    if fault.duration is not None:
        head["for"] = f"{fault.duration:g}s"
    head["kind"] = fault.kind_name()
    return {
        **head,
        **fault.model_dump(mode="json", exclude={"at", "duration", "kind"}, exclude_none=True),
    }


def resolved_data(scenario: Scenario) -> dict[str, Any]:
    data = scenario.model_dump(mode="json", by_alias=True, exclude_unset=True)
    data["seed"] = scenario.seed
    data["faults"] = [fault_data(f) for f in scenario.faults]
    order = ("name", "description", "seed", "duration", "settle", "cluster", "clients")
    return {**{k: data[k] for k in order if k in data}, **data}


def resolved_yaml(scenario: Scenario) -> str:
    return f"# resolved from {scenario.source}\n" + yaml.safe_dump(
        resolved_data(scenario), sort_keys=False, allow_unicode=True
    )


__all__ = [
    "AppSpec",
    "ClientsSpec",
    "ClusterSpec",
    "HttpRead",
    "InvalidScenario",
    "Problem",
    "PushRead",
    "Scenario",
    "TimingsSpec",
    "WorkloadSpec",
    "dig",
    "fault_data",
    "parse_duration",
    "parse_rate",
    "parse_scenario",
    "plan_clients",
    "read_scenario",
    "render",
    "resolve",
    "resolved_data",
    "resolved_yaml",
    "scenario_schema",
]
