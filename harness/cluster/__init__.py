"""The cluster under test, behind one seam: `async with open_cluster(...) as cluster`.

    _base.py   Node (the interface every backend implements), NodePlan, the pure link plan
    _local.py  the local process backend (one OS process per node)
    _docker.py the Docker backend (a container per node, faults through the engine's SDK)
    _compose.py the compose backend (the user's compose project; containers like _docker's)
    _ssh.py    the SSH backend (each node on a machine of its own, driven over SSH)
    _image.py  the reference node image and the engine (`make image` builds it)

`open_cluster` wires a scenario's cluster: free loopback ports for every node, one Toxiproxy
proxy per link of the plan (client->node, node->node or node->Redis), Redis when the PubSub is
Redis, then the nodes from the backend named by `cluster.backend`; it waits until the nodes
report their PubSub links up (the reference server does; a user's server may not) and yields a
`Cluster`. Everything is stopped when the block ends, in reverse order, however it ends.

Under `network: isolated` (the harness already runs in its hub namespace, `harness.infra.netns`)
each node gets a namespace of its own and the same ports as in production (4000 for websockets,
4001 for the reference mesh), dials its peers by address and Redis at the hub's service address;
only the client links get proxies, and node-link faults become packet rules (the nemesis).

Adding a backend: a module with an `open_*_nodes(specs, logs, launch, notice)` context manager
that yields `Node`s (`notice` takes a sentence for the run's warnings), and one line in
`BACKENDS`.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import trio

from ..broadcast_proxy import Route, open_broadcast_proxy
from ..errors import ClusterError
from ..grammar.hosts import HostSpec
from ..infra import relay
from ..infra.hostrules import open_host_rules
from ..infra.http import get_json
from ..infra.netns import Hub, open_hub
from ..infra.process import POLL_INTERVAL, free_ports
from ..infra.redis import open_redis
from ..infra.ssh import SshHost
from ..infra.toxiproxy import Toxiproxy, open_proxies
from ..scenario import ClusterSpec
from ..scenario._cluster import Backend
from ._base import (
    Cluster,
    Host,
    Launch,
    LinkPlan,
    Node,
    NodePlan,
    PacketRule,
    PacketRules,
    plan_links,
)
from ._compose import open_compose_nodes
from ._docker import ContainerNode, open_docker_nodes
from ._local import REFERENCE_COMMAND, LocalNode, command, open_local_nodes
from ._ssh import SshNode, open_ssh_nodes

OpenNodes = Callable[
    [Sequence[NodePlan], Path, Launch, Callable[[str], None]],
    AbstractAsyncContextManager[Mapping[str, Node]],
]
BACKENDS: dict[Backend, OpenNodes] = {  # the grammar's `cluster.backend` names these
    "local": open_local_nodes,
    "docker": open_docker_nodes,
    "compose": open_compose_nodes,
    "ssh": open_ssh_nodes,
}


def describe_backends() -> dict[str, str]:
    """Each backend's description: the first sentence of its module's docstring, after the
    backend's own name ("The Docker backend: ...")."""
    import sys

    described: dict[str, str] = {}
    for name, fn in BACKENDS.items():
        doc = (sys.modules[fn.__module__].__doc__ or name).strip().split("\n\n")[0]
        first = " ".join(doc.split()).split(": ", 1)[-1].rstrip(".")
        described[name] = first
    return described


LINKS_TIMEOUT = 15.0
HOST = "127.0.0.1"
NODE_PORT, MESH_PORT = 4000, 4001  # network: isolated: every node on the same ports


@asynccontextmanager
async def open_cluster(
    spec: ClusterSpec,
    *,
    run_dir: Path,
    toxiproxy: Toxiproxy,
    prefix: str,
    record: Callable[[dict[str, Any]], None],
    broadcasts: bool = False,
    cuts: bool = False,
    listen: str | None = None,
) -> AsyncIterator[Cluster]:
    """The scenario's cluster behind its proxies; `record` receives what was started, where.
    `broadcasts`: put the broadcast proxy behind every node-to-node link's Toxiproxy proxy (a
    message-level fault is scheduled). `cuts`: a fault will cut node links that have no proxy
    (on SSH hosts: the rules' table made on every host, the privilege checked, up front).
    `listen`: the address the clients' proxies listen on (default loopback; this machine's
    address as worker hosts see it when the swarm runs there)."""
    logs = run_dir / "logs"
    store = f"sqlite:///{(run_dir / 'store.sqlite').resolve()}"
    specs = {s.name: s for s in mesh_specs(spec.node_names, store=store, bugs=spec.bugs)}
    if (
        spec.trace and spec.backend == "local"
    ):  # the reference server's `--trace`, one file per node (the message diagram)
        specs = {
            n: replace(s, extra_args=("--trace", str((logs / f"{n}.trace.jsonl").resolve())))
            for n, s in specs.items()
        }
    async with AsyncExitStack() as stack:
        hub: Hub | None = None
        if spec.network == "isolated":
            hub = await stack.enter_async_context(open_hub(spec.node_names, inside=True))
            await _relay(stack, spec.forward, hub.address("redis"))
            specs = {n: _isolated(s, hub) for n, s in specs.items()}
            record({"namespaces": {n: hub.address(n) for n in spec.node_names}})
        if spec.backend == "ssh":
            specs = _on_hosts(specs, spec)
        specs = {
            n: replace(s, peer_hosts=tuple(o.host for o in specs.values() if o.name != n))
            for n, s in specs.items()
        }
        proxies = await stack.enter_async_context(open_proxies(toxiproxy, prefix))
        redis = None
        if spec.pubsub == "redis":
            where = hub.address("redis") if hub is not None else HOST
            redis = await stack.enter_async_context(open_redis(logs / "redis.log", host=where))
            record({"redis": redis.address, "redis_pid": redis.pid})
        client_urls: dict[str, str] = {}
        peers: dict[str, dict[str, tuple[str, int]]] = {name: {} for name in specs}
        pubsub: dict[str, str] = {}
        plan = plan_links(spec.node_names, spec.pubsub, spec.topology.network)
        if hub is not None or spec.backend == "ssh":  # the nodes talk directly
            peers = {name: dict(s.peers) for name, s in specs.items()}
            if redis is not None:
                pubsub = {name: f"redis://{redis.address}" for name in specs}
        upstreams = {
            link.name: _upstream(link, specs, redis.address if redis else None) for link in plan
        }
        bproxy = None
        if broadcasts:
            routes = [
                Route(
                    link.name,
                    _address(upstreams[link.name]),
                    "mesh" if link.upstream == "peer" else "resp",
                )
                for link in plan
                if link.upstream != "node"
            ]
            bproxy = await stack.enter_async_context(open_broadcast_proxy(routes))
            for name, (host, port) in bproxy.addresses.items():
                upstreams[name] = f"{host}:{port}"
        for link in plan:
            clients = link.upstream == "node"
            on = (listen or HOST) if clients else HOST
            port = await proxies.add(link.name, upstreams[link.name], host=on)
            if clients:
                client_urls[link.target] = f"ws://{on}:{port}/socket"
            elif link.upstream == "peer":
                peers[link.source][link.target] = (HOST, port)
            else:
                pubsub[link.source] = f"redis://{HOST}:{port}"
        wired = [
            replace(s, peers={}, pubsub=pubsub[s.name])
            if s.name in pubsub
            else replace(s, peers=peers[s.name])
            for s in specs.values()
        ]
        backend = BACKENDS[spec.backend]
        launch = Launch(
            spec.command or REFERENCE_COMMAND,
            dict(spec.env),
            spec.cwd,
            spec.health.path,
            spec.health.tcp,
            spec.health.timeout,
            image=spec.image,
            run=prefix,
            compose_file=spec.compose_file,
            services=spec.services,
            hosts=tuple(_host(h) for h in spec.hosts),
        )

        def notice(text: str) -> None:
            record({"notice": text})

        nodes = await stack.enter_async_context(backend(wired, logs, launch, notice))
        record(
            {
                "nodes": {n: node.url for n, node in nodes.items()},
                "pids": {n: node.pid for n, node in nodes.items() if node.pid is not None},
                "containment": {n: node.containment for n, node in nodes.items()},
                "proxies": dict(proxies.names),
            }
        )
        rules: PacketRules | None = hub
        if spec.backend == "ssh" and cuts:
            hosts = {
                n: (node.ssh, node.spec.host)
                for n, node in nodes.items()
                if isinstance(node, SshNode)
            }
            rules = await stack.enter_async_context(open_host_rules(hosts, prefix, logs))
        pairs = [(a, b) for a, _, b in (link.partition("->") for link in spec.node_links)]
        readiness = spec.ready.pubsub_links
        if pairs and readiness == "auto" and spec.command is not None:
            readiness = "wait" if await _reports_links(nodes) else "none"
        if pairs and readiness != "none":
            await wait_links(nodes, "up", pairs, timeout=LINKS_TIMEOUT)
        yield Cluster(
            nodes,
            dict(proxies.names),
            client_urls,
            redis.address if redis else None,
            bproxy,
            hub,
            rules,
        )


def _address(upstream: str) -> tuple[str, int]:
    host, _, port = upstream.rpartition(":")
    return host, int(port)


def _upstream(link: LinkPlan, specs: Mapping[str, NodePlan], redis: str | None) -> str:
    if link.upstream == "node":
        return f"{specs[link.target].host}:{specs[link.target].port}"
    if link.upstream == "peer":
        return f"{specs[link.target].host}:{specs[link.target].pubsub_port}"
    assert redis is not None
    return redis


async def _relay(stack: AsyncExitStack, services: Sequence[str], host: str) -> None:
    """Each of `cluster.forward` listening on the hub's service address, relayed to the
    machine's service by the `harness run` outside (`harness.infra.relay`)."""
    if not services:
        return
    sockets = relay.forwards_from_env()
    nursery = await stack.enter_async_context(trio.open_nursery())
    stack.callback(nursery.cancel_scope.cancel)
    for service in services:
        if service not in sockets:
            raise ClusterError(
                f"cluster.forward {service}: no relay from outside the run's namespaces (run the"
                " scenario through `harness run`)"
            )
        port = int(service.rpartition(":")[2])
        await nursery.start(relay.serve_forward, host, port, sockets[service])


def _host(host: HostSpec) -> Host:
    return Host(SshHost.of(host), host.python)


def _on_hosts(specs: Mapping[str, NodePlan], cluster: ClusterSpec) -> dict[str, NodePlan]:
    """Each node on its SSH host's address: on a machine of its own on the production ports
    (4000, 4001); on a loopback address (several nodes on one machine) on the free ports the
    harness picked. Peers dialled directly."""
    placed = {}
    for (name, node), host in zip(specs.items(), cluster.hosts, strict=True):
        loopback = host.host == "localhost" or host.host.startswith("127.")
        ports = (node.port, node.pubsub_port) if loopback else (NODE_PORT, MESH_PORT)
        placed[name] = replace(node, host=host.host, port=ports[0], pubsub_port=ports[1])
    return {
        name: replace(
            node,
            peers={p: (placed[p].host, placed[p].pubsub_port) for p in placed if p != name},
        )
        for name, node in placed.items()
    }


def _isolated(spec: NodePlan, hub: Hub) -> NodePlan:
    """A node in its own namespace: its address, the production ports, its peers by address."""
    return replace(
        spec,
        host=hub.address(spec.name),
        port=NODE_PORT,
        pubsub_port=MESH_PORT,
        peers={peer: (hub.address(peer), MESH_PORT) for peer in spec.peers},
        hostname=spec.name,
        enter=tuple(hub.nodes[spec.name].argv([])),
    )


def mesh_specs(
    names: Sequence[str],
    *,
    host: str = HOST,
    store: str,
    bugs: Sequence[str] = (),
    peer_address: dict[tuple[str, str], tuple[str, int]] | None = None,
    extra_args: Sequence[str] = (),
) -> list[NodePlan]:
    """Specs for a full mesh on fresh ports. `peer_address[(a, b)]` overrides where a dials b
    (a Toxiproxy listener, say); by default a dials b's PubSub port directly."""
    ports = free_ports(2 * len(names), host)
    shared = secrets.token_hex(16)  # like an Erlang cookie: one per cluster, never reused
    ws_ports, pubsub_ports = ports[: len(names)], ports[len(names) :]
    direct = {n: (host, p) for n, p in zip(names, pubsub_ports, strict=True)}
    overrides = peer_address or {}
    return [
        NodePlan(
            name=name,
            host=host,
            port=ws_port,
            pubsub_port=pubsub_port,
            peers={
                peer: overrides.get((name, peer), direct[peer]) for peer in names if peer != name
            },
            store=store,
            bugs=tuple(bugs),
            extra_args=tuple(extra_args),
            cluster_secret=shared,
        )
        for name, ws_port, pubsub_port in zip(names, ws_ports, pubsub_ports, strict=True)
    ]


async def _reports_links(nodes: Mapping[str, Node]) -> bool:
    """Whether any node's /stats reports its PubSub links (the reference server does; a real
    Phoenix app has no /stats, and then a run does not wait for what it cannot see)."""
    for node in nodes.values():
        try:
            status, stats = await get_json(node.spec.host, node.spec.port, "/stats")
        except (OSError, trio.TooSlowError):
            continue
        if status == 200 and isinstance(stats, dict):
            links = (
                stats.get("pubsub", {}).get("links")
                if isinstance(stats.get("pubsub"), dict)
                else None
            )
            if isinstance(links, dict):
                return True
    return False


async def wait_links(
    nodes: Mapping[str, Node],
    state: str,
    pairs: Sequence[tuple[str, str]],
    *,
    timeout: float = 10.0,
) -> None:
    """Wait until each PubSub link `a->b` in `pairs` reports `state` ("up"/"down") in a's /stats.

    Works with any server whose /stats has `pubsub.links.<peer>.state`, as the reference one does.
    """
    with trio.move_on_after(timeout):
        while True:
            states = []
            for a, b in pairs:
                spec = nodes[a].spec
                try:
                    _, stats = await get_json(spec.host, spec.port, "/stats")
                    states.append(stats["pubsub"]["links"][b]["state"])
                except (OSError, trio.TooSlowError, KeyError, TypeError):
                    states.append(None)
            if all(s == state for s in states):
                return
            await trio.sleep(POLL_INTERVAL)
    raise ClusterError(f"links {list(pairs)} not {state} after {timeout}s")


__all__ = [
    "BACKENDS",
    "REFERENCE_COMMAND",
    "Cluster",
    "ContainerNode",
    "LinkPlan",
    "LocalNode",
    "Node",
    "NodePlan",
    "PacketRule",
    "PacketRules",
    "command",
    "describe_backends",
    "mesh_specs",
    "open_cluster",
    "open_local_nodes",
    "plan_links",
    "wait_links",
]
