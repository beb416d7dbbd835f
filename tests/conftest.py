"""Shared fixtures: an in-process node on a free port, and clusters of real node processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

from harness.cluster import LocalNode, NodePlan, mesh_specs
from server_under_test._bugs import Bugs
from server_under_test._node import Node, NodeConfig


class InProcessNode:
    def __init__(self, node: Node, port: int) -> None:
        self.node = node
        self.port = port

    def url(self, vsn: str | None = "2.0.0", **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {**params, **({"vsn": vsn} if vsn else {})}.items())
        return f"ws://127.0.0.1:{self.port}/socket/websocket?{query}"


@asynccontextmanager
async def in_process_node(name: str = "n1", **config: Any) -> AsyncIterator[InProcessNode]:
    """A node for the life of a `with` block (for Hypothesis tests: one trio loop per example)."""
    async with trio.open_nursery() as nursery:
        node = Node(NodeConfig(node=name, port=0, **config))
        port = await nursery.start(node.serve)
        yield InProcessNode(node, port)
        nursery.cancel_scope.cancel()


@pytest.fixture
async def start_node(nursery: trio.Nursery) -> Callable[..., Any]:
    """Start a reference node inside the test's trio loop; returns an InProcessNode."""

    async def start(
        name: str = "n1", *, bugs: tuple[str, ...] = (), **config: Any
    ) -> InProcessNode:
        node = Node(NodeConfig(node=name, port=0, bugs=Bugs.parse(list(bugs)), **config))
        port = await nursery.start(node.serve)
        return InProcessNode(node, port)

    return start


@pytest.fixture
async def node(start_node: Callable[..., Any]) -> InProcessNode:
    node: InProcessNode = await start_node()
    return node


@pytest.fixture
async def local_cluster(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start real node processes (a full mesh); every one is stopped at the end.

    With `toxiproxy=`, each node dials each peer through a proxy named "a->b", so a test can cut
    one direction of the mesh. With `redis=` (a started RedisServer), the nodes use Redis PubSub.
    """
    started: list[LocalNode] = []

    async def start(
        names: tuple[str, ...] = ("n1",),
        *,
        bugs: tuple[str, ...] = (),
        toxiproxy: Any = None,
        redis: Any = None,
        extra_args: tuple[str, ...] = (),
    ) -> dict[str, LocalNode]:
        store = f"sqlite:///{tmp_path / 'store.sqlite'}"
        specs: list[NodePlan] = mesh_specs(names, store=store, bugs=bugs, extra_args=extra_args)
        if redis is not None:
            specs = [replace(s, peers={}, pubsub=f"redis://{redis.address}") for s in specs]
        elif toxiproxy is not None:
            specs = [await _through_proxies(spec, toxiproxy) for spec in specs]
        nodes = {s.name: LocalNode(s, tmp_path / "logs" / f"{s.name}.log") for s in specs}
        for n in nodes.values():
            started.append(n)
            await n.start()
        return nodes

    yield start
    with trio.CancelScope(shield=True):
        for n in started:
            await n.stop(graceful=False)


async def _through_proxies(spec: NodePlan, toxiproxy: Any) -> NodePlan:
    peers = {}
    for peer, (host, port) in spec.peers.items():
        proxy = await toxiproxy.client.create_proxy(f"{spec.name}->{peer}", f"{host}:{port}")
        peers[peer] = ("127.0.0.1", proxy.port)
    return replace(spec, peers=peers)


@asynccontextmanager
async def running(server: Any) -> AsyncIterator[Any]:
    """Start a helper server the test owns (a `ServerProcess`); stop it however the test ends."""
    await server.start()
    try:
        yield server
    finally:
        with trio.CancelScope(shield=True):
            await server.stop()


@pytest.fixture
async def toxiproxy(tmp_path: Path) -> AsyncIterator[Any]:
    """A real toxiproxy-server owned by the test, on a free loopback port."""
    from harness.infra.toxiproxy import ToxiproxyServer

    async with running(ToxiproxyServer(tmp_path / "logs" / "toxiproxy.log")) as server:
        yield server


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[Any]:
    """A real redis-server owned by the test, on a free loopback port."""
    from harness.infra.redis import RedisServer

    async with running(RedisServer(tmp_path / "logs" / "redis.log")) as server:
        yield server


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """The Docker engine, with an up-to-date reference node image (`make image`). Without them
    a test skips on a developer's machine and fails under `CI=true`: a green CI cannot hide a
    missing engine."""
    import os

    from harness.cluster._image import REFERENCE_IMAGE, check_image, engine
    from harness.errors import ClusterError

    try:
        client = engine()
        stale = check_image(client, REFERENCE_IMAGE)
    except ClusterError as exc:
        reason = str(exc)
    else:
        if stale is None:
            yield client
            client.close()
            return
        reason = stale
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the Docker tests cannot run: {reason}")
    pytest.skip(reason)
