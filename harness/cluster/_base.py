"""The cluster seam: what a node of the cluster under test is, whatever runs it, and the plan of
links the harness puts a proxy on.

A backend (local processes, containers through the Docker engine, a compose project) turns
`NodePlan`s into running `Node`s; the rest of the harness (nemesis, runner, final reader) speaks
only to this interface. The link plan is a pure function of the scenario's cluster: which
proxies exist and what each one forwards to, so the wiring is decided in one place and tested
without a process."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from ..broadcast_proxy import BroadcastProxy
from ..faults import Node as FaultTarget
from ..infra.netns import Hub
from ..infra.ssh import SshHost


class PacketRule(Protocol):
    """One packet rule in force (`harness.infra.netns.Rule`, `harness.infra.hostrules`)."""

    async def dropped(self) -> int: ...
    async def remove(self) -> None: ...


class PacketRules(Protocol):
    """Where a run's node links are cut by packet rules: the hub's forward chain (network:
    isolated) or each SSH host's input chain (backend: ssh)."""

    async def cut(self, source: str, target: str) -> PacketRule: ...
    async def lose(self, source: str, target: str, percent: int) -> PacketRule: ...


@dataclass(frozen=True, slots=True)
class Host:
    """A node's machine (`backend: ssh`): how to reach it, and its `{python}`."""

    ssh: SshHost
    python: str = "python3"


@dataclass(frozen=True, slots=True)
class NodePlan:
    """Everything needed to start one node: its ports, where it reaches its peers (through
    their proxies) or Redis, its store, and its deliberate defects."""

    name: str
    host: str
    port: int
    pubsub_port: int
    peers: dict[str, tuple[str, int]] = field(default_factory=dict)
    store: str = "sqlite:///:memory:"
    bugs: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()
    pubsub: str = "mesh"  # or redis://HOST:PORT (then peers and pubsub_port are unused)
    cluster_secret: str = ""  # shared by the cluster's nodes (the reference mesh's handshake)
    peer_hosts: tuple[str, ...] = ()  # the other nodes' addresses (libcluster's host list)
    hostname: str = ""  # its own host name, under network: isolated (else the machine's)
    enter: tuple[str, ...] = ()  # the argv prefix that starts it in its namespace (isolated)


@dataclass(frozen=True, slots=True)
class Launch:
    """How every node of the cluster is started and when it counts as up: the command template,
    extra environment and working directory (templates too), the health probe."""

    template: str
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    health_path: str = "/health"
    health_tcp: bool = False  # True: the port accepting a connection is enough
    health_timeout: float = 15.0
    image: str | None = None  # containers: the image (None: the reference node image)
    run: str = ""  # the run's id, a label on every container and volume it makes
    compose_file: str | None = None  # compose backend: the user's compose file
    services: tuple[str, ...] = ()  # compose backend: the service of each node, in order
    hosts: tuple[Host, ...] = ()  # ssh backend: the machine of each node, in order


class Placed:
    """What every backend's node takes from its plan: its name and its own websocket URL."""

    spec: NodePlan

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def url(self) -> str:
        """The node's own websocket URL (`ws://host:port/socket`), not through a proxy."""
        return f"ws://{self.spec.host}:{self.spec.port}/socket"


class Node(FaultTarget, Protocol):
    """One node of the cluster under test, as the nemesis and the runner see it (a fault's
    `Node`, plus what the runner needs: where it is, its PID and log)."""

    @property
    def spec(self) -> NodePlan: ...
    @property
    def url(self) -> str:
        """The node's own websocket URL (`ws://host:port/socket`), not through a proxy."""
        ...

    @property
    def pid(self) -> int | None: ...
    @property
    def log_path(self) -> Path: ...

    @property
    def containment(self) -> str:
        """How the processes it starts are kept with it: `cgroup`, `ports`, `container`."""
        ...

    def cpu_seconds(self) -> float:
        """CPU time its processes used so far (0.0 where the backend cannot tell)."""
        ...

    def exited_by_itself(self) -> int | None:
        """Its exit status when it ended without the harness stopping it, else None. Polled:
        cheap (no engine call)."""
        ...

    async def wait_healthy(self, *, timeout: float | None = None) -> None: ...
    async def restart(self) -> None: ...


Upstream = Literal["node", "peer", "redis"]


@dataclass(frozen=True, slots=True)
class LinkPlan:
    """One proxied link: `clients->n1` forwards to n1's websocket port (`node`), `n1->n2` to
    n2's PubSub port (`peer`), `n1->redis` to the Redis server (`redis`)."""

    name: str
    source: str
    target: str
    upstream: Upstream

    @property
    def home(self) -> str:
        """The node this link belongs to: a client link's target, a node link's source (a
        spread Toxiproxy keeps a node's links on its server)."""
        return self.target if self.upstream == "node" else self.source


def plan_links(nodes: Sequence[str], pubsub: str, network: str = "shared") -> tuple[LinkPlan, ...]:
    """Every proxied link of a cluster, client links first (the scenario's link names, in its
    order). Under `network: isolated` only the client links: the nodes talk directly, and
    packet rules cut them; likewise between SSH hosts (the topology's network `hosts`)."""
    plans = [LinkPlan(f"clients->{n}", "clients", n, "node") for n in nodes]
    if network in ("isolated", "hosts"):
        return tuple(plans)
    if pubsub == "redis":
        plans += [LinkPlan(f"{n}->redis", n, "redis", "redis") for n in nodes]
    else:
        plans += [LinkPlan(f"{a}->{b}", a, b, "peer") for a in nodes for b in nodes if a != b]
    return tuple(plans)


@dataclass(frozen=True, slots=True)
class Cluster:
    """A running cluster: its nodes, the proxies in front of them, where clients connect."""

    nodes: Mapping[str, Node]
    proxies: Mapping[str, str]  # link name -> toxiproxy proxy name
    client_urls: Mapping[str, str]  # node -> ws URL through its `clients->` proxy
    redis: str | None = None  # host:port of the Redis server, with pubsub: redis
    broadcasts: BroadcastProxy | None = None  # with a message-level fault in the scenario
    hub: Hub | None = None  # network: isolated: the namespaces and their packet rules
    rules: PacketRules | None = None  # where node links are cut: the hub, or the SSH hosts
