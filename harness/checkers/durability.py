"""`durability`: every publish the server acknowledged is in the store at the end.

The runner reads every room's history once the cluster has healed (`read` ops). An
acknowledged id missing from its room is a lost write (the source material's point 3: critical
data belongs in a store that survives the process). Publishes with an unknown outcome (`info`)
may or may not be there; they are counted, not judged. No final read means unknown; a room
whose read failed (the node refused, the answer was too big, the run ended first) is left out,
and with no lost write elsewhere the verdict is unknown with the reason: never a "lost write"
that was only an unreadable room. No acknowledged publish means vacuous (nothing to judge).

A publish acknowledged only after its room's read began was concurrent with the read: the read
may or may not see it, so it is counted (`acknowledged_during_read`), not judged. (An overloaded
node can answer a publish seconds late, during the final read: judging those was a false alarm
of a correct server.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..witness import Witness
from ._check import Check, Options, count, counted
from ._facts import Facts
from ._result import CheckResult, vacuous, verdict


def durability(facts: Facts, options: Options) -> CheckResult:
    if facts.reads is None and facts.unread:
        return _unreadable(facts, {})
    if facts.reads is None:
        return CheckResult(
            "durability",
            "unknown",
            {},
            (),
            "the history has no final read (`app.read: none`, or the run ended before it)",
        )
    witnesses: list[Witness] = []
    acknowledged = indefinite_stored = indefinite = 0
    reads = facts.reads
    skipped = during = 0
    for message in facts.publishes.values():
        if message.topic in facts.unread:
            skipped += message.outcome == "ok"
            continue
        stored = message.id in reads.get(message.topic, set())
        read_from = facts.read_from.get(message.topic)
        if (
            message.outcome == "ok"
            and read_from is not None
            and message.completed is not None
            and message.completed >= read_from
        ):
            during += 1  # concurrent with the read: either answer is right
            continue
        if message.outcome == "ok":
            acknowledged += 1
            if not stored:
                witnesses.append(
                    Witness(
                        f"{message.id} was acknowledged on {message.topic} but is not in the store",
                        message.completed,
                        None,
                        message.topic,
                        {
                            "id": message.id,
                            "publisher": message.publisher,
                            "acknowledged_at": round(message.completed or 0.0, 3),
                            "faults": _suspects(facts, message.invoked, message.completed),
                        },
                    )
                )
        elif message.outcome in ("info", "invoke"):
            indefinite += 1
            indefinite_stored += stored
    summary = {
        "acknowledged": acknowledged,
        "indefinite": indefinite,
        "indefinite_stored": indefinite_stored,
        "rooms_read": len(reads),
    }
    if during:
        summary["acknowledged_during_read"] = during
    if facts.unread:
        summary |= {"rooms_unread": len(facts.unread), "acknowledged_unjudged": skipped}
    if facts.unread and not witnesses:
        return _unreadable(facts, summary)
    if not acknowledged:
        return vacuous("durability", "no publish was acknowledged", summary)
    return verdict("durability", witnesses, summary)


def _suspects(facts: Facts, invoked: float, acknowledged: float | None) -> list[dict[str, Any]]:
    """The faults that may have lost an acknowledged write: those around its publish, else the
    first one after its acknowledgement (a write lost later was lost by what came next)."""
    done = acknowledged if acknowledged is not None else invoked
    around = facts.windows_near(invoked, done, 1.0)
    if around:
        return around
    later = [w for w in facts.windows if w.start >= done]
    return [later[0].to_json()] if later else []


def _unreadable(facts: Facts, summary: dict[str, Any]) -> CheckResult:
    """A room whose store could not be read proves nothing either way: unknown, with why."""
    rooms = "; ".join(f"{topic}: {why}" for topic, why in sorted(facts.unread.items())[:5])
    return CheckResult(
        "durability",
        "unknown",
        summary,
        (),
        f"the final read failed for {len(facts.unread)} room(s), so their acknowledged"
        f" publishes cannot be judged ({rooms})",
    )


def _durability_says(s: Mapping[str, Any]) -> str:
    acknowledged, missing = int(s.get("acknowledged", 0)), int(s.get("violations", 0))
    extra = []
    if s.get("indefinite"):
        extra.append(f"{count(s['indefinite'])} unknown outcomes not judged")
    if s.get("acknowledged_during_read"):
        extra.append(f"{count(s['acknowledged_during_read'])} acknowledged during the read")
    more = f" ({'; '.join(extra)})" if extra else ""
    return (
        f"{count(acknowledged - missing)} of {count(acknowledged)} acknowledged writes in the"
        f" store ({_rooms(s.get('rooms_read'))}){more}"
    )


def _rooms(read: Any) -> str:
    return f"{counted(read, 'room')} read" if isinstance(read, int) else "no room read"


DURABILITY = Check(
    "durability",
    durability,
    Options,
    "every acknowledged publish is in the store at the end",
    nouns=("acknowledged write missing", "acknowledged writes missing"),
    says=_durability_says,
)
