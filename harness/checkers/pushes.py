"""`pushes`: what a channel sends its own client, on join and on a timer, survives a rejoin.

Point 6 of the source material: channels customise themselves (`handle_out` intercepts, a push
to one client after join, a recurring push from a timer) and that state dies with the channel
process. After a reconnect the new channel must set it all up again; a server that keeps the
old state somewhere (a node-wide table keyed by user, a timer that is "already running") goes
quiet for the rejoined client, and nothing else in a run notices: deliveries still arrive.

Options name the app's own events (none by default, so the check is off unless asked):

* `after_join` + `within` (default 1 s): every join that lasted `within` gets that event on its
  own `join_ref` within `within` of the join's reply (Phoenix's `send(self(), :after_join)`).
* `recurring` + `every` (default 2 s): while a client is joined, the gap between two of those
  events on the channel's `join_ref` (and from the join to the first one) is at most `every`.

Only joins outside every fault window (widened by `settle`, default 1 s) are judged, and of a
gap only its parts outside them: inside a fault a push may be late or lost with its connection,
but a timer that never ticks again is silent after the fault as well. A push is matched by the
join_ref of the channel it reached (the client drops frames of an old channel as stale), so a
tick of an old channel cannot stand in for the new one. The verdict depends on the harness
reading its sockets in time (`timing=True`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from pydantic import Field, model_validator

from ..grammar.units import Duration
from ..witness import Witness
from ._check import Check, Options, count
from ._facts import Facts, Membership
from ._result import CheckResult, vacuous, verdict

DEFAULT_WITHIN = 1.0
DEFAULT_EVERY = 2.0
DEFAULT_SETTLE = 1.0


class PushesOptions(Options):
    after_join: str | None = Field(
        None, min_length=1, description="an event the channel pushes its client after every join"
    )
    within: Duration = DEFAULT_WITHIN
    recurring: str | None = Field(
        None, min_length=1, description="an event the channel pushes its client on a timer"
    )
    every: Duration = DEFAULT_EVERY
    settle: Duration = DEFAULT_SETTLE

    @model_validator(mode="after")
    def _something(self) -> PushesOptions:
        if self.after_join is None and self.recurring is None:
            raise ValueError("name an `after_join` event, a `recurring` event, or both")
        return self


def pushes(facts: Facts, options: PushesOptions) -> CheckResult:
    after, within = options.after_join, options.within
    recurring, every, settle = options.recurring, options.every, options.settle
    seen: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    for op in facts.pushes:
        v = op.value
        key = (op.process, str(v.get("topic")), str(v.get("join_ref")), str(v.get("event")))
        seen[key].append(op.time)

    def quiet(start: float, end: float) -> bool:
        return not any(w.overlaps(start, end, settle) for w in facts.windows)

    def quiet_pieces(start: float, end: float) -> list[tuple[float, float]]:
        """(start, end) without the fault windows (each widened by `settle` after it)."""
        pieces = [(start, end)]
        for w in facts.windows:
            cut: list[tuple[float, float]] = []
            for a, b in pieces:
                if b < w.start or a > w.end + settle:
                    cut.append((a, b))
                    continue
                if a < w.start:
                    cut.append((a, w.start))
                if b > w.end + settle:
                    cut.append((w.end + settle, b))
            pieces = cut
        return pieces

    witnesses: list[Witness] = []
    joins = gaps = 0
    for memberships in facts.memberships.values():
        for m in memberships:
            end = min(m.end, facts.end)
            if after is not None and m.start + within <= end and quiet(m.start, m.start + within):
                joins += 1
                times = seen.get((m.client, m.topic, m.join_ref, after), [])
                if not any(t <= m.start + within for t in times):
                    witnesses.append(_missing_after_join(m, after, within, times))
            if recurring is not None:
                times = sorted(seen.get((m.client, m.topic, m.join_ref, recurring), []))
                marks = [m.start, *(t for t in times if m.start <= t <= end), end]
                for a, b in pairwise(marks):
                    for start, stop in quiet_pieces(a, b):
                        gaps += 1
                        if stop - start > every:
                            witnesses.append(_silence(m, recurring, a, b, every, stop - start))
    summary: dict[str, Any] = {"joins_judged": joins, "gaps_judged": gaps}
    if joins == 0 and gaps == 0:
        return vacuous("pushes", "no join lasted long enough outside the faults", summary)
    witnesses.sort(key=lambda w: w.time or 0.0)
    return verdict("pushes", witnesses, summary)


def _missing_after_join(m: Membership, event: str, within: float, times: list[float]) -> Witness:
    late = min(times) - m.start if times else None
    got = "never got it" if late is None else f"got it only {late:.2f} s later"
    return Witness(
        f"joined {m.topic} (join_ref {m.join_ref}) at {m.start:.2f} s and {got}:"
        f" no `{event}` within {within:g} s",
        time=m.start,
        client=m.client,
        topic=m.topic,
        evidence={"join_ref": m.join_ref, "node": m.node, "event": event, "late": late},
    )


def _silence(
    m: Membership, event: str, start: float, end: float, every: float, quiet: float
) -> Witness:
    since = "its join" if start == m.start else f"the last one at {start:.2f} s"
    outside = "" if quiet >= end - start - 1e-9 else f", {quiet:.2f} s of it outside faults"
    return Witness(
        f"no `{event}` for {end - start:.2f} s after {since}{outside} while joined to"
        f" {m.topic} (join_ref {m.join_ref}); at most {every:g} s allowed",
        time=start,
        client=m.client,
        topic=m.topic,
        evidence={"join_ref": m.join_ref, "node": m.node, "event": event, "until": round(end, 3)},
    )


def _pushes_says(s: Mapping[str, Any]) -> str:
    return (
        f"{count(s.get('joins_judged'))} joins and {count(s.get('gaps_judged'))} timer gaps"
        f" judged, {count(s.get('violations', 0))} pushes missing"
    )


PUSHES = Check(
    "pushes",
    pushes,
    PushesOptions,
    "a channel's own pushes (after join, on a timer) come back after every rejoin",
    default=False,
    timing=True,
    nouns=("channel push missing", "channel pushes missing"),
    for_clients=True,
    says=_pushes_says,
)
