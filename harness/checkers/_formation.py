"""The readiness probe's measurements as the checkers see them (`harness.run.probe` makes them).

Each `probe` info op of the history is one measurement: from a heal (or set-up) to the moment
every node had received every node's probe, or its timeout. `formation(op)` reads one back (its
start is the op's time less its `elapsed`, so it moves with the op to the scenario's clock);
`formation_of(formations)` gives results.json's `formation`; `delivery` uses them to say when a loss
was published while the cluster was still re-forming.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..history import Op


@dataclass(frozen=True, slots=True)
class Formation:
    """A measurement of the readiness probe (`harness.run.probe`): from `start` (a heal, or set-up),
    how long the cluster took to carry a probe between every pair of nodes; `seconds` None if
    some pair never got through within `timeout`."""

    kind: str  # formed | reformed | final
    after: str
    fault: str | None
    start: float
    seconds: float | None
    timeout: float
    pairs: dict[str, float | None]
    missing: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def end(self) -> float:
        """When the cluster was whole again (or when the probe gave up)."""
        return self.start + (self.timeout if self.seconds is None else self.seconds)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "after": self.after,
            "fault": self.fault,
            "at": round(self.start, 3),
            "seconds": self.seconds,
            "pairs": self.pairs,
        }
        if self.seconds is None:
            out.update(missing=list(self.missing), timeout=self.timeout, reason=self.reason)
        return out


def formation(op: Op) -> Formation:
    v = op.value
    elapsed, seconds, timeout = v.get("elapsed"), v.get("seconds"), v.get("timeout")
    pairs = v.get("pairs")
    return Formation(
        str(v.get("kind")),
        str(v.get("after") or ""),
        None if v.get("fault") is None else str(v.get("fault")),
        op.time - (float(elapsed) if isinstance(elapsed, int | float) else 0.0),
        float(seconds) if isinstance(seconds, int | float) else None,
        float(timeout) if isinstance(timeout, int | float) else 0.0,
        {
            str(k): float(x) if isinstance(x, int | float) else None
            for k, x in (pairs.items() if isinstance(pairs, dict) else ())
        },
        tuple(str(m) for m in v.get("missing") or ()),
        None if v.get("reason") is None else str(v.get("reason")),
    )


def formation_of(formations: Sequence[Formation]) -> dict[str, Any] | None:
    """The readiness probe's figures for results.json: how long the cluster took to form before
    the workload (`formed`), to re-form after each heal (`reformations`) and after the final
    heal (`final`), each with its slowest pair and every pair's time. None without a probe."""
    if not formations:
        return None
    out: dict[str, Any] = {"formed": None, "reformations": [], "final": None}
    for formation in formations:
        if formation.kind == "reformed":
            out["reformations"].append(formation.to_json())
        elif formation.kind in ("formed", "final"):
            out[formation.kind] = formation.to_json()
    return out
