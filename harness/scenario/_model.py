"""The scenario grammar, written once as typed models (pydantic v2).

Why pydantic and not msgspec: a scenario must report *every* problem at once, each with its
path, and pydantic collects all errors of a document with their `loc`, while msgspec stops at
the first. Pydantic also emits the JSON Schema from the same models (`harness schema`), dumps
them back (the resolved `scenario.yaml`), and takes a validation context, which carries the
cluster's nodes and links and the run's length so the cross-field rules (an unknown link, a
fault after the run's end) are ordinary field validators, located like the rest.

The fault union comes from `harness.faults` (one model per kind, discriminated by `kind`); the
`checks:` section from `harness.checkers` (one options model per checker).
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    create_model,
    field_validator,
)

from ..checkers import DEFAULT_CHECKS, REGISTRY
from ..faults import AnyFault, Fault, Topology, conflict, grammar_of
from ..phoenix import Timings
from ..units import Bounded, Duration, Flag, Millis, OneOf, Rate, Text, kind_of
from . import _reference as reference
from ._app import AppSpec, placeholders

PubSub = Literal["mesh", "redis"]
Backend = Literal["local", "docker", "compose"]
Placement = Literal["round_robin", "random"]
OnReconnect = Literal["same_node", "next_node", "random_node"]
COMMAND_PLACEHOLDERS = (
    "{python} {node} {host} {port} {pubsub_port} {peers} {peer_args} {pubsub} {pubsub_args}"
    " {store} {bug_args} {cluster_secret}"
)
_COMMAND_NAMES = frozenset(re.findall(r"\{(\w+)\}", COMMAND_PLACEHOLDERS))


def _command_template(value: Any) -> Any:
    """A node command (or env value, or cwd) template: only the known placeholders."""
    if value is None:
        return value
    texts = value.values() if isinstance(value, dict) else [value]
    for text in texts:
        try:
            names = placeholders(text)
        except ValueError as exc:
            raise ValueError(f"not a template: {exc}") from None
        unknown = sorted(names - _COMMAND_NAMES)
        if unknown:
            hint = difflib.get_close_matches(unknown[0], sorted(_COMMAND_NAMES), n=1)
            more = f"did you mean {{{hint[0]}}}?" if hint else f"known: {COMMAND_PLACEHOLDERS}"
            raise ValueError(f"no placeholder {{{unknown[0]}}}; {more}")
    return value


class HealthSpec(BaseModel):
    """When a started node counts as up: an HTTP GET of `path` answers 200, or with `tcp: true`
    its port accepts a connection; within `timeout`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Annotated[str, Field(pattern=r"^/\S*$")] = "/health"
    tcp: Flag = False
    timeout: Duration = 15.0


class ReadySpec(BaseModel):
    """What else a run waits for before the workload: `pubsub_links: auto` waits for the PubSub
    links to be up only where a node's /stats reports them (real Phoenix has no /stats);
    `wait` requires the report; `none` never waits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pubsub_links: Literal["auto", "wait", "none"] = "auto"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _bug_names(value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(b, str) for b in value):
        raise ValueError("expected a list of bug names")
    for bug in value:
        if not re.fullmatch(r"[a-z0-9_]+", bug):
            raise ValueError(f"not a bug name: {bug!r}")
    return value


class ClusterSpec(Section):
    """The cluster under test: how many nodes, how they share broadcasts, how one starts."""

    nodes: Annotated[int, Bounded(1, 9)] = 3
    pubsub: Annotated[
        PubSub,
        OneOf(("mesh", "redis")),
        Field(
            description=(
                "mesh: node-to-node links n1->n2; redis: every node through one Redis server,"
                " links n1->redis"
            )
        ),
    ] = "mesh"
    backend: Annotated[
        Backend,
        OneOf(("local", "docker", "compose")),
        Field(
            description=(
                "local: a process per node; docker: a container per node from `image`;"
                " compose: the services of `compose_file` (see `harness list`)"
            )
        ),
    ] = "local"
    image: Annotated[
        str | None,
        Field(
            pattern=r"^[a-z0-9][a-z0-9._/:@-]{0,254}$",
            description="backend docker: the node image (default: the reference node image)",
        ),
    ] = None
    compose_file: Annotated[
        Text | None,
        Field(description="backend compose: the compose file (relative to the working directory)"),
    ] = None
    services: Annotated[
        tuple[Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")], ...],
        Field(
            description="backend compose: the service of each node, n1 first (default: n1..)",
            validate_default=True,
        ),
    ] = ()
    command: Annotated[
        Text | None,
        BeforeValidator(_command_template),
        Field(description=f"template: {COMMAND_PLACEHOLDERS}"),
    ] = None
    env: Annotated[
        dict[str, str],
        BeforeValidator(_command_template),
        Field(description="extra environment of each node; values are templates like command"),
    ] = Field(default_factory=dict)
    cwd: Annotated[
        str | None,
        BeforeValidator(_command_template),
        Field(description="working directory of each node's command (a template)"),
    ] = None
    health: HealthSpec = Field(default_factory=HealthSpec)
    ready: ReadySpec = Field(default_factory=ReadySpec)
    trace: Annotated[
        Flag,
        Field(
            description=(
                "the reference server writes every PubSub send and receive to"
                " logs/NODE.trace.jsonl, for the report's message diagram (local backend)"
            )
        ),
    ] = False
    bugs: Annotated[
        tuple[str, ...],
        BeforeValidator(_bug_names),
        Field(description="defects of the reference server to switch on (see `harness list`)"),
    ] = ()

    @field_validator("image")
    @classmethod
    def _image_needs_docker(cls, image: str | None, info: ValidationInfo) -> str | None:
        if image is not None and info.data.get("backend") != "docker":
            raise ValueError("an image is for backend: docker")
        return image

    @field_validator("compose_file")
    @classmethod
    def _file_needs_compose(cls, path: str | None, info: ValidationInfo) -> str | None:
        if path is not None and info.data.get("backend") != "compose":
            raise ValueError("a compose file is for backend: compose")
        return path

    @field_validator("services")
    @classmethod
    def _one_service_per_node(
        cls, services: tuple[str, ...], info: ValidationInfo
    ) -> tuple[str, ...]:
        backend = info.data.get("backend")
        if services and backend != "compose":
            raise ValueError("services are for backend: compose")
        if backend == "compose" and info.data.get("compose_file") is None:
            raise ValueError("backend: compose needs compose_file (the project's compose file)")
        count = info.data.get("nodes", 3)
        if services and len(services) != count:
            raise ValueError(f"expected one service per node ({count}), got {len(services)}")
        if len(set(services)) != len(services):
            raise ValueError("each node needs a service of its own")
        return services

    @field_validator("trace")
    @classmethod
    def _trace_needs_the_reference_server(cls, trace: bool, info: ValidationInfo) -> bool:
        if trace and (info.data.get("command") is not None or info.data.get("backend") != "local"):
            raise ValueError("trace is the reference server's, on the local backend")
        return trace

    @field_validator("bugs")
    @classmethod
    def _known_bugs(cls, bugs: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if info.data.get("command") is not None:
            return bugs  # another server's switches: passed through as {bug_args}
        pubsub = info.data.get("pubsub", "mesh")
        for bug in bugs:
            if bug not in reference.BUGS:
                hint = difflib.get_close_matches(bug, sorted(reference.BUGS), n=1)
                known = (
                    f"did you mean {hint[0]!r}?"
                    if hint
                    else "known: " + ", ".join(sorted(reference.BUGS))
                )
                raise ValueError(f"the reference server has no bug {bug!r}; {known}")
            if pubsub == "mesh" and bug in reference.REDIS_ONLY:
                raise ValueError(f"{bug} is a Redis PubSub defect; it needs pubsub: redis")
            if pubsub == "redis" and bug in reference.MESH_ONLY:
                raise ValueError(f"{bug} is a mesh defect; it needs pubsub: mesh")
        return bugs

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

    @property
    def topology(self) -> Topology:
        return Topology(self.node_names, self.links, self.pubsub)


def _millis_list(value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list of durations")
    return value


_DEFAULT_TIMINGS = Timings()
MIN_TIMER_MS = 10
MAX_NAME = 80


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
    if not isinstance(value, list) or not value or not all(isinstance(t, str) and t for t in value):
        raise ValueError("expected a non-empty list of topic names")
    if len(set(value)) != len(value):
        raise ValueError("topics must be distinct")
    return value


class ClientsSpec(Section):
    """The swarm: how many clients, on which topics, placed how, with which defects."""

    count: Annotated[int, Bounded(1, 50000)] = 10
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
    workers: Annotated[int, Bounded(1, 64)] = 1
    timings_spec: Annotated[TimingsSpec, BeforeValidator(lambda v: {} if v is None else v)] = Field(
        default_factory=TimingsSpec, alias="timings"
    )
    rejoin: Annotated[
        Flag, Field(description="false: the client defect that reconnects but never rejoins")
    ] = True
    duplicate_join: Annotated[
        Flag, Field(description="true: the client defect that sends every join twice")
    ] = False

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
    def timings(self) -> Timings:
        return self.timings_spec.timings()


class WorkloadSpec(Section):
    """The publishers: how many, at what total rate, with what timeout and retries."""

    publishers: Annotated[int, Bounded(0, 100)] = 1
    rate: Rate = 10.0
    publish_timeout: Duration | None = None
    retries: Annotated[int, Bounded(0, 10)] = 0


if TYPE_CHECKING:
    ChecksSpec = Section
else:
    ChecksSpec = create_model(
        "ChecksSpec",
        __base__=Section,
        __doc__="The checks to run and their options (default: " + ", ".join(DEFAULT_CHECKS) + ")",
        **{
            check.name: (
                Annotated[
                    check.options | None,
                    BeforeValidator(lambda v: {} if v is None else v),
                    Field(description=check.description),
                ],
                None,
            )
            for check in REGISTRY
        },
    )


def _name(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {kind_of(value)}")
    if len(value) > MAX_NAME:
        raise ValueError(f"at most {MAX_NAME} characters (it names a directory), got {len(value)}")
    if not re.fullmatch(r"[A-Za-z0-9._-]+", value):
        raise ValueError("use letters, digits, '.', '_' and '-' only (it names a directory)")
    return value


def _positive(duration: float) -> float:
    if duration <= 0:
        raise ValueError("must be longer than 0s")
    return duration


class Scenario(Section):
    """A channel chaos scenario: the cluster, the clients, the workload, the faults, the checks."""

    name: Annotated[
        str,
        BeforeValidator(_name),
        Field(json_schema_extra={"pattern": r"^[A-Za-z0-9._-]+$"}),
    ]
    description: Annotated[str, BeforeValidator(str)] = ""
    seed: Annotated[int, Bounded(0)] = 0
    duration: Duration
    settle: Duration = 3.0
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    clients: ClientsSpec = Field(default_factory=ClientsSpec)
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec)
    app: AppSpec = Field(default_factory=AppSpec)
    faults: tuple[AnyFault, ...] = ()
    checks_spec: ChecksSpec | None = Field(default=None, alias="checks")
    _source: str = PrivateAttr("<scenario>")

    _positive_duration = field_validator("duration")(_positive)

    @field_validator("cluster", "clients", "workload", "app", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("faults", mode="before")
    @classmethod
    def _a_list(cls, value: Any) -> Any:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise ValueError(f"expected a list of faults, got {kind_of(value)}")
        return value

    @field_validator("faults")
    @classmethod
    def _one_at_a_time(cls, faults: tuple[Fault, ...]) -> tuple[Fault, ...]:
        for i, fault in enumerate(faults):
            clash = conflict(faults[:i], fault)
            if clash is not None:
                j, node = clash
                raise ValueError(
                    f"faults[{i}] ({fault.kind_name()} at {fault.at:g}s) holds {node} while"
                    f" faults[{j}] ({faults[j].kind_name()} at {faults[j].at:g}s) still does;"
                    " one node fault at a time per node"
                )
        return faults

    @property
    def source(self) -> str:
        return self._source

    @property
    def links(self) -> tuple[str, ...]:
        return self.cluster.links

    @property
    def checks(self) -> dict[str, dict[str, Any]]:
        """Check name -> its options (seconds and fractions), in the registry's order."""
        if self.checks_spec is None:
            return {name: {} for name in DEFAULT_CHECKS}
        out: dict[str, dict[str, Any]] = {}
        for name in type(self.checks_spec).model_fields:
            options = getattr(self.checks_spec, name)
            if options is not None:
                out[name] = options.model_dump(exclude_none=True)
        return out

    def with_faults(self, faults: tuple[Fault, ...], seed: int) -> Scenario:
        scenario = self.model_copy(update={"faults": faults, "seed": seed})
        scenario._source = self._source
        return scenario
