"""The `random` fault: a seeded Jepsen-style mix of `count` faults of `kinds` inside its window.

It never runs as such: before a run, `expand` replaces it with concrete faults drawn from the
run's seed (each kind draws its own parameters, `Fault.draw`), and the resolved scenario in the
run directory holds those, so a run replays from its own `scenario.yaml`. The order of the
random calls is part of the contract: a seed must keep resolving to the same faults
(`tests/data/resolved-faults.json` holds them).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from ..grammar.section import Topology, grammar_of
from ..grammar.units import Bounded, Duration
from ._base import NOT_ON_HOSTS, Fault, conflict

MAX_DRAWS = 50
DEFAULT_KINDS = ("latency", "down", "partition", "kill", "pause", "client_crash")


class Random(Fault):
    """a seeded Jepsen-style mix of `count` faults of `kinds`"""

    drawn = False
    kind: Literal["random"] = "random"
    count: Annotated[int, Bounded(1, 100)] = 3
    kinds: Annotated[tuple[str, ...], Field(validate_default=True)] = DEFAULT_KINDS
    min_for: Duration = 1.0
    max_for: Duration = 4.0

    @field_validator("kinds", mode="before")
    @classmethod
    def _drawable(cls, value: Any) -> Any:
        from . import DRAWN_KINDS

        if (
            not isinstance(value, list | tuple)
            or not value
            or any(k not in DRAWN_KINDS for k in value)
        ):
            raise ValueError(f"expected a list of fault kinds among {', '.join(DRAWN_KINDS)}")
        return value

    @field_validator("kinds")
    @classmethod
    def _cut_where_possible(cls, kinds: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        from . import KINDS

        grammar = grammar_of(info)
        cutting = [kind for kind in kinds if KINDS[kind].node_links]
        if grammar is not None and grammar.topology.shared_hosts and cutting:
            raise ValueError(NOT_ON_HOSTS.format(kind=cutting[0]) + "; leave it out of kinds")
        return kinds

    def expand(
        self, rng: random.Random, topology: Topology, planned: Sequence[Fault] = ()
    ) -> list[Fault]:
        """`count` faults drawn from `rng`. A draw that would hold a node another fault already
        holds (`conflict`: a second kill of a dead node) is drawn again, so every seed yields a
        schedule that can run; seeds without such a clash resolve as they always did."""
        from . import KINDS

        window = self.duration or 0.0
        out: list[Fault] = []
        for _ in range(self.count):
            for _attempt in range(MAX_DRAWS):
                kind = KINDS[rng.choice(list(self.kinds))]
                length = rng.uniform(self.min_for, min(self.max_for, window))
                at = self.at + rng.uniform(0.0, max(0.0, window - length))
                params = kind.draw(rng, topology, length)
                duration = None if kind.instant else round(length, 3)
                fault = kind.model_validate({"at": round(at, 3), "for": duration, **params})
                if conflict([*planned, *out], fault) is None:
                    out.append(fault)
                    break
            else:
                raise ValueError(
                    f"random: no room for {self.count} faults of {', '.join(self.kinds)} between"
                    f" {self.at:g}s and {self.at + window:g}s without two on one node at once"
                )
        return out
