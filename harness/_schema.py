"""The scenario's JSON Schema (draft-07, what yaml-language-server validates against).

For editors: completion and squiggles through a first line
`# yaml-language-server: $schema=<path to the output of harness schema>`. The validator in
`scenario.py` stays the authority (it knows cross-field rules: nodes, links, times).
"""

from __future__ import annotations

from typing import Any

from .scenario import CHECK_DESCRIPTIONS, CHECKS, FAULT_DESCRIPTIONS, FAULT_KINDS, TOXIC_KINDS

DURATION: dict[str, Any] = {
    "description": "a duration: 800ms, 5s, 2m, or a number of seconds",
    "anyOf": [
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"},
        {"type": "number", "minimum": 0},
    ],
}
RATE: dict[str, Any] = {
    "description": "messages per second: 50/s, 3000/m, or a number",
    "anyOf": [
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*/\s*(s|m)\s*$"},
        {"type": "number", "minimum": 0},
    ],
}
LINK: dict[str, Any] = {
    "type": "string",
    "pattern": r"^(clients|n\d)->n\d$",
    "description": "clients->n1 (client connections to n1) or n1->n2",
}


def _fault() -> dict[str, Any]:
    properties: dict[str, Any] = {
        "at": DURATION,
        "for": DURATION,
        "kind": {
            "enum": list(FAULT_KINDS),
            "description": "; ".join(f"{k}: {v}" for k, v in FAULT_DESCRIPTIONS.items()),
        },
        "link": {"anyOf": [LINK, {"type": "array", "items": LINK}]},
        "stream": {"enum": ["both", "upstream", "downstream"]},
        "toxicity": {"type": "number", "minimum": 0, "maximum": 1},
        "groups": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
        "one_way": {"type": "boolean"},
        "node": {"type": "string", "pattern": r"^n\d$"},
        "nodes": {"type": "array", "items": {"type": "string"}},
        "restart_after": DURATION,
        "interval": DURATION,
        "clients": {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": r"^\d+(\.\d+)?%$"},
            ]
        },
        "count": {"type": "integer", "minimum": 1},
        "kinds": {"type": "array", "items": {"enum": list(FAULT_KINDS)}},
        "min_for": DURATION,
        "max_for": DURATION,
    }
    for attrs in TOXIC_KINDS.values():
        for attr, kind in attrs.items():
            properties.setdefault(
                attr, DURATION if kind == "duration" else {"type": "integer", "minimum": 0}
            )
    return {
        "type": "object",
        "required": ["at", "kind"],
        "properties": properties,
        "additionalProperties": False,
    }


def scenario_schema() -> dict[str, Any]:
    checks = {
        name: {
            "type": ["object", "null"],
            "description": CHECK_DESCRIPTIONS[name],
            "properties": {
                k: DURATION if v == "duration" else {"type": ["number", "string"]}
                for k, v in spec.items()
            },
            "additionalProperties": False,
        }
        for name, spec in CHECKS.items()
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "channel-chaos-harness scenario",
        "type": "object",
        "required": ["name", "duration"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": r"^[A-Za-z0-9._-]+$"},
            "description": {"type": "string"},
            "seed": {"type": "integer", "minimum": 0},
            "duration": DURATION,
            "settle": DURATION,
            "cluster": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "nodes": {"type": "integer", "minimum": 1, "maximum": 9},
                    "pubsub": {
                        "enum": ["mesh", "redis"],
                        "description": "mesh: node-to-node links n1->n2; redis: every node"
                        " through one Redis server, links n1->redis",
                    },
                    "command": {
                        "type": "string",
                        "description": "template: {python} {node} {host}"
                        " {port} {pubsub_port} {peers} {peer_args} {pubsub} {pubsub_args}"
                        " {store} {bug_args}",
                    },
                    "bugs": {"type": "array", "items": {"type": "string"}},
                },
            },
            "clients": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "count": {"type": "integer", "minimum": 1},
                    "topics": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "topics_per_client": {"type": "integer", "minimum": 1},
                    "placement": {"enum": ["round_robin", "random"]},
                    "on_reconnect": {"enum": ["same_node", "next_node", "random_node"]},
                    "workers": {"type": "integer", "minimum": 1},
                    "rejoin": {
                        "type": "boolean",
                        "description": "false: the client defect that reconnects but never rejoins",
                    },
                    "duplicate_join": {
                        "type": "boolean",
                        "description": "true: the client defect that sends every join twice",
                    },
                    "timings": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "reconnect_after": {"type": "array", "items": DURATION},
                            "rejoin_after": {"type": "array", "items": DURATION},
                            "heartbeat_interval": DURATION,
                            "timeout": DURATION,
                        },
                    },
                },
            },
            "workload": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "publishers": {"type": "integer", "minimum": 0},
                    "rate": RATE,
                    "publish_timeout": DURATION,
                    "retries": {"type": "integer", "minimum": 0},
                },
            },
            "faults": {"type": "array", "items": _fault()},
            "checks": {"type": "object", "additionalProperties": False, "properties": checks},
        },
    }
