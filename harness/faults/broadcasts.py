"""Message-level PubSub faults: drop_broadcast, delay_broadcast, duplicate_broadcast,
reorder_broadcast.

Each takes single remote broadcasts, as the harness's broadcast proxy (`harness.broadcast_proxy`)
sees them on node-to-node links, mesh or Redis; everything else on the link passes untouched.
Which broadcasts: `link` (directions `n1->n2`: n1's broadcasts as n2 receives them; every
direction when left out), `topic` (exact, or a pattern such as `room:*`), `event`, and among
those `every: N` (each N-th), `probability: P` (each with probability P, from the run's seed)
or `first: N`; all of them when none is given. One window (`at`, `for`).

What the checks say, and why only two are drawn by `random`:

* a dropped broadcast is a loss inside the fault window: at-most-once PubSub allows it, and
  `delivery` counts it there; it is never an `at_most_once` violation;
* a delayed one (it and everything behind it on its connection wait `delay`, in order) is
  latency: a correct server stays valid;
* a duplicated one reaches the receiving node's subscribers twice: `at_most_once` catches it
  unless the server deduplicates (the reference app's `dedupe` join parameter, a `handle_out`
  intercept);
* a reordered one (held back until the next broadcast from the same node on its topic passes
  it, 1 s at most) breaks per-publisher order: `order` catches it.

TCP and Erlang distribution never duplicate or reorder, so a correct server that does not defend
against them is still correct: `random` draws only drop and delay, so it never makes a correct
server `invalid`; duplicate and reorder are for scenarios that ask whether a server defends.
"""

from __future__ import annotations

import random
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, ValidationInfo, model_validator

from ..grammar.section import Topology, grammar_of
from ..grammar.units import Bounded, Duration, Fraction, Text
from ._base import Fault, FaultContext

Count = Annotated[int, Bounded(1)]


def _direction(name: str, info: ValidationInfo) -> str:
    source, arrow, target = name.partition("->")
    if not arrow or not source or not target or source == target:
        raise ValueError(f"expected a direction such as n1->n2 (between two nodes), got {name!r}")
    grammar = grammar_of(info)
    if grammar is not None:
        for node in (source, target):
            if node not in grammar.topology.nodes:
                raise ValueError(f"unknown node {node!r} in {name!r}")
    return name


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Direction = Annotated[str, AfterValidator(_direction)]


class BroadcastFault(Fault):
    """Common to the message-level faults."""

    action: ClassVar[str] = ""
    node_links: ClassVar[bool] = True

    link: Annotated[tuple[Direction, ...], BeforeValidator(_as_list)] | None = None
    topic: Text | None = None
    event: Text | None = None
    every: Count | None = None
    probability: Fraction | None = None
    first: Count | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> BroadcastFault:
        chosen = [k for k in ("every", "probability", "first") if getattr(self, k) is not None]
        if len(chosen) > 1:
            raise ValueError(f"give one of every, probability or first, not {' and '.join(chosen)}")
        return self

    @model_validator(mode="after")
    def _needs_links(self, info: ValidationInfo) -> BroadcastFault:
        grammar = grammar_of(info)
        if grammar is not None and len(grammar.topology.nodes) < 2:
            raise ValueError(f"{self.kind_name()} needs two nodes or more (remote broadcasts)")
        if grammar is not None and (grammar.topology.isolated or grammar.topology.hosts):
            raise ValueError(
                f"{self.kind_name()} needs network: shared (the broadcast proxy sits in the node"
                " links' proxies; under isolated and on SSH hosts the nodes talk directly)"
            )
        return self

    def target(self) -> str:
        where = ",".join(self.link) if self.link else "every link"
        return where + (f" {self.topic}" if self.topic else "")

    @classmethod
    def draw(cls, rng: random.Random, topology: Topology, length: float) -> dict[str, Any]:
        if len(topology.nodes) < 2:
            return {"probability": 0.5}  # refused by `_needs_links`, with its reason
        source, target = rng.sample(list(topology.nodes), 2)
        return {"link": (f"{source}->{target}",), "probability": 0.5}

    def delay_seconds(self) -> float:
        return 0.0

    async def apply(self, ctx: FaultContext) -> None:
        remove = await ctx.add_broadcast_rule(
            self.action,
            directions=self.link,
            topic=self.topic,
            event=self.event,
            every=self.every,
            probability=self.probability,
            first=self.first,
            delay=self.delay_seconds(),
        )
        await ctx.hold(self.duration or 0.0, remove)


class DropBroadcast(BroadcastFault):
    """drop single remote broadcasts between nodes (by direction, topic, event; every/probability/first)"""  # noqa: E501

    action = "drop"
    kind: Literal["drop_broadcast"] = "drop_broadcast"


class DelayBroadcast(BroadcastFault):
    """delay single remote broadcasts between nodes; what follows them on the link waits too"""

    action = "delay"
    kind: Literal["delay_broadcast"] = "delay_broadcast"
    delay: Duration

    def delay_seconds(self) -> float:
        return self.delay

    @classmethod
    def draw(cls, rng: random.Random, topology: Topology, length: float) -> dict[str, Any]:
        return {**super().draw(rng, topology, length), "delay": 0.3}


class DuplicateBroadcast(BroadcastFault):
    """deliver single remote broadcasts twice to the receiving node"""

    drawn = False  # a correct server need not defend against it (see the module docstring)
    action = "duplicate"
    kind: Literal["duplicate_broadcast"] = "duplicate_broadcast"


class ReorderBroadcast(BroadcastFault):
    """hold single remote broadcasts back until the next one of their node and topic has passed"""

    drawn = False
    action = "reorder"
    kind: Literal["reorder_broadcast"] = "reorder_broadcast"


__all__ = [
    "BroadcastFault",
    "DelayBroadcast",
    "DropBroadcast",
    "DuplicateBroadcast",
    "ReorderBroadcast",
]
