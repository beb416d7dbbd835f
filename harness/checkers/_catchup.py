"""`delivery` under `guarantee: at_least_once`: the catch-up an app writes on top of Phoenix.

Phoenix delivers at most once; an app that catches its clients up on rejoin (the client joins
with the last position it saw, the channel replays what it missed from the store) promises
more: every acknowledged message published on a topic at or after a client's first join of it
reaches that client, fault windows included, by `within` after

* the publish's acknowledgement, when the client was joined from the publish until then, or
* the client's first successful (re)join of the topic after the publish, otherwise (it was away,
  or lost its channel before the message reached it).

A message that arrived after its deadline is late, one that never arrived is missing: both are
violations, grouped into gaps, one witness each: a client's misses of one topic due through the
same rejoin (or inside the same membership, when it never left), with the position it rejoined
with (`{cursor}`, recorded in its join) and the positions it never got (read from the other
clients' deliveries of the same messages). A message whose deadline falls after the history's
end, or whose client never joined the topic again, is undecided (the `rejoin` check judges the
latter). `settle` does not apply: `within` is the deadline.

Figures: deliveries due, on time, late, missing, undecided; how many of the on-time ones arrived
through a rejoin (caught up) and how many live; the time each rejoin took to catch up (from the
join to the last missed message's arrival), p50/p99/max.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..witness import Witness
from ._check import quantiles
from ._facts import Facts, Membership, Publish
from ._result import KEPT, CheckResult, vacuous, verdict

SHOWN_IDS = 5  # message ids a witness lists when the positions are not known
INF = float("inf")


@dataclass(slots=True)
class Gap:
    """What one client missed on one topic, due through one (re)join or inside one membership."""

    client: str
    topic: str
    rejoin: Membership | None  # the join the messages were due after; None: joined throughout
    during: Membership | None  # the membership the client was in when the first was published
    messages: list[int] = field(default_factory=list)  # message codes, publish order
    late: list[float] = field(default_factory=list)  # per message: seconds late, or inf


@dataclass(slots=True)
class CatchUp:
    """What `catch_up` found: deliveries due, on time (caught up after a rejoin, or live), late,
    missing, undecided; each rejoin's time to catch up; the gaps."""

    due: int = 0
    on_time: int = 0
    caught_up: int = 0
    late: int = 0
    missing: int = 0
    undecided: int = 0
    rejoins: int = 0
    acknowledged: int = 0
    times: list[float] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)


def at_least_once(facts: Facts, within: float) -> CheckResult:
    found = catch_up(facts, within)
    summary: dict[str, Any] = {
        "guarantee": "at_least_once",
        "within": within,
        "acknowledged_messages": found.acknowledged,
        "expected_deliveries": found.due,
        "delivered": found.on_time,
        "caught_up": found.caught_up,
        "live": found.on_time - found.caught_up,
        "late": found.late,
        "missing": found.missing,
        "undecided": found.undecided,
        "rejoins": found.rejoins,
        "time_to_catch_up": quantiles(found.times),
        "gaps": len(found.gaps),
    }
    if not found.due:
        return vacuous(
            "delivery",
            "no acknowledged message was published on a topic a client had joined",
            summary,
        )
    if not found.rejoins:
        return vacuous(
            "delivery", "no client joined a topic again: the catch-up was not exercised", summary
        )
    publishes = list(facts.publishes.values())  # by message code
    gaps = sorted(found.gaps, key=lambda g: (publishes[g.messages[0]].invoked, g.client))
    positions = _positions(facts, [m for g in gaps[:KEPT] for m in g.messages])
    witnesses = [_witness(facts, g, publishes, positions, within) for g in gaps[:KEPT]]
    return verdict("delivery", witnesses, summary, len(gaps))


def catch_up(facts: Facts, within: float) -> CatchUp:
    """Every client's deliveries of every topic judged against the at-least-once deadline."""
    messages, deliveries = facts.messages, facts.deliveries
    invoked, completed = messages.invoked, messages.completed
    acknowledged = messages.ok & ~np.isnan(completed)
    codes = (facts.clients, facts.topics)
    found = CatchUp(acknowledged=int(acknowledged.sum()))
    gaps = found.gaps
    for (client, topic), memberships in sorted(facts.memberships.items()):
        code = facts.topics.get(topic)
        if code is None or not memberships:
            continue
        found.rejoins += len(memberships) - 1
        starts = np.array([m.start for m in memberships])
        ends = np.array([m.end for m in memberships])
        of_topic = np.flatnonzero(acknowledged & (messages.topic == code))
        of_topic = of_topic[invoked[of_topic] >= starts[0]]
        if not len(of_topic):
            continue
        inv, comp = invoked[of_topic], completed[of_topic]
        inside = np.searchsorted(starts, inv, side="right") - 1  # the membership at the publish
        after = inside + 1  # the first (re)join after the publish
        throughout = ends[inside] >= comp + within
        has_next = after < len(starts)
        rejoin_at = np.where(has_next, starts[np.minimum(after, len(starts) - 1)], INF)
        deadline = np.where(throughout, comp + within, rejoin_at + within)
        got, got_times = deliveries.first_times(client, topic, codes)
        at = np.minimum(np.searchsorted(got, of_topic), max(len(got) - 1, 0))
        received = (got[at] == of_topic) if len(got) else np.zeros(len(of_topic), np.bool_)
        arrived = np.where(received, got_times[at] if len(got) else 0.0, INF)
        decided = received | (deadline <= facts.end)
        is_on_time = received & (arrived <= deadline)
        is_late = received & (arrived > deadline)
        is_missing = ~received & decided
        found.due += int(decided.sum())
        found.on_time += int(is_on_time.sum())
        found.late += int(is_late.sum())
        found.missing += int(is_missing.sum())
        found.undecided += int((~decided).sum())
        # through a rejoin: on time, and it arrived in a membership that began after the publish
        arrived_in = np.searchsorted(starts, arrived, side="right") - 1
        through = is_on_time & ~throughout & (arrived_in >= after)
        found.caught_up += int(through.sum())
        for r in np.unique(after[through]).tolist():
            took = arrived[through & (after == r)] - starts[r]
            found.times.append(float(took.max()))
        wrong = np.flatnonzero(is_late | is_missing)
        for i in wrong.tolist():
            joined_through = bool(throughout[i])
            rejoin = None if joined_through else memberships[int(after[i])]
            during = memberships[int(inside[i])] if inside[i] >= 0 else None
            key = (client, topic, id(rejoin) if rejoin is not None else id(during))
            if not gaps or (gaps[-1].client, gaps[-1].topic, _key(gaps[-1])) != key:
                gaps.append(Gap(client, topic, rejoin, during))
            gaps[-1].messages.append(int(of_topic[i]))
            gaps[-1].late.append(float(arrived[i] - deadline[i]) if received[i] else INF)
    return found


def _key(gap: Gap) -> int:
    return id(gap.rejoin) if gap.rejoin is not None else id(gap.during)


def _positions(facts: Facts, codes: Sequence[int]) -> dict[int, Any]:
    """The position (`cursor`) each message carried in any client's delivery, where known."""
    deliveries = facts.deliveries
    if not codes or not len(deliveries):
        return {}
    wanted = np.asarray(sorted(set(codes)), np.int64)
    found: dict[int, Any] = {}
    for i in np.flatnonzero(np.isin(deliveries.message, wanted)).tolist():
        message = int(deliveries.message[i])
        if message not in found:
            cursor = deliveries.op(i).value.get("cursor")
            if cursor is not None:
                found[message] = cursor
    return found


def _witness(
    facts: Facts,
    gap: Gap,
    published: Sequence[Publish],
    positions: dict[int, Any],
    within: float,
) -> Witness:
    publishes = [published[m] for m in gap.messages]
    never = [m for m, late in zip(gap.messages, gap.late, strict=True) if late == INF]
    what = _which(never or gap.messages, published, positions)
    count = len(gap.messages)
    if never:
        got = f"never got {what}"
    else:
        worst = max(gap.late)
        got = f"got {what} only {worst:.1f} s after its {within:g} s deadline"
    if len(never) not in (0, count):
        got += f" ({count - len(never)} more arrived late)"
    first, last = publishes[0].invoked, publishes[-1].invoked
    if gap.rejoin is not None:
        cursor = facts.cursors.get((gap.client, gap.topic, gap.rejoin.join_ref), "?")
        since = "null" if cursor is None else cursor
        where = f" on {gap.rejoin.node}" if gap.rejoin.node else ""
        problem = (
            f"{gap.client} rejoined {gap.topic}{where} at {gap.rejoin.start:.1f} s with"
            f" cursor {since} and {got}"
        )
        time = gap.rejoin.start
        node = gap.rejoin.node
    else:
        where = f" on {gap.during.node}" if gap.during is not None and gap.during.node else ""
        problem = f"{gap.client} stayed joined to {gap.topic}{where} and {got}"
        time = first
        node = gap.during.node if gap.during is not None else None
    evidence: dict[str, Any] = {
        "messages": count,
        "ids": [p.id for p in publishes[:SHOWN_IDS]],
        "published": {"from": round(first, 3), "to": round(last, 3)},
        "faults": facts.windows_near(first, max(last, time)),
    }
    if node:
        evidence["node"] = node
    if gap.rejoin is not None:
        evidence["rejoined_at"] = round(gap.rejoin.start, 3)
        evidence["cursor"] = facts.cursors.get((gap.client, gap.topic, gap.rejoin.join_ref))
        evidence["join_ref"] = gap.rejoin.join_ref
    known = [positions[m] for m in gap.messages if m in positions]
    if known:
        evidence["positions"] = known[: SHOWN_IDS * 4]
    return Witness(problem, time, gap.client, gap.topic, evidence)


def _which(codes: Sequence[int], published: Sequence[Publish], positions: dict[int, Any]) -> str:
    """`#119-#121` (positions, when every one is known and they run on), `#119, #121 and 3
    more`, or the ids."""
    known = [positions.get(m) for m in codes]
    if all(type(p) is int for p in known):
        ints = sorted(p for p in known if type(p) is int)
        if ints[-1] - ints[0] == len(ints) - 1:
            return f"#{ints[0]}" if len(ints) == 1 else f"#{ints[0]}-#{ints[-1]}"
        shown = ", ".join(f"#{p}" for p in ints[:SHOWN_IDS])
        return shown + (f" and {len(ints) - SHOWN_IDS} more" if len(ints) > SHOWN_IDS else "")
    ids = [published[m].id for m in codes]
    shown = ", ".join(ids[:SHOWN_IDS])
    return shown + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")
