"""What every fault kind is made of, and what it may touch while it runs.

A fault kind is one pydantic model (its parameters, validated when the scenario is read; its
docstring is the one-line description `harness list` prints and the schema carries) with, in
the same class:

    kind          the `Literal` tag that names it in YAML
    instant       True when it has no `for` (kill, restart, client_close, ...)
    disruptive    True when it is expected to cut client connections (the report warns when
                  such a fault ran and nobody lost a connection)
    target()      a short label of what it hits (`clients->n1`, `n2`, `n1|n2,n3`)
    weaker()      its own weaker forms, for `harness shrink` (a kill as a terminate, ...)
    reforms()     True when its heal asks the cluster to form again (a node or node link)
    draw(...)     a random instance of the kind, for the `random` fault (seeded)
    check(...)    the cross-field rules that need the cluster (links, nodes) and the run's length
    apply(ctx)    what it does, then undoes; returns when the fault is over

`apply` reaches the world only through `FaultContext` (implemented by the nemesis): links,
nodes, clients, the run's clock and the history. This package therefore imports no I/O module,
so the scenario grammar can be built from it and stay pure.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ..grammar.section import Topology, grammar_of
from ..grammar.units import Duration


class Node(Protocol):
    """What a fault needs of a node of the cluster under test (`harness.cluster.Node`)."""

    @property
    def name(self) -> str: ...
    @property
    def alive(self) -> bool: ...
    @property
    def paused(self) -> bool: ...

    async def start(self) -> None: ...
    async def stop(self, *, graceful: bool = True) -> None: ...
    async def kill(self) -> None: ...
    async def terminate(self) -> None: ...
    async def pause(self) -> None: ...
    async def resume(self) -> None: ...
    async def wait_exit(self, *, timeout: float = 10.0) -> int | None: ...


class FaultContext(Protocol):
    """The world as a fault sees it while it runs."""

    fault_id: str

    @property
    def nodes(self) -> Mapping[str, Node]: ...

    async def add_toxic(
        self, link: str, type_: str, attributes: Mapping[str, int], stream: str, toxicity: float
    ) -> Callable[[], Awaitable[None]]:
        """Add a toxic to a link's proxy; returns the call that removes it."""
        ...

    async def set_enabled(self, links: Sequence[str], enabled: bool) -> None:
        """Cut links (`enabled` False) or restore them: their proxies, or packet rules."""
        ...

    async def lose(self, links: Sequence[str], probability: float) -> Callable[[], Awaitable[None]]:
        """Drop that share of the links' packets (packet rules); returns the call that stops."""
        ...

    async def add_broadcast_rule(
        self,
        action: str,
        *,
        directions: Sequence[str] | None,
        topic: str | None,
        event: str | None,
        every: int | None,
        probability: float | None,
        first: int | None,
        delay: float,
    ) -> Callable[[], Awaitable[None]]:
        """Put a rule in force on the broadcast proxy (`harness.broadcast_proxy`); returns the
        call that takes it out again."""
        ...

    def choose_clients(self, share: int | str) -> list[str]:
        """Clients picked by the nemesis's seeded stream: a count or a percentage."""
        ...

    async def client_fault(
        self, kind: str, clients: Sequence[str], duration: float | None
    ) -> None: ...

    def record(self, f: str, value: Mapping[str, Any]) -> None: ...

    async def hold(self, seconds: float, undo: Callable[[], Awaitable[None]]) -> None:
        """Wait `seconds`, then `undo` (shielded: it runs on cancellation too)."""
        ...

    async def sleep(self, seconds: float) -> None: ...
    async def sleep_forever(self) -> None: ...


NOT_ON_HOSTS = (
    "a {kind} fault cuts node-to-node links, by packet rules on each SSH host's address, and"
    " here nodes share an address (a loopback host): give each node a host of its own"
)


class Fault(BaseModel):
    """Common to every fault: when it starts, how long it lasts, its kind."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    instant: ClassVar[bool] = False
    disruptive: ClassVar[bool] = False
    drawn: ClassVar[bool] = True  # may a `random` fault draw this kind?
    node_links: ClassVar[bool] = False  # does it cut or touch node-to-node links?

    at: Duration
    duration: Duration | None = Field(default=None, alias="for", validate_default=True)

    @property
    def end(self) -> float | None:
        return None if self.duration is None else self.at + self.duration

    @field_validator("at")
    @classmethod
    def _starts_in_the_run(cls, at: float, info: ValidationInfo) -> float:
        grammar = grammar_of(info)
        if cls.node_links and grammar is not None and grammar.topology.shared_hosts:
            raise ValueError(NOT_ON_HOSTS.format(kind=cls.kind_name()))
        if grammar is not None and grammar.duration and at >= grammar.duration:
            raise ValueError(f"starts at {at:g}s, after the run ends ({grammar.duration:g}s)")
        return at

    @field_validator("duration")
    @classmethod
    def _ends_in_the_run(cls, length: float | None, info: ValidationInfo) -> float | None:
        grammar = grammar_of(info)
        at = info.data.get("at")
        if length is None:
            if not cls.instant:
                raise ValueError(f"a {cls.kind_name()} fault needs 'for' (how long it lasts)")
            return None
        if (
            grammar is not None
            and grammar.duration
            and at is not None
            and at + length > grammar.duration
        ):
            raise ValueError(
                f"ends at {at + length:g}s, after the run ends ({grammar.duration:g}s)"
            )
        return length

    @classmethod
    def kind_name(cls) -> str:
        return str(cls.model_fields["kind"].default)

    @classmethod
    def description(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0]

    @classmethod
    def draw(cls, rng: random.Random, topology: Topology, length: float) -> dict[str, Any]:
        """Parameters of a random instance (no `at`, `for`, `kind`)."""
        raise NotImplementedError(f"{cls.kind_name()} is not drawn by random faults")

    def target(self) -> str:
        return ""

    def weaken(self) -> Iterator[tuple[str, Fault]]:
        """Weaker forms of this fault, one change each, with what changed (`harness shrink`
        tries them): the kind's own (`weaker`), then its window halved, then moved earlier."""
        yield from self.weaker()
        if self.duration is not None and self.duration >= 1.0:
            half = self.duration / 2
            yield f"for {self.duration:g}s -> {half:g}s", self.model_copy(update={"duration": half})
        if self.at >= 1.0:  # a window moved earlier lets the run's duration be cut after it
            earlier = self.model_copy(update={"at": self.at / 2})
            yield f"at {self.at:g}s -> {self.at / 2:g}s", earlier

    def weaker(self) -> Iterator[tuple[str, Fault]]:
        """The kind's own weaker forms (a kill as a terminate, a toxic's figures halved);
        none unless the kind says."""
        return iter(())

    def reforms(self) -> bool:
        """Whether healing it asks the cluster to form again (it stopped a node or cut a link
        between nodes): the readiness probe measures how long that takes (`harness.run.probe`)."""
        return False

    def occupies(self) -> dict[str, tuple[float, float]]:
        """Node -> the span this fault holds it (down, frozen, restarting); two faults may not
        hold one node at once (a second kill of a dead node, a restart of a frozen one)."""
        return {}

    def params(self) -> dict[str, Any]:
        """The kind's own parameters, as the history records them."""
        return self.model_dump(mode="json", exclude={"at", "duration", "kind"})

    async def apply(self, ctx: FaultContext) -> None:
        raise NotImplementedError


def conflict(faults: Sequence[Fault], fault: Fault) -> tuple[int, str] | None:
    """The first of `faults` that holds a node `fault` also holds at an overlapping time, as
    (its index, the node), or None."""
    held = fault.occupies()
    for i, other in enumerate(faults):
        for node, (start, end) in other.occupies().items():
            span = held.get(node)
            if span is not None and span[0] <= end and start <= span[1]:
                return i, node
    return None
