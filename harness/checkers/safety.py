"""Safety checks: nothing delivered twice, nothing invented, nothing out of order.

* `at_most_once`: no message id reaches the same client on the same topic twice, across all its
  connections and joins (the source material's point 4: zero or one time, never twice).
* `no_phantom`: every delivered id was published, on the topic it arrived on, and the client had
  asked to join that topic and had not left it (a leave is complete once the server answered).
  Deliveries of ids the run never made, beyond the first 100 of a client, are only counted by
  the swarm (`recv_foreign`): they count as violations, without a witness each.
* `order`: happens-before, as Phoenix promises it (per channel process): for one publisher on
  one topic, message A is ordered before B only if A was acknowledged before B was invoked. A
  client that receives B and later A has them out of order. A publish whose outcome is unknown
  (timed out, its socket abandoned) or that was still in flight when the next was sent has no
  order relative to it. Only each message's first delivery counts: a duplicate is
  `at_most_once`'s finding, not also an order violation. Gaps are losses (`delivery`'s business).

Each is vacuous (unknown, never valid) when nothing was delivered, or, for `order`, when no
delivered pair was ordered by happens-before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..history import Op
from ..witness import Witness
from ._check import Check, Options, count
from ._facts import Facts, Publish, describe
from ._result import KEPT, CheckResult, vacuous, verdict

NOTHING_DELIVERED = "no message was delivered to any client"


def at_most_once(facts: Facts, options: Options) -> CheckResult:
    deliveries = facts.deliveries
    if not len(deliveries):
        return vacuous("at_most_once", NOTHING_DELIVERED, {"deliveries": 0})
    witnesses: list[Witness] = []
    times = deliveries.times
    groups = deliveries.repeats()
    groups.sort(key=lambda g: float(times[g[0]]))  # by the first delivery of each
    for repeated in groups[:KEPT]:
        at = repeated[0]
        client, topic = deliveries.clients[at], deliveries.topics[at]
        message_id = deliveries.ids[at]
        ops = [deliveries.op(i) for i in repeated]
        witnesses.append(
            Witness(
                f"{message_id} delivered {len(repeated)} times to {client} on {topic}",
                float(times[repeated[-1]]),
                client,
                topic,
                {
                    "id": message_id,
                    "deliveries": [describe(op) for op in ops],
                    "join_refs": sorted({str(op.value.get("join_ref")) for op in ops}),
                    "faults": facts.windows_near(
                        float(times[repeated[0]]), float(times[repeated[-1]]), 1.0
                    ),
                },
            )
        )
    return verdict(
        "at_most_once",
        witnesses,
        {
            "deliveries": len(deliveries),
            "distinct": len(deliveries.first),
            "duplicated": len(deliveries) - len(deliveries.first),
        },
        len(groups),
    )


def no_phantom(facts: Facts, options: Options) -> CheckResult:
    deliveries = facts.deliveries
    counted = sum(facts.foreign.values())  # phantoms of a flood, counted and not recorded
    if not len(deliveries) and not counted:
        return vacuous("no_phantom", NOTHING_DELIVERED, {"deliveries": 0})
    message, topic = deliveries.message, deliveries.topic
    published = message < deliveries.published
    wrong_topic = published & (facts.messages.topic[np.where(published, message, 0)] != topic)
    pairs = len(facts.topics)
    asked = [
        c * pairs + t
        for client, topics in facts.expected_topics.items()
        if (c := facts.clients.get(client)) is not None
        for t in map(facts.topics.get, topics)
        if t is not None
    ]
    joined = np.isin(deliveries.client * pairs + topic, np.array(asked, np.int64))
    phantom = ~published | wrong_topic | ~joined | deliveries.closed
    witnesses: list[Witness] = []
    found = np.flatnonzero(phantom)
    for i in found[:KEPT].tolist():
        op = deliveries.op(i)
        message_id, on = deliveries.ids[i], deliveries.topics[i]
        client, time = deliveries.clients[i], float(deliveries.times[i])
        if not published[i]:
            problem = f"{message_id} was never published"
        elif wrong_topic[i]:
            problem = (
                f"{message_id} was published on {facts.publishes[message_id].topic}, "
                f"delivered on {on}"
            )
        elif not joined[i]:
            problem = f"{client} received {message_id} on {on}, which it never joined"
        else:
            problem = f"{client} received {message_id} on {on} after it had left"
        witnesses.append(
            Witness(
                problem,
                time,
                client,
                on,
                {"delivery": describe(op), "faults": facts.windows_near(time, time, 1.0)},
            )
        )
    summary = {"deliveries": len(deliveries) + counted}
    if counted:
        summary["foreign_counted"] = counted
    return verdict("no_phantom", witnesses, summary, len(found) + counted)


def order(facts: Facts, options: Options) -> CheckResult:
    """Per stream (client, topic, publisher), in delivery order: the message delivered so far
    with the latest invoke (`latest`; the first of equals), and each next first delivery judged
    against it. A scan over sorted columns (`_deliveries`), the same as walking the deliveries."""
    deliveries, messages = facts.deliveries, facts.messages
    chosen = deliveries.first[deliveries.message[deliveries.first] < deliveries.published]
    message = deliveries.message[chosen]
    stream = deliveries.pair[chosen] * max(len(facts.clients), 1) + messages.publisher[message]
    by_stream = np.argsort(stream, kind="stable")
    chosen, message, stream = chosen[by_stream], message[by_stream], stream[by_stream]
    invoked, acknowledged = messages.invoked[message], messages.acknowledged[message]
    n = len(chosen)
    begins = np.ones(n, np.bool_)
    begins[1:] = stream[1:] != stream[:-1]
    # running maximum of the invoke time within each stream: ranks offset by stream
    _, rank = np.unique(invoked, return_inverse=True)
    segment = np.cumsum(begins) - 1
    ranked = segment * (n + 1) + rank.reshape(-1)
    peak = np.maximum.accumulate(ranked)
    raised = begins.copy()
    raised[1:] |= ranked[1:] > peak[:-1]
    latest = np.maximum.accumulate(np.where(raised, np.arange(n), 0))  # its index so far
    judged_at = np.flatnonzero(~begins)
    earlier = latest[judged_at - 1]
    inverted = acknowledged[judged_at] < invoked[earlier]
    judged = int(inverted.sum() + (~inverted & (acknowledged[earlier] < invoked[judged_at])).sum())
    witnesses: list[Witness] = []
    found = sorted(
        zip(chosen[judged_at[inverted]].tolist(), chosen[earlier[inverted]].tolist(), strict=True)
    )
    publishes = list(facts.publishes.values())  # by message code
    for at, before in found[:KEPT]:
        published = publishes[deliveries.message[at]]
        first = publishes[deliveries.message[before]]
        op, earlier_op = deliveries.op(at), deliveries.op(before)
        witnesses.append(_inversion(facts, op, published, earlier_op, first))
    if not judged:
        return vacuous(
            "order",
            "no client received two messages of one publisher that were ordered (the first "
            "acknowledged before the second was sent)",
            {"deliveries": len(deliveries)},
        )
    return verdict("order", witnesses, {"ordered_pairs_judged": judged}, len(found))


def _before(first: Publish, second: Publish) -> bool:
    """Happens-before: `first` was acknowledged before `second` was sent."""
    done = first.completed
    return first.outcome == "ok" and done is not None and done < second.invoked


def _inversion(
    facts: Facts, op: Op, published: Publish, earlier_op: Op, earlier: Publish
) -> Witness:
    """`published` was acknowledged before `earlier` was sent, yet arrived after it."""

    def publish(p: Publish) -> dict[str, Any]:
        return {
            "id": p.id,
            "seq": p.seq,
            "invoked": round(p.invoked, 3),
            "acknowledged": None if p.completed is None else round(p.completed, 3),
            "outcome": p.outcome,
        }

    return Witness(
        f"{op.process} got {published.publisher}'s {published.id} on {published.topic} after "
        f"{earlier.id}, though {published.id} was acknowledged before {earlier.id} was sent",
        op.time,
        op.process,
        published.topic,
        {
            "publisher": published.publisher,
            "first_published": publish(published),
            "then_published": publish(earlier),
            "received_first": describe(earlier_op),
            "received_then": describe(op),
            "faults": facts.windows_near(published.invoked, op.time, 1.0),
        },
    )


def _at_most_once_says(s: Mapping[str, Any]) -> str:
    said = f"{count(s.get('deliveries'))} deliveries, {count(s.get('duplicated'))} of them again"
    pairs = s.get("violations")
    if pairs and pairs != s.get("duplicated"):  # some reached a client three times or more
        said += f" ({count(pairs)} messages, each counted once per client it reached again)"
    return said


def _no_phantom_says(s: Mapping[str, Any]) -> str:
    counted = f" ({count(s['foreign_counted'])} only counted)" if s.get("foreign_counted") else ""
    return f"{count(s.get('deliveries'))} deliveries, {count(s.get('violations'))} phantom{counted}"


def _order_says(s: Mapping[str, Any]) -> str:
    judged, wrong = s.get("ordered_pairs_judged"), s.get("violations", 0)
    return f"{count(judged)} ordered pairs judged, {count(wrong)} out of order"


AT_MOST_ONCE = Check(
    "at_most_once",
    at_most_once,
    Options,
    "no message id is delivered twice to one client on one topic",
    nouns=("message delivered again", "messages delivered again"),
    says=_at_most_once_says,
)
NO_PHANTOM = Check(
    "no_phantom",
    no_phantom,
    Options,
    "nothing delivered that was never published, or on a topic not joined",
    nouns=("phantom delivery", "phantom deliveries"),
    says=_no_phantom_says,
)
ORDER = Check(
    "order",
    order,
    Options,
    "messages of one publisher on one topic arrive in publish order",
    nouns=("delivery out of publish order", "deliveries out of publish order"),
    says=_order_says,
)
