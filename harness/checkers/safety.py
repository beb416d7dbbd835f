"""Safety checks: nothing delivered twice, nothing invented, nothing out of order.

* `at_most_once`: no message id reaches the same client on the same topic twice, across all its
  connections and joins (the source material's point 4: zero or one time, never twice).
* `no_phantom`: every delivered id was published, on the topic it arrived on, and the client had
  asked to join that topic and had not left it (a leave is complete once the server answered).
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

from ..history import Op, Witness
from ._check import Check, Options
from ._facts import Delivery, Facts, Publish, describe
from ._result import CheckResult, vacuous, verdict

NOTHING_DELIVERED = "no message was delivered to any client"


def at_most_once(facts: Facts, options: Mapping[str, Any]) -> CheckResult:
    if not facts.deliveries:
        return vacuous("at_most_once", NOTHING_DELIVERED, {"deliveries": 0})
    witnesses: list[Witness] = []
    for (client, topic, message_id), repeated in facts.repeats.items():
        witnesses.append(
            Witness(
                f"{message_id} delivered {len(repeated)} times to {client} on {topic}",
                repeated[-1].time,
                client,
                topic,
                {
                    "id": message_id,
                    "deliveries": [describe(d.op) for d in repeated],
                    "join_refs": sorted({str(d.op.value.get("join_ref")) for d in repeated}),
                    "faults": facts.windows_near(repeated[0].time, repeated[-1].time, 1.0),
                },
            )
        )
    witnesses.sort(key=lambda w: float(w.evidence["deliveries"][0]["time"]))
    return verdict(
        "at_most_once",
        witnesses,
        {
            "deliveries": len(facts.deliveries),
            "distinct": len(facts.first),
            "duplicated": sum(len(repeated) - 1 for repeated in facts.repeats.values()),
        },
    )


def no_phantom(facts: Facts, options: Mapping[str, Any]) -> CheckResult:
    if not facts.deliveries:
        return vacuous("no_phantom", NOTHING_DELIVERED, {"deliveries": 0})
    witnesses: list[Witness] = []
    publishes, expected = facts.publishes, facts.expected_topics
    nothing: set[str] = set()
    for d in facts.deliveries:
        published = publishes.get(d.id)
        if (
            published is not None
            and published.topic == d.topic
            and d.topic in expected.get(d.client, nothing)
            and d.state != "closed"
        ):
            continue
        message_id, topic = d.id, d.topic
        if published is None:
            problem = f"{message_id} was never published"
        elif published.topic != topic:
            problem = f"{message_id} was published on {published.topic}, delivered on {topic}"
        elif topic not in expected.get(d.client, nothing):
            problem = f"{d.client} received {message_id} on {topic}, which it never joined"
        else:
            problem = f"{d.client} received {message_id} on {topic} after it had left"
        witnesses.append(
            Witness(
                problem,
                d.time,
                d.client,
                topic,
                {"delivery": describe(d.op), "faults": facts.windows_near(d.time, d.time, 1.0)},
            )
        )
    return verdict("no_phantom", witnesses, {"deliveries": len(facts.deliveries)})


def order(facts: Facts, options: Mapping[str, Any]) -> CheckResult:
    # per (client, topic, publisher): the delivered message with the latest invoke so far
    latest: dict[tuple[str, str, str], tuple[Publish, Delivery]] = {}
    witnesses: list[Witness] = []
    judged = 0
    publishes = facts.publishes
    for d in facts.deliveries:
        if d.repeat:
            continue  # a duplicate: at_most_once's finding
        published = publishes.get(d.id)
        if published is None:
            continue  # a phantom: no_phantom's finding
        key = (d.client, d.topic, published.publisher)
        before = latest.get(key)
        if before is None:
            latest[key] = (published, d)
            continue
        earlier = before[0]
        if _before(published, earlier):
            judged += 1
            witnesses.append(_inversion(facts, d.op, published, before[1].op, earlier))
        elif (done := earlier.completed) is not None and done < published.invoked:
            judged += earlier.outcome == "ok"  # `_before(earlier, published)`, inlined
        if published.invoked > earlier.invoked:
            latest[key] = (published, d)
    if not judged:
        return vacuous(
            "order",
            "no client received two messages of one publisher that were ordered (the first "
            "acknowledged before the second was sent)",
            {"deliveries": len(facts.deliveries)},
        )
    return verdict("order", witnesses, {"ordered_pairs_judged": judged})


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


AT_MOST_ONCE = Check(
    "at_most_once",
    at_most_once,
    Options,
    "no message id is delivered twice to one client on one topic",
)
NO_PHANTOM = Check(
    "no_phantom",
    no_phantom,
    Options,
    "nothing delivered that was never published, or on a topic not joined",
)
ORDER = Check(
    "order", order, Options, "messages of one publisher on one topic arrive in publish order"
)
