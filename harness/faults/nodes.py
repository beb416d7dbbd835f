"""Node faults: kill (SIGKILL), terminate (SIGTERM, graceful drain), pause (SIGSTOP/SIGCONT),
restart, rolling_restart.

They speak to the cluster only through the `Node` interface (`harness.cluster`), so any backend
(local processes, containers) carries them. `kill`/`terminate` without `restart_after` leave the
node down until the final heal starts it again; a restart always comes back on the same ports.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import ValidationInfo, field_validator

from ..grammar.section import Topology, grammar_of
from ..grammar.units import Duration
from ._base import Fault, FaultContext, Node


def _known_node(name: Any, info: ValidationInfo) -> str:
    grammar = grammar_of(info)
    if grammar is not None and name not in grammar.topology.nodes:
        raise ValueError(
            f"expected one of the cluster's nodes {', '.join(grammar.topology.nodes)}, got {name!r}"
        )
    return str(name)


class NodeFault(Fault):
    """A fault on one node."""

    instant = True
    disruptive = True
    node: str

    _node = field_validator("node", mode="before")(_known_node)

    def target(self) -> str:
        return self.node

    def reforms(self) -> bool:
        return True

    def occupies(self) -> dict[str, tuple[float, float]]:
        end = self.end
        return {self.node: (self.at, self.at if end is None else end)}

    @classmethod
    def draw(cls, rng: random.Random, topology: Topology, length: float) -> dict[str, Any]:
        return {"node": rng.choice(topology.nodes)}


class _Stop(NodeFault):
    restart_after: Duration | None = None

    @classmethod
    def draw(cls, rng: random.Random, topology: Topology, length: float) -> dict[str, Any]:
        return {"node": rng.choice(topology.nodes), "restart_after": round(length, 3)}

    def occupies(self) -> dict[str, tuple[float, float]]:
        back = math.inf if self.restart_after is None else self.at + self.restart_after
        return {self.node: (self.at, back)}

    async def _stop(self, node: Node) -> None:
        raise NotImplementedError

    async def apply(self, ctx: FaultContext) -> None:
        node = ctx.nodes[self.node]
        await self._stop(node)
        await node.wait_exit(timeout=10)
        if self.restart_after is not None:
            await ctx.sleep(self.restart_after)
            await node.start()
        else:
            await ctx.sleep_forever()  # down until the final heal cancels this fault


class Kill(_Stop):
    """SIGKILL a node; restart_after brings it back"""

    kind: Literal["kill"] = "kill"

    def weaker(self) -> Iterator[tuple[str, Fault]]:
        gentler = Terminate(at=self.at, node=self.node, restart_after=self.restart_after)
        yield "kill -> terminate", gentler

    async def _stop(self, node: Node) -> None:
        await node.kill()


class Terminate(_Stop):
    """SIGTERM a node (graceful drain); restart_after brings it back"""

    kind: Literal["terminate"] = "terminate"

    async def _stop(self, node: Node) -> None:
        await node.terminate()


class Pause(NodeFault):
    """SIGSTOP a node for the fault's duration, then SIGCONT"""

    instant = False
    disruptive = False
    kind: Literal["pause"] = "pause"

    async def apply(self, ctx: FaultContext) -> None:
        node = ctx.nodes[self.node]
        await node.pause()

        async def resume() -> None:
            await node.resume()

        await ctx.hold(self.duration or 0.0, resume)


class Restart(NodeFault):
    """SIGTERM then start a node again at once"""

    kind: Literal["restart"] = "restart"

    async def apply(self, ctx: FaultContext) -> None:
        await restart(ctx.nodes[self.node])


class RollingRestart(Fault):
    """restart every node in turn, `interval` apart"""

    instant = True
    disruptive = True
    drawn = False
    kind: Literal["rolling_restart"] = "rolling_restart"
    interval: Duration = 2.0
    nodes: tuple[str, ...] | None = None

    @field_validator("nodes", mode="before")
    @classmethod
    def _known_nodes(cls, value: Any, info: ValidationInfo) -> Any:
        grammar = grammar_of(info)
        if grammar is None:
            return value
        names = grammar.topology.nodes
        if value is None:
            return names
        if not isinstance(value, list) or any(n not in names for n in value):
            raise ValueError(f"expected a list of nodes among {', '.join(names)}")
        return value

    def target(self) -> str:
        return ",".join(self.nodes or ())

    def reforms(self) -> bool:
        return True

    def occupies(self) -> dict[str, tuple[float, float]]:
        nodes = self.nodes or ()
        return {
            n: (self.at + i * self.interval, self.at + i * self.interval)
            for i, n in enumerate(nodes)
        }

    async def apply(self, ctx: FaultContext) -> None:
        for name in self.nodes or tuple(ctx.nodes):
            await restart(ctx.nodes[name])
            await ctx.sleep(self.interval)


async def restart(node: Node) -> None:
    await node.stop(graceful=True)
    await node.start()


NODE_FAULTS: tuple[type[Fault], ...] = (Kill, Terminate, Pause, Restart, RollingRestart)
