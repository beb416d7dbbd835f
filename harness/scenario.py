"""Scenarios: the YAML model, validated up front, every problem located.

`parse_scenario(text, source)` returns a frozen `Scenario` or raises `InvalidScenario` listing
*every* problem as `file:line:col: dotted.path: message` (GCC style, so editors jump there),
with "did you mean" suggestions for misspelt keys and kinds. Durations are `800ms`, `5s`, `2m`
(or a bare number of seconds); rates are `50/s` or `3000/m`. Node names (`n1`..`nN`) and link
names (`clients->n1`, `n1->n2`) are checked against the cluster, fault times against the run.

This module is pure (text in, dataclasses out). The keys are the contract of
`shared/design.md`; `harness schema` prints the matching JSON Schema (`_schema.py`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._yaml import Located, Path, YamlProblem, load
from .errors import HarnessError
from .phoenix import Timings

TOXIC_KINDS: dict[str, dict[str, str]] = {
    # kind -> attribute -> value type ("duration" in ms on the wire, "int" as is)
    "latency": {"latency": "duration", "jitter": "duration"},
    "bandwidth": {"rate": "int"},
    "slow_close": {"delay": "duration"},
    "timeout": {"timeout": "duration"},
    "reset_peer": {"timeout": "duration"},
    "slicer": {"average_size": "int", "size_variation": "int", "delay": "int"},
    "limit_data": {"bytes": "int"},
}
TOXIC_REQUIRED = {
    "latency": {"latency"},
    "bandwidth": {"rate"},
    "slicer": {"average_size"},
    "limit_data": {"bytes"},
}
NODE_KINDS = ("kill", "terminate", "pause", "restart")
CLIENT_KINDS = ("client_close", "client_crash", "client_leave")
FAULT_KINDS: tuple[str, ...] = (
    *TOXIC_KINDS,
    "down",
    "partition",
    *NODE_KINDS,
    "rolling_restart",
    *CLIENT_KINDS,
    "random",
)
FAULT_DESCRIPTIONS = {
    "latency": "delay every chunk on a link (latency, jitter)",
    "bandwidth": "limit a link to `rate` KB/s",
    "slow_close": "delay the close of a link by `delay`",
    "timeout": "black-hole a link; close it after `timeout` (0: never)",
    "reset_peer": "reset the connection `timeout` after data flows",
    "slicer": "slice data into ~average_size-byte pieces",
    "limit_data": "close a link after `bytes` bytes",
    "down": "disable a link: refuse new connections, close live ones",
    "partition": "cut node-to-node links between groups (one_way: only from the first group);"
    " with pubsub: redis, the nodes not in redis's group lose it",
    "kill": "SIGKILL a node; restart_after brings it back",
    "terminate": "SIGTERM a node (graceful drain); restart_after brings it back",
    "pause": "SIGSTOP a node for the fault's duration, then SIGCONT",
    "restart": "SIGTERM then start a node again at once",
    "rolling_restart": "restart every node in turn, `interval` apart",
    "client_close": "a client bug closes the socket of `clients` clients (a count or N%)",
    "client_crash": "the TCP connection of `clients` clients just dies",
    "client_leave": "`clients` clients leave their first topic and join it again after `for`",
    "random": "a seeded Jepsen-style mix of `count` faults of `kinds`",
}
CHECKS: dict[str, dict[str, str]] = {
    "rejoin": {"within": "duration"},
    "at_most_once": {},
    "no_phantom": {},
    "delivery": {"settle": "duration"},
    "order": {},
    "durability": {},
    "latency": {"p50": "duration", "p99": "duration", "max": "duration"},
    "availability": {"min": "fraction"},
}
CHECK_DESCRIPTIONS = {
    "rejoin": "after every disconnect, each client is joined again to all its topics in time",
    "at_most_once": "no message id is delivered twice to one client on one topic",
    "no_phantom": "nothing delivered that was never published, or on a topic not joined",
    "delivery": "outside fault windows (+ settle) every message reaches every joined client",
    "order": "messages of one publisher on one topic arrive in publish order",
    "durability": "every acknowledged publish is in the store at the end",
    "latency": "delivery latency percentiles (optional thresholds)",
    "availability": "fraction of time clients were joined (optional minimum)",
}
DEFAULT_CHECKS = ("rejoin", "at_most_once", "no_phantom", "delivery", "order", "durability")


class InvalidScenario(HarnessError):
    """The scenario cannot run; `problems` says where and why, all at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class Problem:
    source: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.source}:{self.line}:{self.column}: {where}{self.message}"


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    nodes: int = 3
    pubsub: str = "mesh"
    command: str | None = None
    bugs: tuple[str, ...] = ()

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(f"n{i}" for i in range(1, self.nodes + 1))

    @property
    def node_links(self) -> tuple[str, ...]:
        """The PubSub links: `n1->n2` for the mesh, `n1->redis` with Redis."""
        nodes = self.node_names
        if self.pubsub == "redis":
            return tuple(f"{n}->redis" for n in nodes)
        return tuple(f"{a}->{b}" for a in nodes for b in nodes if a != b)

    @property
    def links(self) -> tuple[str, ...]:
        """Every link the harness puts a proxy on."""
        return tuple(f"clients->{n}" for n in self.node_names) + self.node_links


@dataclass(frozen=True, slots=True)
class ClientsSpec:
    count: int = 10
    topics: tuple[str, ...] = ("room:1",)
    topics_per_client: int = 1
    placement: str = "round_robin"
    on_reconnect: str = "same_node"
    workers: int = 1
    timings: Timings = field(default_factory=Timings)
    rejoin: bool = True
    duplicate_join: bool = False


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    publishers: int = 1
    rate: float = 10.0
    publish_timeout: float | None = None
    retries: int = 0


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    at: float
    duration: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    line: int = 0

    @property
    def end(self) -> float | None:
        return None if self.duration is None else self.at + self.duration


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str = ""
    seed: int = 0
    duration: float = 30.0
    settle: float = 3.0
    cluster: ClusterSpec = field(default_factory=ClusterSpec)
    clients: ClientsSpec = field(default_factory=ClientsSpec)
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    faults: tuple[Fault, ...] = ()
    checks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = "<scenario>"
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def links(self) -> tuple[str, ...]:
        return self.cluster.links


# -- values ------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """`800ms`, `5s`, `2m`, `1h`, or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 800ms, 5s or 2m")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration like 800ms, 5s or 2m, got {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_rate(value: Any) -> float:
    """`50/s`, `3000/m`, or a number per second -> messages per second."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = _RATE.match(str(value))
    if not match:
        raise ValueError(f"expected a rate like 50/s or 3000/m, got {value!r}")
    return float(match.group(1)) / (1.0 if match.group(2) == "s" else 60.0)


# -- validation --------------------------------------------------------------------------------


class _Checker:
    """Collects problems with their positions while reading a located document."""

    def __init__(self, located: Located, source: str) -> None:
        self.located = located
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, path: Path, message: str) -> None:
        line, column = self.located.mark(path)
        dotted = ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")
        self.problems.append(Problem(self.source, line, column, dotted, message))

    def mapping(
        self, value: Any, path: Path, allowed: Mapping[str, Any] | tuple[str, ...]
    ) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(path, f"expected a mapping, got {_kind(value)}")
            return {}
        for key in value:
            if key not in allowed:
                hint = difflib.get_close_matches(key, list(allowed), n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                self.problem((*path, key), f"unknown key {key!r}{suggestion}")
        return value

    def get(
        self,
        data: dict[str, Any],
        path: Path,
        key: str,
        convert: Callable[[Any], Any],
        default: Any = None,
        *,
        required: bool = False,
    ) -> Any:
        if key not in data:
            if required:
                self.problem(path, f"missing required key {key!r}")
            return default
        try:
            return convert(data[key])
        except (ValueError, TypeError) as exc:
            self.problem((*path, key), str(exc))
            return default


def _kind(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


def _int(low: int, high: int | None = None) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {_kind(value)} {value!r}")
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"must be {bound}, got {value}")
        return value

    return convert


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {_kind(value)}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _choice(*options: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if value not in options:
            hint = difflib.get_close_matches(str(value), options, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(f"expected one of {', '.join(options)}, got {value!r}{suggestion}")
        return str(value)

    return convert


def _fraction(value: Any) -> float:
    if isinstance(value, str) and value.endswith("%"):
        value = float(value[:-1]) / 100
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"expected a fraction between 0 and 1 (or a percentage), got {value!r}")
    return float(value)


def _ms_list(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list of durations")
    return tuple(round(parse_duration(v) * 1000) for v in value)


TOP_KEYS = (
    "name",
    "description",
    "seed",
    "duration",
    "settle",
    "cluster",
    "clients",
    "workload",
    "faults",
    "checks",
)


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    try:
        located = load(text)
    except YamlProblem as exc:
        raise InvalidScenario([Problem(source, exc.line, exc.column, "", exc.message)]) from None
    c = _Checker(located, source)
    if not isinstance(located.value, dict):
        c.problem((), "a scenario is a YAML mapping (name, duration, cluster, clients, ...)")
        raise InvalidScenario(c.problems)
    top = c.mapping(located.value, (), TOP_KEYS)
    name = c.get(top, (), "name", _str, "scenario", required=True)
    if isinstance(name, str) and not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        c.problem(("name",), "use letters, digits, '.', '_' and '-' only (it names a directory)")
    description = c.get(top, (), "description", str, "")
    seed = c.get(top, (), "seed", _int(0), 0)
    duration = c.get(top, (), "duration", parse_duration, 30.0, required=True)
    if duration is not None and duration <= 0:
        c.problem(("duration",), "must be longer than 0s")
    settle = c.get(top, (), "settle", parse_duration, 3.0)
    cluster = _cluster(c, top.get("cluster"))
    clients = _clients(c, top.get("clients"))
    workload = _workload(c, top.get("workload"))
    faults = _faults(c, top.get("faults"), cluster, duration or 0.0)
    checks = _checks(c, top.get("checks"))
    if c.problems:
        raise InvalidScenario(c.problems)
    return Scenario(
        name=name,
        description=description,
        seed=seed,
        duration=duration,
        settle=settle,
        cluster=cluster,
        clients=clients,
        workload=workload,
        faults=tuple(faults),
        checks=checks,
        source=source,
        raw=top,
    )


def _cluster(c: _Checker, value: Any) -> ClusterSpec:
    path: Path = ("cluster",)
    data = c.mapping(value, path, ("nodes", "pubsub", "command", "bugs"))
    nodes = c.get(data, path, "nodes", _int(1, 9), 3)
    pubsub = c.get(data, path, "pubsub", _choice("mesh", "redis"), "mesh")
    command = c.get(data, path, "command", _str, None)
    bugs: tuple[str, ...] = ()
    if "bugs" in data:
        raw = data["bugs"]
        if not isinstance(raw, list) or not all(isinstance(b, str) for b in raw):
            c.problem((*path, "bugs"), "expected a list of bug names")
        else:
            bugs = tuple(raw)
            for i, bug in enumerate(bugs):
                if not re.fullmatch(r"[a-z0-9_]+", bug):
                    c.problem((*path, "bugs", i), f"not a bug name: {bug!r}")
    return ClusterSpec(nodes=nodes, pubsub=pubsub, command=command, bugs=bugs)


TIMING_KEYS = ("reconnect_after", "rejoin_after", "heartbeat_interval", "timeout")


def _clients(c: _Checker, value: Any) -> ClientsSpec:
    path: Path = ("clients",)
    data = c.mapping(
        value,
        path,
        (
            "count",
            "topics",
            "topics_per_client",
            "placement",
            "on_reconnect",
            "workers",
            "timings",
            "rejoin",
            "duplicate_join",
        ),
    )
    count = c.get(data, path, "count", _int(1, 50000), 10)
    topics: tuple[str, ...] = ("room:1",)
    if "topics" in data:
        raw = data["topics"]
        if not isinstance(raw, list) or not raw or not all(isinstance(t, str) and t for t in raw):
            c.problem((*path, "topics"), "expected a non-empty list of topic names")
        elif len(set(raw)) != len(raw):
            c.problem((*path, "topics"), "topics must be distinct")
        else:
            topics = tuple(raw)
    per_client = c.get(data, path, "topics_per_client", _int(1), 1)
    if per_client > len(topics):
        c.problem(
            (*path, "topics_per_client"),
            f"a client cannot join {per_client} of only {len(topics)} topics",
        )
    placement = c.get(data, path, "placement", _choice("round_robin", "random"), "round_robin")
    on_reconnect = c.get(
        data, path, "on_reconnect", _choice("same_node", "next_node", "random_node"), "same_node"
    )
    workers = c.get(data, path, "workers", _int(1, 64), 1)
    rejoin = c.get(data, path, "rejoin", _bool, True)
    duplicate_join = c.get(data, path, "duplicate_join", _bool, False)
    tpath: Path = (*path, "timings")
    tdata = c.mapping(data.get("timings"), tpath, TIMING_KEYS)
    default = Timings()
    timings = Timings(
        reconnect_after_ms=c.get(
            tdata, tpath, "reconnect_after", _ms_list, default.reconnect_after_ms
        ),
        rejoin_after_ms=c.get(tdata, tpath, "rejoin_after", _ms_list, default.rejoin_after_ms),
        heartbeat_interval_ms=round(
            c.get(tdata, tpath, "heartbeat_interval", parse_duration, default.heartbeat_interval)
            * 1000
        ),
        timeout_ms=round(c.get(tdata, tpath, "timeout", parse_duration, default.timeout) * 1000),
    )
    return ClientsSpec(
        count=count,
        topics=topics,
        topics_per_client=per_client,
        placement=placement,
        on_reconnect=on_reconnect,
        workers=workers,
        timings=timings,
        rejoin=rejoin,
        duplicate_join=duplicate_join,
    )


def _workload(c: _Checker, value: Any) -> WorkloadSpec:
    path: Path = ("workload",)
    data = c.mapping(value, path, ("publishers", "rate", "publish_timeout", "retries"))
    return WorkloadSpec(
        publishers=c.get(data, path, "publishers", _int(0, 100), 1),
        rate=c.get(data, path, "rate", parse_rate, 10.0),
        publish_timeout=c.get(data, path, "publish_timeout", parse_duration, None),
        retries=c.get(data, path, "retries", _int(0, 10), 0),
    )


_COMMON_FAULT_KEYS = ("at", "for", "kind")


def _faults(c: _Checker, value: Any, cluster: ClusterSpec, duration: float) -> list[Fault]:
    if value is None:
        return []
    if not isinstance(value, list):
        c.problem(("faults",), f"expected a list of faults, got {_kind(value)}")
        return []
    links = list(cluster.links)
    faults = []
    for i, raw in enumerate(value):
        path: Path = ("faults", i)
        if not isinstance(raw, dict):
            c.problem(path, f"a fault is a mapping with at, kind, ...; got {_kind(raw)}")
            continue
        kind = c.get(raw, path, "kind", _choice(*FAULT_KINDS), None, required=True)
        at = c.get(raw, path, "at", parse_duration, 0.0, required=True)
        length = c.get(raw, path, "for", parse_duration, None)
        if at is not None and duration and at >= duration:
            c.problem((*path, "at"), f"starts at {at:g}s, after the run ends ({duration:g}s)")
        if length is not None and at is not None and duration and at + length > duration:
            c.problem(
                (*path, "for"), f"ends at {at + length:g}s, after the run ends ({duration:g}s)"
            )
        if kind is None:
            continue
        params = _fault_params(c, raw, path, kind, cluster, links, length)
        line = c.located.mark(path)[0]
        faults.append(Fault(kind=kind, at=at or 0.0, duration=length, params=params, line=line))
    return faults


def _links(c: _Checker, raw: dict[str, Any], path: Path, links: list[str]) -> tuple[str, ...]:
    value = raw.get("link")
    if value is None:
        c.problem(path, "missing required key 'link' (e.g. clients->n1 or n1->n2)")
        return ()
    names = value if isinstance(value, list) else [value]
    for name in names:
        if name not in links:
            hint = difflib.get_close_matches(str(name), links, n=1)
            via_redis = f"{str(name).partition('->')[0]}->redis"
            if via_redis in links:
                hint = [via_redis]  # with Redis, a node's one PubSub link is to Redis
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            c.problem((*path, "link"), f"unknown link {name!r}{suggestion}")
    return tuple(str(n) for n in names)


def _node(c: _Checker, raw: dict[str, Any], path: Path, nodes: tuple[str, ...]) -> str:
    name = raw.get("node")
    if name not in nodes:
        c.problem(
            (*path, "node") if "node" in raw else path,
            f"expected one of the cluster's nodes {', '.join(nodes)}, got {name!r}",
        )
    return str(name)


def _fault_params(
    c: _Checker,
    raw: dict[str, Any],
    path: Path,
    kind: str,
    cluster: ClusterSpec,
    links: list[str],
    length: float | None,
) -> dict[str, Any]:
    nodes = cluster.node_names

    def needs_for() -> None:
        if length is None:
            c.problem(path, f"a {kind} fault needs 'for' (how long it lasts)")

    if kind in TOXIC_KINDS:
        attrs = TOXIC_KINDS[kind]
        c.mapping(raw, path, (*_COMMON_FAULT_KEYS, "link", "stream", "toxicity", *attrs))
        needs_for()
        params: dict[str, Any] = {"links": _links(c, raw, path, links)}
        params["stream"] = c.get(
            raw, path, "stream", _choice("both", "upstream", "downstream"), "both"
        )
        params["toxicity"] = c.get(raw, path, "toxicity", _fraction, 1.0)
        for attr in TOXIC_REQUIRED.get(kind, set()):
            if attr not in raw:
                c.problem(path, f"a {kind} fault needs {attr!r}")
        for attr, kind_of in attrs.items():
            if attr in raw:
                if kind_of == "duration":
                    seconds = c.get(raw, path, attr, parse_duration, 0.0)
                    params[attr] = round(seconds * 1000)
                else:
                    params[attr] = c.get(raw, path, attr, _int(0), 0)
        if (
            kind == "slicer"
            and "average_size" in params
            and (
                params["average_size"] <= 0
                or params.get("size_variation", 0) >= params["average_size"]
            )
        ):
            c.problem(
                path,
                "slicer needs average_size > 0 and size_variation < average_size"
                " (otherwise toxiproxy-server crashes)",
            )
        return params
    if kind == "down":
        c.mapping(raw, path, (*_COMMON_FAULT_KEYS, "link"))
        needs_for()
        return {"links": _links(c, raw, path, links)}
    if kind == "partition":
        c.mapping(raw, path, (*_COMMON_FAULT_KEYS, "groups", "one_way"))
        needs_for()
        groups = raw.get("groups")
        ok = (
            isinstance(groups, list)
            and len(groups) >= 2
            and all(isinstance(g, list) and g for g in groups)
        )
        if not ok:
            c.problem(
                (*path, "groups") if "groups" in raw else path,
                "expected groups: a list of two or more non-empty lists of nodes",
            )
            return {"groups": (), "one_way": False}
        assert isinstance(groups, list)
        redis = cluster.pubsub == "redis"
        members = (*nodes, "redis") if redis else nodes
        seen: set[str] = set()
        for gi, group in enumerate(groups):
            for ni, name in enumerate(group):
                if name not in members:
                    c.problem((*path, "groups", gi, ni), f"unknown node {name!r}")
                elif name in seen:
                    c.problem((*path, "groups", gi, ni), f"node {name} is in two groups")
                seen.add(name)
        one_way = c.get(raw, path, "one_way", _bool, False)
        if redis and "redis" not in seen:
            c.problem(
                (*path, "groups"),
                "with pubsub: redis, put redis in one group; the nodes of the other groups"
                " lose their link to it",
            )
        if redis and one_way:
            c.problem((*path, "one_way"), "one_way needs pubsub: mesh (a Redis link is two-way)")
        return {"groups": tuple(tuple(g) for g in groups), "one_way": one_way}
    if kind in NODE_KINDS:
        extra = ("restart_after",) if kind in ("kill", "terminate") else ()
        c.mapping(raw, path, (*_COMMON_FAULT_KEYS, "node", *extra))
        if kind == "pause":
            needs_for()
        params = {"node": _node(c, raw, path, nodes)}
        if extra:
            params["restart_after"] = c.get(raw, path, "restart_after", parse_duration, None)
        return params
    if kind == "rolling_restart":
        c.mapping(raw, path, (*_COMMON_FAULT_KEYS, "interval", "nodes"))
        chosen = raw.get("nodes", list(nodes))
        if not isinstance(chosen, list) or any(n not in nodes for n in chosen):
            c.problem((*path, "nodes"), f"expected a list of nodes among {', '.join(nodes)}")
            chosen = list(nodes)
        return {
            "nodes": tuple(chosen),
            "interval": c.get(raw, path, "interval", parse_duration, 2.0),
        }
    if kind in CLIENT_KINDS:
        c.mapping(raw, path, (*_COMMON_FAULT_KEYS, "clients"))
        if kind == "client_leave":
            needs_for()
        return {"clients": c.get(raw, path, "clients", _client_share, 1)}
    # random
    c.mapping(raw, path, (*_COMMON_FAULT_KEYS, "count", "kinds", "min_for", "max_for"))
    needs_for()
    kinds = raw.get("kinds", ["latency", "down", "partition", "kill", "pause", "client_crash"])
    allowed = [k for k in FAULT_KINDS if k not in ("random", "rolling_restart")]
    if not isinstance(kinds, list) or any(k not in allowed for k in kinds) or not kinds:
        c.problem((*path, "kinds"), f"expected a list of fault kinds among {', '.join(allowed)}")
        kinds = ["kill"]
    return {
        "count": c.get(raw, path, "count", _int(1, 100), 3),
        "kinds": tuple(kinds),
        "min_for": c.get(raw, path, "min_for", parse_duration, 1.0),
        "max_for": c.get(raw, path, "max_for", parse_duration, 4.0),
    }


def _client_share(value: Any) -> int | str:
    if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?%", value):
        if not 0 < float(value[:-1]) <= 100:
            raise ValueError("a percentage of clients must be within (0, 100]")
        return value
    return _int(1)(value)


def _checks(c: _Checker, value: Any) -> dict[str, dict[str, Any]]:
    if value is None:
        return {name: {} for name in DEFAULT_CHECKS}
    path: Path = ("checks",)
    data = c.mapping(value, path, tuple(CHECKS))
    out: dict[str, dict[str, Any]] = {}
    for name, options in data.items():
        if name not in CHECKS:
            continue
        opath: Path = (*path, name)
        spec = CHECKS[name]
        raw = c.mapping(options, opath, tuple(spec))
        parsed: dict[str, Any] = {}
        for key, kind_of in spec.items():
            if key in raw:
                convert = parse_duration if kind_of == "duration" else _fraction
                parsed[key] = c.get(raw, opath, key, convert, None)
        out[name] = parsed
    return out
