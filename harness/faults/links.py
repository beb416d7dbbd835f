"""Link faults: `down` (a link cut), `partition` (node-to-node links cut between groups) and
`packet_loss` (a share of a node link's packets dropped).

How a link is cut is the run's business, not the kind's (`FaultContext.set_enabled`): on a
shared network its Toxiproxy proxy is disabled (live connections closed); under `network:
isolated` a node link is a packet rule in the hub (every packet from one node's address to the
other's dropped, whatever the protocol; established connections stall as in a real netsplit, no
reset, and since TCP needs the other side's acknowledgements, cutting `n1->n2` stalls n2's
connections to n1 too). `packet_loss` exists only as a packet rule (`network: isolated`): this
kernel has no `sch_netem`, and Toxiproxy has no loss toxic.

Link names are the scenario's contract (`shared/design.md`): `clients->n1` (every client
connection to n1), `n1->n2` (n1's PubSub link to n2, mesh), `n1->redis` (n1's link to Redis).
Which links exist is the cluster's business (`Topology.links`); here a name is checked against
them, with a did-you-mean (with Redis, a node's one PubSub link is to Redis).

A partition disables every node->node link from one group to another (`one_way`: only links
leaving the first group), so remote broadcasts across the cut are lost, as at-most-once PubSub
allows. With `pubsub: redis` one group holds `redis`, and the nodes of the other groups lose
their `n->redis` link.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ..grammar.section import Topology, grammar_of
from ..grammar.units import Flag, Fraction
from ._base import NOT_ON_HOSTS, Fault, FaultContext

LINK_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": r"^(clients|n\d+)->(n\d+|redis)$",
    "description": "clients->n1 (client connections to n1), n1->n2 (mesh) or n1->redis",
}


def _known_link(name: str, info: ValidationInfo) -> str:
    grammar = grammar_of(info)
    if grammar is None or name in grammar.topology.links:
        return name
    if grammar.topology.shared_hosts and not name.startswith("clients->"):
        raise ValueError(f"{name}: {NOT_ON_HOSTS.format(kind='link')}")
    links = list(grammar.topology.links)
    hint = difflib.get_close_matches(name, links, n=1)
    via_redis = f"{name.partition('->')[0]}->redis"
    if via_redis in links:
        hint = [via_redis]  # with Redis, a node's one PubSub link is to Redis
    suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
    raise ValueError(f"unknown link {name!r}{suggestion}")


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _a_link(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"expected a link name such as clients->n1, got {value!r}")
    return value


def _as_single(links: Sequence[str]) -> str | list[str]:
    return links[0] if len(links) == 1 else list(links)


Link = Annotated[str, BeforeValidator(_a_link), AfterValidator(_known_link)]
LinkList = Annotated[
    tuple[Link, ...],
    BeforeValidator(_as_list),
    PlainSerializer(_as_single, when_used="json"),
    WithJsonSchema({"anyOf": [LINK_SCHEMA, {"type": "array", "items": LINK_SCHEMA}]}),
]


class Down(Fault):
    """disable a link: refuse new connections, close live ones"""

    disruptive = True
    kind: Literal["down"] = "down"
    link: LinkList

    def target(self) -> str:
        return ",".join(self.link)

    def reforms(self) -> bool:
        return any(not link.startswith("clients->") for link in self.link)

    @classmethod
    def draw(cls, rng: random.Random, topology: Topology, length: float) -> dict[str, Any]:
        return {"link": (rng.choice(topology.links),)}

    async def apply(self, ctx: FaultContext) -> None:
        await _disable(ctx, self.link, self.duration or 0.0)


def _member(name: str, info: ValidationInfo) -> str:
    grammar = grammar_of(info)
    if grammar is None:
        return name
    members = (
        (*grammar.topology.nodes, "redis") if grammar.topology.redis else grammar.topology.nodes
    )
    if name not in members:
        raise ValueError(f"unknown node {name!r}")
    return name


Member = Annotated[str, AfterValidator(_member)]


def _non_empty(group: tuple[str, ...]) -> tuple[str, ...]:
    if not group:
        raise ValueError("a group needs at least one node")
    return group


Shape = Literal["majorities_ring", "bridge"]
SHAPE_NODES = {"majorities_ring": 5, "bridge": 3}  # the fewest nodes each shape needs


def shape_pairs(shape: str, nodes: Sequence[str]) -> list[tuple[str, str]]:
    """The node pairs a Jepsen-style partition shape cuts (both ways), nodes in their order.

    majorities_ring: the nodes on a ring, each still reaching its nearest neighbours on either
    side, a majority counting itself, and no two nodes the same majority (five nodes: n1 sees
    n5 and n2). bridge: two halves cut apart, the middle node still reaching both."""
    n = len(nodes)
    if shape == "majorities_ring":
        majority = n // 2 + 1
        reach = majority // 2  # neighbours on each side: ceil((majority - 1) / 2)
        pairs = []
        for i in range(n):
            for j in range(i + 1, n):
                if min(j - i, n - (j - i)) > reach:
                    pairs.append((nodes[i], nodes[j]))
        return pairs
    middle = n // 2
    left, right = nodes[:middle], nodes[middle + 1 :]
    return [(a, b) for a in left for b in right]


class Partition(Fault):
    """cut node-to-node links between groups (one_way: only from the first group), or in a Jepsen shape (majorities_ring, bridge); with pubsub: redis, the nodes not in redis's group lose it"""  # noqa: E501

    node_links: ClassVar[bool] = True

    kind: Literal["partition"] = "partition"
    groups: Annotated[
        tuple[Annotated[tuple[Member, ...], AfterValidator(_non_empty)], ...],
        WithJsonSchema(
            {
                "type": "array",
                "minItems": 2,
                "items": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "description": "two or more groups of nodes (and redis, with pubsub: redis)",
            }
        ),
    ] = ()
    shape: Shape | None = None
    one_way: Flag = False

    @model_validator(mode="after")
    def _groups_or_shape(self, info: ValidationInfo) -> Partition:
        if (not self.groups) == (self.shape is None):
            raise ValueError("give groups (lists of nodes) or a shape (majorities_ring, bridge)")
        grammar = grammar_of(info)
        if self.shape is not None and grammar is not None:
            if grammar.topology.redis:
                raise ValueError("a partition shape cuts node-to-node links: it needs pubsub: mesh")
            fewest = SHAPE_NODES[self.shape]
            if len(grammar.topology.nodes) < fewest:
                raise ValueError(f"{self.shape} needs {fewest} nodes or more")
        if self.shape is not None and self.one_way:
            raise ValueError("one_way is for groups; a shape cuts both ways")
        return self

    @field_validator("groups")
    @classmethod
    def _disjoint(
        cls, groups: tuple[tuple[str, ...], ...], info: ValidationInfo
    ) -> tuple[tuple[str, ...], ...]:
        if len(groups) < 2:
            raise ValueError("expected groups: a list of two or more non-empty lists of nodes")
        seen: set[str] = set()
        for group in groups:
            for name in group:
                if name in seen:
                    raise ValueError(f"node {name} is in two groups")
                seen.add(name)
        grammar = grammar_of(info)
        if grammar is not None and grammar.topology.redis and "redis" not in seen:
            raise ValueError(
                "with pubsub: redis, put redis in one group; the nodes of the other groups"
                " lose their link to it"
            )
        return groups

    @field_validator("one_way")
    @classmethod
    def _two_way_redis(cls, one_way: bool, info: ValidationInfo) -> bool:
        grammar = grammar_of(info)
        if one_way and grammar is not None and grammar.topology.redis:
            raise ValueError("one_way needs pubsub: mesh (a Redis link is two-way)")
        return one_way

    def target(self) -> str:
        return self.shape or "|".join(",".join(g) for g in self.groups)

    def reforms(self) -> bool:
        return True

    def weaker(self) -> Iterator[tuple[str, Fault]]:
        if not self.one_way and self.shape is None:
            yield "partition -> one way", self.model_copy(update={"one_way": True})

    @classmethod
    def draw(cls, rng: random.Random, topology: Topology, length: float) -> dict[str, Any]:
        shuffled = list(topology.nodes)
        if topology.redis:
            shuffled.append("redis")  # it ends up on one side; the other side loses it
        rng.shuffle(shuffled)
        cut = rng.randrange(1, len(shuffled)) if len(shuffled) > 1 else 1
        return {"groups": (tuple(shuffled[:cut]), tuple(shuffled[cut:])), "one_way": False}

    def cut_links(self, nodes: Sequence[str] = ()) -> list[str]:
        """The links this partition disables (`nodes`: the cluster's, in order, for a shape)."""
        if self.shape is not None:
            pairs = shape_pairs(self.shape, sorted(nodes, key=lambda n: int(n[1:])))
            return [link for a, b in pairs for link in (f"{a}->{b}", f"{b}->{a}")]
        hub = next((g for g in self.groups if "redis" in g), None)
        if hub is not None:
            return [f"{n}->redis" for g in self.groups if g is not hub for n in g]
        sources = self.groups[:1] if self.one_way else self.groups
        links: list[str] = []
        for i, group in enumerate(sources):
            for j, other in enumerate(self.groups):
                if i != j:
                    links.extend(f"{a}->{b}" for a in group for b in other)
        return links

    async def apply(self, ctx: FaultContext) -> None:
        await _disable(ctx, self.cut_links(list(ctx.nodes)), self.duration or 0.0)


class PacketLoss(Fault):
    """drop a share of a node link's packets at random (a packet rule; network: isolated)"""

    node_links: ClassVar[bool] = True

    kind: Literal["packet_loss"] = "packet_loss"
    link: LinkList
    probability: Fraction

    @field_validator("link")
    @classmethod
    def _rule_links(cls, links: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        for link in links:
            if link.startswith("clients->"):
                raise ValueError(
                    f"packet_loss is for node links (n1->n2, n1->redis), not {link}: client"
                    " links have Toxiproxy's toxics"
                )
        grammar = grammar_of(info)
        if grammar is not None and not (grammar.topology.isolated or grammar.topology.hosts):
            raise ValueError(
                "packet_loss is a packet rule: it needs cluster.network: isolated or backend: ssh"
                " (on a shared network the nodes' packets never pass the harness)"
            )
        return links

    def target(self) -> str:
        return ",".join(self.link)

    def reforms(self) -> bool:
        return True

    def weaker(self) -> Iterator[tuple[str, Fault]]:
        if self.probability > 0.05:
            half = round(self.probability / 2, 3)
            yield (
                f"probability {self.probability:g} -> {half:g}",
                self.model_copy(update={"probability": half}),
            )

    @classmethod
    def draw(cls, rng: random.Random, topology: Topology, length: float) -> dict[str, Any]:
        nodes = [link for link in topology.links if not link.startswith("clients->")]
        return {"link": (rng.choice(nodes),), "probability": 0.3}

    async def apply(self, ctx: FaultContext) -> None:
        undo = await ctx.lose(self.link, self.probability)
        await ctx.hold(self.duration or 0.0, undo)


async def _disable(ctx: FaultContext, links: Sequence[str], seconds: float) -> None:
    await ctx.set_enabled(links, False)

    async def enable() -> None:
        await ctx.set_enabled(links, True)

    await ctx.hold(seconds, enable)


__all__ = ["Down", "Link", "LinkList", "PacketLoss", "Partition"]
