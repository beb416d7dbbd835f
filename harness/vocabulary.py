"""The history's vocabulary, written once: every op name, the types it takes and the keys of
its value (`OP_NAMES`). Writers (swarm, nemesis, runner, probe, final reader) use these names;
`Op.from_json` refuses a name that is not here, and `tests/support/vocabulary.py` holds every
op of real runs against the keys. Pure data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast, get_args

OpType = Literal["invoke", "ok", "fail", "info"]
OP_TYPES: frozenset[str] = frozenset(get_args(OpType))

OpName = Literal[
    "connect",
    "disconnect",
    "join",
    "leave",
    "channel_error",
    "channel_close",
    "recv",
    "recv_stale",
    "recv_foreign",
    "bad_frame",
    "publish",
    "heartbeat_timeout",
    "fault",
    "client_fault",
    "heal",
    "phase",
    "setup",
    "interrupted",
    "read",
    "load",
    "probe",
    "node_exit",
    "exhausted",
    "clock",
]


@dataclass(frozen=True, slots=True)
class OpShape:
    """Which types an op name takes and which keys its value may hold."""

    types: frozenset[OpType]
    keys: frozenset[str]
    about: str


def _shape(types: str, keys: str, about: str) -> OpShape:
    return OpShape(
        frozenset(cast(OpType, t) for t in types.split()), frozenset(keys.split()), about
    )


OP_NAMES: Mapping[OpName, OpShape] = {
    "connect": _shape("invoke ok fail", "url error", "a client opens its socket (node: target)"),
    "disconnect": _shape(
        "info", "code reason by_client reconnect_in", "the socket closed; when it retries"
    ),
    "join": _shape(
        "invoke ok fail info",
        "topic join_ref response reason error cursor",
        "a channel join; `cursor`: the position it asked to be caught up from",
    ),
    "leave": _shape("invoke ok", "topic join_ref", "the app leaves a channel"),
    "channel_error": _shape("info", "topic join_ref reason", "phx_error: the channel crashed"),
    "channel_close": _shape("ok", "topic join_ref reason", "phx_close, or the end of a leave"),
    "recv": _shape(
        "ok",
        "topic event id join_ref frame_join_ref state publisher seq cursor",
        "a message delivered to a channel",
    ),
    "recv_stale": _shape(
        "ok", "topic event id frame_join_ref join_ref", "a frame of an older join, dropped"
    ),
    "recv_foreign": _shape(
        "info",
        "topic count since",
        "deliveries of ids this run never made, counted since `since` (beyond the first 100)",
    ),
    "bad_frame": _shape(
        "info", "error head size text", "a frame the client could not decode: why, its first bytes"
    ),
    "publish": _shape(
        "invoke ok fail info",
        "topic id publisher seq reason error sent",
        "a publisher pushes new_msg; ok = acknowledged",
    ),
    "heartbeat_timeout": _shape("info", "ref", "no heartbeat reply in time"),
    "fault": _shape(
        "invoke ok fail info",
        "id kind target params scheduled error figures",
        "the nemesis starts a fault (invoke), it stops (ok, with its figures) or could not be"
        " applied (fail); `fault_edge` reads older histories too",
    ),
    "client_fault": _shape("info", "id kind clients", "the clients a client fault hit"),
    "heal": _shape("invoke ok info", "", "the final heal: begun (invoke), done (ok)"),
    "phase": _shape(
        "info", "phase", "the run's phase: setup connect workload heal settle final_read teardown"
    ),
    "setup": _shape(
        "info",
        "toxiproxy toxiproxy_pid redis redis_pid nodes pids proxies run_id deliver clock_origin"
        " notice probe_topic containment descriptors worker_hosts",
        "what the run started, and where",
    ),
    "interrupted": _shape("info", "phase", "Ctrl-C or SIGTERM, in this phase"),
    "read": _shape("invoke ok fail", "topic ids error", "the final read of a room's store"),
    "load": _shape(
        "info",
        "span lag publish_lag backlog cpu_busy cpu_stall cpu_self cpu_server cpus",
        "the harness's own load: worst loop and publish lag of a period; the machine's CPUs",
    ),
    "node_exit": _shape(
        "info", "node status pid", "a node's process ended when the harness had not stopped it"
    ),
    "exhausted": _shape(
        "info",
        "process log errors",
        "a process the harness started ran out of file descriptors: how often its log says so",
    ),
    "clock": _shape(
        "info",
        "worker host when offset bound rtt samples",
        "a swarm worker's clock against this machine's (NTP-style: the exchange of least round"
        " trip among `samples`, `bound` = half of it), `when` before or after the run; the"
        " worker's history is shifted by the offset measured before",
    ),
    "probe": _shape(
        "invoke info",
        "id topic kind after fault elapsed seconds pairs missing timeout reason",
        "the readiness probe (`harness.run.probe`): a probe published (invoke), a measurement"
        " of the cluster's formation (info)",
    ),
}


def natural(name: str) -> tuple[str, int]:
    """The sort key of a process or node name: c2 before c10, n1 before n2."""
    digits = len(name) - len(name.rstrip("0123456789"))
    return name[: len(name) - digits], int(name[len(name) - digits :] or -1)
