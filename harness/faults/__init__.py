"""Fault kinds: one module per family, one registry line per kind.

    toxics.py   latency bandwidth slow_close timeout reset_peer slicer limit_data
    links.py    down partition packet_loss
    nodes.py    kill terminate pause restart rolling_restart
    clients.py  client_close client_crash client_leave
    broadcasts.py  drop_broadcast delay_broadcast duplicate_broadcast reorder_broadcast
    random.py   random (expanded into the others before a run)

Adding a kind: a class in one of those modules (or a new one) with its parameters, docstring,
`target`, `draw` and `apply`, and its name in `REGISTRY` below. The scenario grammar, the JSON
Schema, `harness list`, the random draw, the nemesis and the report's "disruptive" warning all
read it from here.
"""

from __future__ import annotations

import random as _random
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Union

from pydantic import Field

from ..grammar.section import Grammar, Topology, grammar_of
from ._base import Fault, FaultContext, Node, conflict
from .broadcasts import (
    BroadcastFault,
    DelayBroadcast,
    DropBroadcast,
    DuplicateBroadcast,
    ReorderBroadcast,
)
from .clients import ClientClose, ClientCrash, ClientLeave
from .links import Down, PacketLoss, Partition
from .nodes import Kill, Pause, Restart, RollingRestart, Terminate
from .random import Random
from .toxics import Bandwidth, Latency, LimitData, ResetPeer, Slicer, SlowClose, Timeout, Toxic

REGISTRY: tuple[type[Fault], ...] = (
    Latency,
    Bandwidth,
    SlowClose,
    Timeout,
    ResetPeer,
    Slicer,
    LimitData,
    Down,
    Partition,
    PacketLoss,
    Kill,
    Terminate,
    Pause,
    Restart,
    RollingRestart,
    ClientClose,
    ClientCrash,
    ClientLeave,
    DropBroadcast,
    DelayBroadcast,
    DuplicateBroadcast,
    ReorderBroadcast,
    Random,
)

KINDS: dict[str, type[Fault]] = {kind.kind_name(): kind for kind in REGISTRY}
DRAWN_KINDS: tuple[str, ...] = tuple(name for name, kind in KINDS.items() if kind.drawn)
DISRUPTIVE: frozenset[str] = frozenset(name for name, kind in KINDS.items() if kind.disruptive)

if TYPE_CHECKING:
    AnyFault = Fault
else:
    AnyFault = Annotated[Union[REGISTRY], Field(discriminator="kind")]  # noqa: UP007


def describe() -> dict[str, str]:
    """Kind -> its one-line description (`harness list`)."""
    return {name: kind.description() for name, kind in KINDS.items()}


def cuts_node_links(fault: Fault) -> bool:
    """Whether a (resolved) fault cuts node-to-node links: a kind that does (`node_links`), or
    one that names a node link."""
    links = getattr(fault, "link", None) or ()
    named = isinstance(links, tuple) and any(
        isinstance(link, str) and not link.startswith("clients->") for link in links
    )
    return type(fault).node_links or named


def expand_random(faults: Iterable[Fault], seed: int, topology: Topology) -> tuple[Fault, ...]:
    """Replace each `random` fault by concrete ones drawn from `seed`, ordered by start time
    (stable), so the resolved scenario replays."""
    rng = _random.Random(seed)
    out: list[Fault] = []
    faults = tuple(faults)
    fixed = [f for f in faults if not isinstance(f, Random)]
    for fault in faults:
        if isinstance(fault, Random):
            out.extend(fault.expand(rng, topology, [*fixed, *out]))
        else:
            out.append(fault)
    return tuple(sorted(out, key=lambda f: f.at))


__all__ = [
    "DISRUPTIVE",
    "DRAWN_KINDS",
    "KINDS",
    "REGISTRY",
    "AnyFault",
    "BroadcastFault",
    "Fault",
    "FaultContext",
    "Grammar",
    "Node",
    "Topology",
    "Toxic",
    "conflict",
    "cuts_node_links",
    "describe",
    "expand_random",
    "grammar_of",
]
