"""What a checker returns: valid / invalid / unknown, with the evidence.

`witnesses` hold the problems found, the first `KEPT` of each check in time (a server that floods a
million phantoms must not cost a million witnesses: beyond `KEPT` they are counted, not built;
`summary["violations"]` is the exact count); results.json keeps the first `MAX_WITNESSES` of each
check and `witnesses.jsonl` in the run directory the `KEPT`. Each is the smallest set of events that
shows it (client, topic, message ids, times, join_refs, node) and the fault windows around it;
`summary` holds counts; `limits` each threshold's figure against its limit.

`unknown` has two flavours, both with `error` saying why: the harness could not judge (its own
load generator fell behind, the run ended before a deadline, a checker crashed), or the check
was *vacuous*: the run gave it nothing to judge (nothing delivered, nothing acknowledged). A
vacuous check is never `valid`: a run that tested nothing is not a pass. Results compose with
Jepsen's priority: invalid > unknown > valid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..witness import Witness

Validity = Literal["valid", "invalid", "unknown"]
MAX_WITNESSES = 20  # in results.json, JUnit and the report, per check
KEPT = 10_000  # witnesses built and kept per check (witnesses.jsonl); the rest only counted


@dataclass(frozen=True, slots=True)
class Limit:
    """One threshold: the figure measured against the limit it must not pass."""

    figure: str
    value: float
    limit: float
    unit: Literal["s", "%"] = "s"
    above: bool = False  # True: the figure must stay at or above the limit (availability)

    @property
    def ok(self) -> bool:
        return self.value >= self.limit if self.above else self.value <= self.limit

    @property
    def text(self) -> str:
        sign = (">=" if self.ok else "<") if self.above else ("<=" if self.ok else ">")
        return f"{self.figure} {_show(self.value, self.unit)} {sign} {_show(self.limit, self.unit)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "value": self.value,
            "limit": self.limit,
            "unit": self.unit,
            "above": self.above,
            "ok": self.ok,
            "text": self.text,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Limit:
        return cls(
            str(data["figure"]),
            float(data["value"]),
            float(data["limit"]),
            data.get("unit", "s"),
            bool(data.get("above", False)),
        )


def _show(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.1%}"
    return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    validity: Validity
    summary: dict[str, Any] = field(default_factory=dict)
    witnesses: tuple[Witness, ...] = ()
    error: str | None = None
    description: str = ""
    vacuous: bool = False
    limits: tuple[Limit, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "validity": self.validity,
            "vacuous": self.vacuous,
            "description": self.description,
            "summary": self.summary,
            "limits": [limit.to_json() for limit in self.limits],
            "witness_count": int(self.summary.get("violations", len(self.witnesses))),
            "witnesses": [w.to_json() for w in self.witnesses[:MAX_WITNESSES]],
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CheckResult:
        return cls(
            name=data["name"],
            validity=data["validity"],
            summary=data.get("summary", {}),
            witnesses=tuple(Witness.from_json(w) for w in data.get("witnesses", ())),
            error=data.get("error"),
            description=data.get("description", ""),
            vacuous=bool(data.get("vacuous", False)),
            limits=tuple(Limit.from_json(x) for x in data.get("limits", ())),
        )


def combine(results: Sequence[CheckResult]) -> Validity:
    validities = {r.validity for r in results}
    if "invalid" in validities:
        return "invalid"
    if "unknown" in validities or not results:
        return "unknown"
    return "valid"


def verdict(
    name: str, witnesses: Sequence[Witness], summary: dict[str, Any], total: int | None = None
) -> CheckResult:
    """Invalid if there is any violation, valid otherwise; `total`: how many there were when
    only the first `KEPT` were made into witnesses."""
    count = len(witnesses) if total is None else max(total, len(witnesses))
    summary = {**summary, "violations": count}
    return CheckResult(name, "invalid" if count else "valid", summary, tuple(witnesses[:KEPT]))


def vacuous(name: str, reason: str, summary: dict[str, Any] | None = None) -> CheckResult:
    """Nothing to judge: unknown, with the reason, never valid."""
    return CheckResult(
        name, "unknown", summary or {}, (), f"nothing to judge: {reason}", vacuous=True
    )
