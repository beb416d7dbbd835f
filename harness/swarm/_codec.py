"""Plain-JSON forms of the swarm's configuration, to hand plans to worker processes."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..phoenix import Timings
from ._config import ClientConfig, Endpoint
from ._swarm import SwarmConfig


def timings_from(data: dict[str, Any]) -> Timings:
    return Timings(
        reconnect_after_ms=tuple(data["reconnect_after_ms"]),
        rejoin_after_ms=tuple(data["rejoin_after_ms"]),
        heartbeat_interval_ms=int(data["heartbeat_interval_ms"]),
        timeout_ms=int(data["timeout_ms"]),
    )


def plan_to_dict(plan: ClientConfig) -> dict[str, Any]:
    data = asdict(plan)
    data["params"] = dict(plan.params)
    data["join_params"] = dict(plan.join_params)
    return data


def plan_from_dict(data: dict[str, Any]) -> ClientConfig:
    return ClientConfig(
        client_id=data["client_id"],
        nodes=tuple(Endpoint(n["name"], n["url"]) for n in data["nodes"]),
        topics=tuple(data["topics"]),
        first_node=data["first_node"],
        on_reconnect=data["on_reconnect"],
        timings=timings_from(data["timings"]),
        params=data["params"],
        join_params=data["join_params"],
        legacy_close_1000=data["legacy_close_1000"],
        rejoin_on_reconnect=data["rejoin_on_reconnect"],
        duplicate_join=data.get("duplicate_join", False),
        publish_retries=data["publish_retries"],
        publisher=data.get("publisher", False),
        socket_path=data["socket_path"],
        publish_event=data["publish_event"],
        deliver_event=data["deliver_event"],
        deliver_id=data["deliver_id"],
        run_id=data["run_id"],
    )


def config_to_dict(config: SwarmConfig) -> dict[str, Any]:
    return asdict(config)


def config_from_dict(data: dict[str, Any]) -> SwarmConfig:
    return SwarmConfig(
        **{**data, "topics": tuple(data["topics"]), "timings": timings_from(data["timings"])}
    )
