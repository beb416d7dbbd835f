"""The scenario's `cluster:` section: how many nodes, how they share broadcasts, how each one
starts and where (a local process, a container, a compose service), when it counts as up, and
the reference server's defects to switch on. Part of the grammar (`_model`), in a module of its
own so each stays a size a reader can hold.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
)

from ..faults import Topology
from ..grammar.hosts import HostSpec
from ..grammar.section import Section
from ..grammar.templates import placeholders
from ..grammar.units import Bounded, Duration, Flag, OneOf, Text
from . import _reference as reference

PubSub = Literal["mesh", "redis"]
Backend = Literal["local", "docker", "compose", "ssh"]  # the names of `harness.cluster.BACKENDS`
Network = Literal["shared", "isolated"]
Service = Annotated[str, Field(pattern=r"^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost):\d{1,5}$")]
COMMAND_PLACEHOLDERS = (
    "{python} {node} {host} {port} {pubsub_port} {peers} {peer_args} {pubsub} {pubsub_args}"
    " {store} {bug_args} {cluster_secret} {peer_hosts} {hostname}"
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


PROBE_TAGS = ("probe_mapping", "probe_switch")  # union tags in error locations, not keys


def _switch(value: Any) -> Any:
    """`probe: false` reads as `off` (YAML 1.2's false; `off` itself stays a string here)."""
    if value is False:
        return "off"
    if value is True:
        return "on"
    return value


def _probe_topic(value: Any) -> Any:
    if value is None:
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a topic name (a template that may use {run})")
    try:
        names = placeholders(value)
    except ValueError as exc:
        raise ValueError(f"not a template: {exc}") from None
    if names - {"run"}:
        raise ValueError(
            f"no placeholder {{{sorted(names - {'run'})[0]}}} here; a probe topic may use {{run}}"
        )
    return value


class ProbeSpec(BaseModel):
    """The readiness probe: one client per node joins `topic` and publishes through the app's
    own publish event until every node has received every node's probe (`harness.run.probe`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: Annotated[
        str | None,
        BeforeValidator(_probe_topic),
        Field(
            description=(
                "the probe's topic, a template that may use {run} (default: the first topic's"
                " prefix and a run-unique name, e.g. room:probe-r1a2b3c)"
            )
        ),
    ] = None


class ReadySpec(BaseModel):
    """When the cluster is ready for the workload. `probe` (on by default) proves it through the
    app's own delivery path: every node receives a probe published on every node, before the
    workload (`timeout`, else exit 3 naming the pair) and again after each heal of a node or
    node-link fault (`reform_timeout`: how long re-formation is measured; the final read waits
    at most this long after the final heal). `pubsub_links: auto` also waits for the PubSub
    links where a node's /stats reports them; `wait` requires the report; `none` never waits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pubsub_links: Literal["auto", "wait", "none"] = "auto"
    probe: Annotated[
        Annotated[ProbeSpec, Tag(PROBE_TAGS[0])]
        | Annotated[Literal["on", "off"], Tag(PROBE_TAGS[1])],
        Discriminator(lambda v: PROBE_TAGS[1] if isinstance(v, str | bool) else PROBE_TAGS[0]),
        BeforeValidator(_switch),
        Field(description="on (the default), off, or {topic: ...}"),
    ] = Field(default_factory=ProbeSpec)
    timeout: Duration = 30.0
    reform_timeout: Duration = 10.0

    @property
    def probing(self) -> ProbeSpec | None:
        """The probe's settings, or None when it is off."""
        if self.probe == "off":
            return None
        return ProbeSpec() if self.probe == "on" else self.probe


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
        OneOf(get_args(PubSub)),
        Field(
            description=(
                "mesh: node-to-node links n1->n2; redis: every node through one Redis server,"
                " links n1->redis"
            )
        ),
    ] = "mesh"
    backend: Annotated[
        Backend,
        OneOf(get_args(Backend)),
        Field(
            description=(
                "local: a process per node; docker: a container per node from `image`;"
                " compose: the services of `compose_file` (see `harness list`)"
            )
        ),
    ] = "local"
    network: Annotated[
        Network,
        OneOf(get_args(Network)),
        Field(
            description=(
                "shared: every node on this machine's loopback, node links through Toxiproxy;"
                " isolated: each node in a network namespace of its own (its own address, port"
                " 4000, host name and epmd), node links cut by packet rules whatever the protocol"
                " (Erlang distribution too); local backend"
            )
        ),
    ] = "shared"
    forward: Annotated[
        tuple[
            Annotated[str, Field(pattern=r"^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost):\d{1,5}$")],
            ...,
        ],
        Field(
            description=(
                "network: isolated: services of this machine the nodes need (HOST:PORT, on"
                " 127.0.0.1); each is relayed to the hub's 10.201.0.1 on the same port"
            )
        ),
    ] = ()
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
    hosts: Annotated[
        tuple[HostSpec, ...],
        Field(
            description=(
                "backend ssh: the machine of each node, n1 first ({host, port, user, identity,"
                " known_hosts, check_host_key, python})"
            ),
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

    @field_validator("network")
    @classmethod
    def _isolated_is_local(cls, network: str, info: ValidationInfo) -> str:
        backend = info.data.get("backend", "local")
        if network == "isolated" and backend != "local":
            raise ValueError(
                f"network: isolated is for backend: local (the harness makes each node's network"
                f" namespace and its packet rules); a {backend} cluster's nodes are partitioned"
                " through their proxies (network: shared)"
            )
        return network

    @field_validator("forward")
    @classmethod
    def _forward_needs_isolated(
        cls, forward: tuple[str, ...], info: ValidationInfo
    ) -> tuple[str, ...]:
        if forward and info.data.get("network") != "isolated":
            raise ValueError(
                "forward is for network: isolated (on a shared network the nodes reach this"
                " machine's services directly)"
            )
        ports = [int(f.rpartition(":")[2]) for f in forward]
        if len(set(ports)) != len(ports):
            raise ValueError("each forward needs a port of its own (the hub listens on it)")
        return forward

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

    @field_validator("hosts")
    @classmethod
    def _one_host_per_node(
        cls, hosts: tuple[HostSpec, ...], info: ValidationInfo
    ) -> tuple[HostSpec, ...]:
        backend = info.data.get("backend")
        if hosts and backend != "ssh":
            raise ValueError("hosts are for backend: ssh")
        count = info.data.get("nodes", 3)
        if backend == "ssh" and len(hosts) != count:
            raise ValueError(f"backend: ssh needs one host per node ({count}), got {len(hosts)}")
        if backend == "ssh" and info.data.get("pubsub") == "redis":
            raise ValueError(
                "pubsub: redis is not on SSH hosts yet (the harness's Redis listens on this"
                " machine's loopback); use the mesh"
            )
        return hosts

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
    def shared_hosts(self) -> bool:
        """SSH hosts that packet rules cannot tell apart: two nodes on one address, or a
        loopback address (several nodes on one machine)."""
        addresses = [h.host for h in self.hosts]
        loopback = any(a == "localhost" or a.startswith("127.") for a in addresses)
        return self.backend == "ssh" and (loopback or len(set(addresses)) != len(addresses))

    @property
    def links(self) -> tuple[str, ...]:
        """Every link a fault may name: the client links, and the node links but between SSH
        hosts that share an address (nothing can cut those)."""
        clients = tuple(f"clients->{n}" for n in self.node_names)
        return clients if self.shared_hosts else clients + self.node_links

    @property
    def topology(self) -> Topology:
        network = "hosts" if self.backend == "ssh" else self.network
        return Topology(self.node_names, self.links, self.pubsub, network, self.shared_hosts)
