"""Client behaviour, in one home: what every client of the swarm does, written once.

The `clients:` and `workload:` sections of the grammar live here (with the `app:` section of
`harness.grammar.contract` they are everything a client is told), and so does the one value a client
is made from:

    Behaviour    the sections a client reads (timings, client defects, the app contract, the
                 publishing rules), the run's id, and its role: a publisher is a correct client
                 (every field marked as a defect is at its default) that may retry publishes
    ClientPlan   one client: its id, role, topics and the node it starts on
    SwarmPlan    every client's plan, the behaviour of each role, the nodes' endpoints, the seed;
                 what the swarm runs and what a worker process is handed (one typed round trip:
                 `model_dump_json` / `model_validate_json`, nothing written by hand)

`harness.scenario.plan_clients(scenario, endpoints, run_id)` makes the `SwarmPlan` (seeded
topics and placement). Adding a client setting is one field in a section here and the one line
of the client that reads it (`behaviour.clients.<field>`); a client defect also says
`defect=True` in its field's schema extra, so publishers run without it. Pure: pydantic, the
protocol's `Timings`, the templates; no grammar of faults or checks, so a swarm worker loads
only this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from ..phoenix import Timings
from .contract import AppSpec
from .hosts import MAX_WORKERS, WorkerHostSpec
from .section import Section, grammar_of
from .units import Bounded, Duration, Flag, Millis, OneOf, Rate

Placement = Literal["round_robin", "random"]
OnReconnect = Literal["same_node", "next_node", "random_node"]
Role = Literal["client", "publisher"]

_DEFAULT_TIMINGS = Timings()
MIN_TIMER_MS = 10
MAX_CLIENTS = 50_000  # on one machine: this one, or each of `clients.hosts`
MAX_HOSTS = 64


def _millis_list(value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list of durations")
    return value


def _host_list(value: Any) -> Any:
    if isinstance(value, list) and len(value) > MAX_HOSTS:
        raise ValueError(f"at most {MAX_HOSTS} worker hosts")
    return value


class TimingsSpec(Section):
    """The client's timings (phoenix.js defaults)."""

    reconnect_after: Annotated[tuple[Millis, ...], BeforeValidator(_millis_list)] = (
        _DEFAULT_TIMINGS.reconnect_after_ms
    )
    rejoin_after: Annotated[tuple[Millis, ...], BeforeValidator(_millis_list)] = (
        _DEFAULT_TIMINGS.rejoin_after_ms
    )
    heartbeat_interval: Millis = _DEFAULT_TIMINGS.heartbeat_interval_ms
    timeout: Millis = _DEFAULT_TIMINGS.timeout_ms

    @field_validator("heartbeat_interval", "timeout")
    @classmethod
    def _not_zero(cls, millis: int) -> int:
        if millis < MIN_TIMER_MS:
            raise ValueError(f"must be at least {MIN_TIMER_MS}ms (0 would spin the client)")
        return millis

    def timings(self) -> Timings:
        return Timings(
            reconnect_after_ms=tuple(self.reconnect_after),
            rejoin_after_ms=tuple(self.rejoin_after),
            heartbeat_interval_ms=self.heartbeat_interval,
            timeout_ms=self.timeout,
        )


def _topic_list(value: Any) -> Any:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("expected a non-empty list of topic names")
    if not all(isinstance(t, str) and t for t in value):
        raise ValueError("expected a non-empty list of topic names")
    if len(set(value)) != len(value):
        raise ValueError("topics must be distinct")
    return value


def _defect(description: str) -> Any:
    """A field that is a client defect: publishers run without it (`ClientsSpec.correct`)."""
    return Field(description=description, json_schema_extra={"defect": True})


class ClientsSpec(Section):
    """The swarm: how many clients, on which topics, placed how, with which defects."""

    hosts: Annotated[
        tuple[WorkerHostSpec, ...],
        BeforeValidator(lambda v: _host_list(v)),
        Field(
            description=(
                "machines whose swarm workers run the clients, over SSH ({host, port, user,"
                " identity, known_hosts, check_host_key, python, workers, directory}); default:"
                " this machine"
            )
        ),
    ] = ()
    count: Annotated[int, Bounded(1)] = 10  # at most MAX_CLIENTS a machine (`_per_host`)
    topics: Annotated[tuple[str, ...], BeforeValidator(_topic_list)] = ("room:1",)
    topics_per_client: Annotated[int, Bounded(1)] = 1
    placement: Annotated[Placement, OneOf(("round_robin", "random"))] = "round_robin"
    nodes: Annotated[
        tuple[str, ...] | None,
        Field(description="the nodes clients first connect to (default: all); publishers use all"),
    ] = None
    on_reconnect: Annotated[OnReconnect, OneOf(("same_node", "next_node", "random_node"))] = (
        "same_node"
    )
    workers: Annotated[
        int,
        Bounded(1, MAX_WORKERS),
        Field(description="worker processes on this machine (with hosts: each host's workers)"),
    ] = 1
    timings_spec: Annotated[TimingsSpec, BeforeValidator(lambda v: {} if v is None else v)] = Field(
        default_factory=TimingsSpec, alias="timings"
    )
    rejoin: Annotated[
        Flag, _defect("false: the client defect that reconnects but never rejoins")
    ] = True
    duplicate_join: Annotated[
        Flag, _defect("true: the client defect that sends every join twice")
    ] = False
    legacy_close_1000: Annotated[
        Flag, _defect("true: phoenix.js before 1.8.16, which stays down after a close with 1000")
    ] = False

    @field_validator("hosts")
    @classmethod
    def _hosts_reach_the_proxies(
        cls, hosts: tuple[WorkerHostSpec, ...], info: ValidationInfo
    ) -> tuple[WorkerHostSpec, ...]:
        grammar = grammar_of(info)
        if hosts and grammar is not None and grammar.topology.isolated:
            raise ValueError(
                "worker hosts cannot reach the clients' proxies inside an isolated network's"
                " namespaces (cluster.network: isolated); put the nodes on SSH hosts"
                " (backend: ssh) or run the swarm here"
            )
        return hosts

    @field_validator("count")
    @classmethod
    def _per_host(cls, count: int, info: ValidationInfo) -> int:
        hosts = len(info.data.get("hosts", ()))
        if count > MAX_CLIENTS * max(1, hosts):
            where = f"{hosts} worker hosts" if hosts else "this machine (no clients.hosts)"
            raise ValueError(
                f"at most {MAX_CLIENTS:,} clients a machine: {count:,} on {where}; add hosts"
            )
        return count

    @field_validator("workers")
    @classmethod
    def _workers_here(cls, workers: int, info: ValidationInfo) -> int:
        if workers > 1 and info.data.get("hosts"):
            raise ValueError(
                "with clients.hosts the workers run there: set each host's workers instead"
            )
        return workers

    @field_validator("nodes", mode="before")
    @classmethod
    def _known_nodes(cls, value: Any, info: ValidationInfo) -> Any:
        grammar = grammar_of(info)
        if value is None or grammar is None:
            return value
        names = grammar.topology.nodes
        if not isinstance(value, list) or not value or any(n not in names for n in value):
            raise ValueError(f"expected a non-empty list of nodes among {', '.join(names)}")
        if len(set(value)) != len(value):
            raise ValueError("nodes must be distinct")
        return value

    @field_validator("topics_per_client")
    @classmethod
    def _enough_topics(cls, per_client: int, info: ValidationInfo) -> int:
        topics = info.data.get("topics", ("room:1",))
        if per_client > len(topics):
            raise ValueError(f"a client cannot join {per_client} of only {len(topics)} topics")
        return per_client

    @property
    def processes(self) -> int:
        """How many swarm worker processes: this machine's `workers`, or every host's; 1 means
        the clients run in the harness's own loop (no worker process)."""
        return sum(h.workers for h in self.hosts) if self.hosts else self.workers

    @property
    def in_processes(self) -> bool:
        """Whether the clients run in worker processes (whose history parts are merged)."""
        return self.workers > 1 or bool(self.hosts)

    @property
    def timings(self) -> Timings:
        return self.timings_spec.timings()

    def correct(self) -> ClientsSpec:
        """This section with every client defect at its default (how publishers behave)."""
        defects = {
            name: field.default
            for name, field in type(self).model_fields.items()
            if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("defect")
        }
        return self.model_copy(update=defects)


class WorkloadSpec(Section):
    """The publishers: how many, at what total rate, with what timeout and retries."""

    publishers: Annotated[int, Bounded(0, 100)] = 1
    rate: Rate = 10.0
    publish_timeout: Duration | None = None
    retries: Annotated[int, Bounded(0, 10)] = 0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a client connects to a node: its name and URL (`ws://host:port/socket`)."""

    name: str
    url: str


class Behaviour(BaseModel):
    """What a client of one role does: the sections it reads, the run's id, its role."""

    model_config = ConfigDict(frozen=True)

    clients: ClientsSpec = Field(default_factory=ClientsSpec)
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec)
    app: AppSpec = Field(default_factory=AppSpec)
    run_id: str = ""  # in every message id: runs on one persistent store never collide
    role: Role = "client"

    @property
    def publisher(self) -> bool:
        return self.role == "publisher"

    def as_publisher(self) -> Behaviour:
        """The same sections as a publisher runs them: a correct client (no defect)."""
        return self.model_copy(update={"role": "publisher", "clients": self.clients.correct()})

    def message_id(self, publisher: str, seq: int) -> str:
        return f"{self.run_id}-{publisher}-{seq}" if self.run_id else f"{publisher}-{seq}"


class ClientPlan(BaseModel):
    """One client: who it is, what it joins, where it starts."""

    model_config = ConfigDict(frozen=True)

    id: str
    role: Role = "client"
    topics: tuple[str, ...]
    first_node: int = 0


class SwarmPlan(BaseModel):
    """Everything the swarm runs: each client's plan, each role's behaviour, the nodes' endpoints
    (through their proxies) and the seed (clients of `random_node` draw from it). A worker
    process is handed its share of it as JSON (`share`)."""

    model_config = ConfigDict(frozen=True)

    endpoints: tuple[Endpoint, ...]
    behaviours: dict[Role, Behaviour]
    clients: tuple[ClientPlan, ...]
    seed: int = 0
    body_size: Annotated[int, Bounded(0)] = 16

    def behaviour(self, plan: ClientPlan) -> Behaviour:
        return self.behaviours[plan.role]

    @property
    def publishing(self) -> Behaviour:
        """The publishers' behaviour, whose sections hold the schedule (rate, timeout)."""
        return self.behaviours.get("publisher") or self.behaviours["client"].as_publisher()

    @property
    def publishers(self) -> int:
        """How many publishers the scenario has (in this plan or in others' shares)."""
        return self.publishing.workload.publishers

    def share(self, clients: tuple[ClientPlan, ...]) -> SwarmPlan:
        """The same plan for a part of the clients (a worker process's)."""
        return self.model_copy(update={"clients": clients})


class WorkerSpec(BaseModel):
    """What a swarm worker process is given (`harness.swarm.worker`), as one JSON file."""

    model_config = ConfigDict(frozen=True)

    origin: float  # the run clock's origin, shared by every process of the run
    worker: int
    history: str  # the worker's history part
    plan: SwarmPlan
    stats_interval: float = 0.2


__all__ = [
    "Behaviour",
    "ClientPlan",
    "ClientsSpec",
    "Endpoint",
    "OnReconnect",
    "Placement",
    "Role",
    "SwarmPlan",
    "TimingsSpec",
    "WorkerSpec",
    "WorkloadSpec",
]
