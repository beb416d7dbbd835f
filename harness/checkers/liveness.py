"""Liveness checks: clients come back, messages arrive.

* `rejoin` (`within`, default 15 s): after every disconnect (or channel error, `phx_error`:
  the channel crashed and the client rejoins that topic alone) a client is
  joined again to every topic it should be in, within `within` of the moment the fault that
  caused it healed (or of the loss itself when no fault window covers it). At the end of the run
  every client is joined to all its topics: a client that is connected but not joined is the
  source material's "one socket and zero channels" (point 2). Topics the server closed for good
  (`phx_close`) are not expected back.
* `delivery` (`guarantee: at_most_once`, the default; `settle`, default 3 s): every acknowledged
  message whose publish falls outside every fault window (each extended by `settle` after it heals)
  reaches every client that was joined to its topic from before the publish until after the
  acknowledgement. Losses inside fault windows are counted and reported, never failed: at-most-once
  allows them. A loss published while the cluster was still re-forming after a heal, for longer than
  `settle` (the readiness probe measured it: `Facts.formations`), says so in its witness
  (`reforming`), so the sentence names the re-formation time against `settle`. Under `guarantee:
  at_least_once` (`within`, default 5 s), for an app that catches its clients up on rejoin, nothing
  is allowed to be lost, fault windows included (`_catchup`).

Both depend on the harness keeping time (`timing=True`): where its own load generator fell
behind, `harness.checkers._distress` turns their violations into `unknown`. `rejoin` is vacuous
when no client ever joined; with no loss at all it still judges the end of the run (every client
joined to all its topics), and the run's warnings say that no rejoin was exercised. `delivery` is
vacuous when no acknowledged message outside fault windows was expected by any joined client.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Annotated, Any, Literal, cast

import numpy as np
import numpy.typing as npt
from pydantic import model_validator

from ..grammar.units import Duration, OneOf
from ..witness import Witness
from ._catchup import at_least_once
from ._check import Check, Options, count, percentiles, quantiles, seconds
from ._facts import Facts, Membership, Publish, describe
from ._result import KEPT, CheckResult, vacuous, verdict

DEFAULT_WITHIN = 15.0
DEFAULT_SETTLE = 3.0
DEFAULT_WITHIN_CAUGHT_UP = 5.0  # `delivery` under at_least_once: the deadline after a (re)join


def rejoin(facts: Facts, options: RejoinOptions) -> CheckResult:
    within = options.within or DEFAULT_WITHIN
    if not facts.expected_topics:
        return vacuous("rejoin", "no client asked to join a topic")
    witnesses: list[Witness] = []
    times: list[float] = []
    undecided = 0
    pending: set[tuple[str, str]] = set()  # lost, deadline after the end: cannot decide
    losses: list[tuple[str, str, Any]] = []
    for client, ops in facts.losses.items():
        for op in ops:
            for topic in sorted(facts.expected_topics.get(client, ())):
                losses.append((client, topic, op))
    for op in facts.channel_errors:
        losses.append((op.process, str(op.value.get("topic")), op))
    for client, topic, op in losses:
        base = op.time
        for window in facts.windows:
            if window.start <= op.time <= window.end:
                base = max(base, window.end)
        deadline = base + within
        back = next(
            (m for m in facts.memberships.get((client, topic), ()) if m.start > op.time), None
        )
        if back is not None and back.start <= deadline:
            times.append(back.start - op.time)
            continue
        if deadline > facts.end and back is None:
            undecided += 1
            pending.add((client, topic))
            continue
        reconnected = _reconnected(facts, client, op.time)
        if back is not None:
            later = f" (rejoined at {back.start:.3f}s)"
        elif reconnected is not None:
            later = f" though its socket was open again at {reconnected:.3f}s"
        elif _connected_at_end(facts, client):
            later = " (connected but deaf)"
        else:
            later = ""
        witnesses.append(
            Witness(
                f"{client} lost {topic} at {op.time:.3f}s and was not joined again by "
                f"{deadline:.3f}s{later}",
                op.time,
                client,
                topic,
                {
                    "lost": describe(op),
                    "deadline": round(deadline, 3),
                    "rejoined_at": round(back.start, 3) if back else None,
                    "reconnected_at": reconnected,
                    "faults": facts.windows_near(op.time, deadline),
                },
            )
        )
    for client, topics in sorted(facts.expected_topics.items()):
        for topic in sorted(topics):
            if (client, topic) in facts.closed or (client, topic) in pending:
                continue  # closed for good by the server (phx_close), or still within deadline
            memberships = facts.memberships.get((client, topic), [])
            if memberships and memberships[-1].end == float("inf"):
                continue
            if any(w.client == client and w.topic == topic for w in witnesses):
                continue
            last = memberships[-1] if memberships else None
            witnesses.append(
                Witness(
                    f"{client} is not joined to {topic} at the end of the run"
                    + (" (connected but deaf)" if _connected_at_end(facts, client) else ""),
                    last.end if last else None,
                    client,
                    topic,
                    {
                        "last_joined": {
                            "from": round(last.start, 3),
                            "until": round(last.end, 3),
                            "join_ref": last.join_ref,
                            "node": last.node,
                        }
                        if last
                        else None,
                        "faults": facts.windows_near(last.end if last else facts.start, facts.end),
                    },
                )
            )
    result = verdict(
        "rejoin",
        witnesses,
        {
            "losses": len(losses),
            "channel_errors": len(facts.channel_errors),
            "rejoined": len(times),
            "undecided": undecided,
            "time_to_rejoin": quantiles(times),
            "within": within,
        },
    )
    if result.validity == "valid" and undecided:
        return CheckResult(
            "rejoin",
            "unknown",
            result.summary,
            (),
            f"{undecided} losses had their deadline after the run ended",
        )
    return result


def _reconnected(facts: Facts, client: str, after: float) -> float | None:
    """When the client's socket was open again after `after`, joined or not."""
    again = (start for start, _ in facts.connections.get(client, ()) if start > after)
    first = next(again, None)
    return None if first is None else round(first, 3)


def _connected_at_end(facts: Facts, client: str) -> bool:
    connections = facts.connections.get(client, [])
    return bool(connections) and connections[-1][1] == float("inf")


def delivery(facts: Facts, options: DeliveryOptions) -> CheckResult:
    if options.guarantee == "at_least_once":
        return at_least_once(
            facts, DEFAULT_WITHIN_CAUGHT_UP if options.within is None else options.within
        )
    settle = DEFAULT_SETTLE if options.settle is None else options.settle
    deliveries, messages = facts.deliveries, facts.messages
    by_topic: dict[str, list[Membership]] = defaultdict(list)
    for (_client, topic), memberships in facts.memberships.items():
        by_topic[topic].extend(memberships)
    invoked, completed = messages.invoked, messages.completed
    acknowledged = messages.ok & ~np.isnan(completed)
    in_fault = np.zeros(len(invoked), np.bool_)
    for w in facts.windows:
        if not w.idle:  # a fault that touched nothing excuses nothing
            in_fault |= (invoked <= w.end + settle) & (completed >= w.start)
    codes = (facts.clients, facts.topics)
    missing: list[tuple[float, int, int, Membership]] = []  # (invoked, message, place, m)
    expected = delivered = lost_in_faults = 0
    for topic, memberships in by_topic.items():
        code = facts.topics.get(topic)
        if code is None:
            continue
        of_topic = np.flatnonzero(acknowledged & (messages.topic == code))
        if not len(of_topic):
            continue
        start, end, faulted = invoked[of_topic], completed[of_topic], in_fault[of_topic]
        for place, m in enumerate(memberships):
            covered = (m.start <= start) & (m.end >= end)
            if not covered.any():
                continue
            got = _among(of_topic, deliveries.received(m.client, topic, codes))
            expected += int((covered & ~faulted).sum())
            delivered += int((covered & got).sum())
            lost_in_faults += int((covered & ~got & faulted).sum())
            for i in of_topic[covered & ~got & ~faulted].tolist():
                missing.append((float(invoked[i]), i, place, m))
    missing.sort(key=lambda lost: lost[:3])
    publishes = list(facts.publishes.values())  # by message code
    witnesses = [_lost(facts, publishes[i], m, settle) for _, i, _, m in missing[:KEPT]]
    faulted_messages = int((acknowledged & in_fault).sum())
    clean_messages = int((acknowledged & ~in_fault).sum())
    summary = {
        "acknowledged_messages": clean_messages + faulted_messages,
        "outside_faults": clean_messages,
        "inside_faults": faulted_messages,
        "expected_deliveries": expected,
        "delivered": delivered,
        "lost_outside_faults": len(missing),
        "lost_inside_faults": lost_in_faults,
        "settle": settle,
    }
    if not expected:
        return vacuous(
            "delivery",
            "no acknowledged message was published outside the fault windows (+ settle) "
            "while a client was joined to its topic",
            summary,
        )
    return verdict("delivery", witnesses, summary, len(missing))


def _among(
    values: npt.NDArray[np.int64], ascending: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Which of `values` are in `ascending` (sorted): `np.isin` without its sort."""
    if not len(ascending):
        return np.zeros(len(values), np.bool_)
    at = np.minimum(np.searchsorted(ascending, values), len(ascending) - 1)
    return np.asarray(ascending[at] == values)


def _lost(facts: Facts, message: Publish, m: Membership, settle: float) -> Witness:
    start, end = message.invoked, cast(float, message.completed)
    reforming = next(
        (
            f
            for f in facts.formations
            if f.kind != "formed" and f.start <= start < f.end and f.end - f.start > settle
        ),
        None,
    )
    extra: dict[str, Any] = {}
    if reforming is not None:  # published while the cluster was still re-forming after a heal
        extra["reforming"] = {
            "after": reforming.after,
            "fault": reforming.fault,
            "at": round(reforming.start, 3),
            "seconds": reforming.seconds,
            "timeout": reforming.timeout,
            "settle": settle,
        }
    return Witness(
        f"{m.client} never received {message.id} on {message.topic}",
        start,
        m.client,
        message.topic,
        {
            "id": message.id,
            "publisher": message.publisher,
            "published_at": round(start, 3),
            "acknowledged_at": round(end, 3),
            "joined": {
                "from": round(m.start, 3),
                "until": _until(m.end),
                "join_ref": m.join_ref,
                "node": m.node,
            },
            "faults": facts.windows_near(start - settle, end + settle),
            **extra,
        },
    )


def _until(end: float) -> float | str:
    return "end" if end == float("inf") else round(end, 3)


def _rejoin_says(s: Mapping[str, Any]) -> str:
    losses = int(s.get("losses", 0))
    if not losses:
        return "no client lost a connection or a channel; every client joined at the end"
    undecided = f", {count(s.get('undecided'))} undecided" if s.get("undecided") else ""
    return (
        f"{count(s.get('rejoined'))} of {count(losses)} losses rejoined within"
        f" {seconds(s.get('within'))}{undecided}; time to rejoin"
        f" {percentiles(s.get('time_to_rejoin'))}"
    )


def _delivery_says(s: Mapping[str, Any]) -> str:
    if s.get("guarantee") == "at_least_once":
        return _caught_up_says(s)
    expected, lost = int(s.get("expected_deliveries", 0)), int(s.get("lost_outside_faults", 0))
    inside = int(s.get("lost_inside_faults", 0))
    allowed = f"; {count(inside)} lost inside the faults (allowed: at most once)" if inside else ""
    return (
        f"{count(expected - lost)} of {count(expected)} deliveries due outside the faults"
        f" (+{seconds(s.get('settle'))} settle) arrived{allowed}"
    )


def _caught_up_says(s: Mapping[str, Any]) -> str:
    due, on_time = int(s.get("expected_deliveries", 0)), int(s.get("delivered", 0))
    wrong = [
        f"{count(s[key])} {word}"
        for key, word in (("missing", "missing"), ("late", "late"))
        if s.get(key)
    ]
    undecided = f", {count(s.get('undecided'))} undecided" if s.get("undecided") else ""
    return (
        f"{count(on_time)} of {count(due)} deliveries due arrived within"
        f" {seconds(s.get('within'))} ({count(s.get('caught_up'))} caught up after a rejoin,"
        f" {count(s.get('live'))} live{', ' + ', '.join(wrong) if wrong else ''}{undecided});"
        f" time to catch up {percentiles(s.get('time_to_catch_up'))}"
    )


def _delivery_nouns(s: Mapping[str, Any]) -> tuple[str, str]:
    if s.get("guarantee") == "at_least_once":
        return ("gap in the catch-up", "gaps in the catch-up")
    return ("message lost outside the faults", "messages lost outside the faults")


class RejoinOptions(Options):
    within: Duration | None = None


Guarantee = Literal["at_most_once", "at_least_once"]


class DeliveryOptions(Options):
    """`guarantee`: at_most_once (Phoenix's: losses inside fault windows + `settle` allowed) or
    at_least_once (an app that catches up on rejoin: nothing lost, each message by `within`)."""

    guarantee: Annotated[Guarantee, OneOf(("at_most_once", "at_least_once"))] = "at_most_once"
    settle: Duration | None = None
    within: Duration | None = None

    @model_validator(mode="after")
    def _one_deadline(self) -> DeliveryOptions:
        if self.guarantee == "at_least_once" and self.settle is not None:
            raise ValueError(
                "settle applies to at_most_once; under at_least_once `within` is the deadline"
            )
        if self.guarantee == "at_most_once" and self.within is not None:
            raise ValueError("within applies to guarantee: at_least_once (at_most_once: settle)")
        return self


REJOIN = Check(
    "rejoin",
    rejoin,
    RejoinOptions,
    "after every disconnect, each client is joined again to all its topics in time",
    timing=True,
    nouns=("rejoin missed in time", "rejoins missed in time"),
    for_clients=True,
    says=_rejoin_says,
)
DELIVERY = Check(
    "delivery",
    delivery,
    DeliveryOptions,
    "outside fault windows (+ settle) every message reaches every joined client"
    " (at_least_once: every message, by `within` after a rejoin)",
    timing=True,
    nouns=_delivery_nouns,
    says=_delivery_says,
)
