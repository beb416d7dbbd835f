"""What a checker returns: valid / invalid / unknown, with the evidence.

`witnesses` hold the smallest set of events that shows a problem (client, topic, message ids,
times, join_refs, node) and the fault windows around it; `summary` holds counts. Results
compose with Jepsen's priority: invalid > unknown > valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..history import Witness

Validity = Literal["valid", "invalid", "unknown"]
MAX_WITNESSES = 20


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    validity: Validity
    summary: dict[str, Any] = field(default_factory=dict)
    witnesses: tuple[Witness, ...] = ()
    error: str | None = None
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "validity": self.validity,
            "description": self.description,
            "summary": self.summary,
            "witnesses": [w.to_json() for w in self.witnesses],
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckResult:
        return cls(
            name=data["name"],
            validity=data["validity"],
            summary=data.get("summary", {}),
            witnesses=tuple(Witness.from_json(w) for w in data.get("witnesses", ())),
            error=data.get("error"),
            description=data.get("description", ""),
        )


def combine(results: list[CheckResult]) -> Validity:
    validities = {r.validity for r in results}
    if "invalid" in validities:
        return "invalid"
    if "unknown" in validities:
        return "unknown"
    return "valid"


def verdict(name: str, witnesses: Sequence[Witness], summary: dict[str, Any]) -> CheckResult:
    """Invalid if there is any witness (kept to the first MAX_WITNESSES), valid otherwise."""
    summary = {**summary, "violations": len(witnesses)}
    return CheckResult(
        name,
        "invalid" if witnesses else "valid",
        summary,
        tuple(witnesses[:MAX_WITNESSES]),
    )
