"""`Witness`: what a checker shows for one problem, with the time it happened (on the
scenario's clock), so the report, JUnit and the terminal place it without guessing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Witness:
    """The evidence of one problem a checker found: what, when, who, and the facts around it."""

    problem: str
    time: float | None = None
    client: str | None = None
    topic: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "problem": self.problem,
            "time": None if self.time is None else round(self.time, 3),
        }
        if self.client is not None:
            out["client"] = self.client
        if self.topic is not None:
            out["topic"] = self.topic
        return {**out, **self.evidence}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Witness:
        rest = {k: v for k, v in data.items() if k not in ("problem", "time", "client", "topic")}
        time = data.get("time")
        return cls(
            str(data.get("problem", "")),
            float(time) if isinstance(time, int | float) else None,
            data.get("client"),
            data.get("topic"),
            rest,
        )
