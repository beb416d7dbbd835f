"""Which remote broadcasts a message-level fault takes, and what it does to them: pure.

A `Rule` is one fault's selection while its window is open: the broadcasts it may take (by
direction `origin->receiver`, topic pattern and event) and, among those, which it takes (`every`
n-th, each with `probability` from a seeded stream, or the `first` n). `Rules.decide` gives the
first active rule that takes a broadcast, or None: one broadcast suffers one fault at most.

Directions are the mesh's link names (`n1->n2`: n1's broadcasts as n2 receives them). A
broadcast whose origin cannot be read (a real Phoenix node's Redis envelope) matches a
direction by its receiver alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Literal

from ._framing import Broadcast

Action = Literal["drop", "delay", "duplicate", "reorder"]


@dataclass(frozen=True, slots=True)
class Rule:
    fault_id: str
    action: Action
    directions: frozenset[str] | None = None  # `origin->receiver`; None: every direction
    topic: str | None = None  # an exact topic or a pattern (`room:*`)
    event: str | None = None
    every: int | None = None
    probability: float | None = None
    first: int | None = None
    delay: float = 0.0
    seed: int = 0

    def matches(self, broadcast: Broadcast, receiver: str) -> bool:
        if self.directions is not None:
            if broadcast.origin is None:
                if not any(d.endswith(f"->{receiver}") for d in self.directions):
                    return False
            elif f"{broadcast.origin}->{receiver}" not in self.directions:
                return False
        if self.topic is not None and not (
            broadcast.topic is not None and fnmatchcase(broadcast.topic, self.topic)
        ):
            return False
        return self.event is None or broadcast.event == self.event


@dataclass(slots=True)
class Taken:
    """What one rule has seen and done (the fault's figures)."""

    matched: int = 0
    taken: int = 0


@dataclass(slots=True)
class _Active:
    rule: Rule
    rng: random.Random
    counts: Taken = field(default_factory=Taken)

    def take(self) -> bool:
        rule, counts = self.rule, self.counts
        counts.matched += 1
        if rule.every is not None:
            chosen = counts.matched % rule.every == 0
        elif rule.first is not None:
            chosen = counts.taken < rule.first
        elif rule.probability is not None:
            chosen = self.rng.random() < rule.probability
        else:
            chosen = True
        counts.taken += chosen
        return chosen


class Rules:
    """The rules in force on a proxy; added and removed as fault windows open and close."""

    def __init__(self) -> None:
        self._active: list[_Active] = []

    def __bool__(self) -> bool:
        return bool(self._active)

    def add(self, rule: Rule) -> Taken:
        active = _Active(rule, random.Random(f"{rule.seed}:{rule.fault_id}"))
        self._active.append(active)
        return active.counts

    def remove(self, rule: Rule) -> None:
        self._active = [a for a in self._active if a.rule is not rule]

    def decide(self, broadcast: Broadcast, receiver: str) -> Rule | None:
        for active in self._active:
            if active.rule.matches(broadcast, receiver) and active.take():
                return active.rule
        return None
