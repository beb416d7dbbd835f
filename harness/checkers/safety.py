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
from ._facts import Facts, Publish, describe
from ._result import CheckResult, vacuous, verdict

NOTHING_DELIVERED = "no message was delivered to any client"


def at_most_once(facts: Facts, options: Mapping[str, Any]) -> CheckResult:
    if not facts.deliveries:
        return vacuous("at_most_once", NOTHING_DELIVERED, {"deliveries": 0})
    grouped = facts.grouped()
    witnesses: list[Witness] = []
    for (client, topic, message_id), ops in grouped.items():
        if len(ops) > 1:
            witnesses.append(
                Witness(
                    f"{message_id} delivered {len(ops)} times to {client} on {topic}",
                    ops[-1].time,
                    client,
                    topic,
                    {
                        "id": message_id,
                        "deliveries": [describe(op) for op in ops],
                        "join_refs": sorted({str(op.value.get("join_ref")) for op in ops}),
                        "faults": facts.windows_near(ops[0].time, ops[-1].time, 1.0),
                    },
                )
            )
    witnesses.sort(key=lambda w: float(w.evidence["deliveries"][0]["time"]))
    return verdict(
        "at_most_once",
        witnesses,
        {
            "deliveries": len(facts.deliveries),
            "distinct": len(grouped),
            "duplicated": sum(len(ops) - 1 for ops in grouped.values() if len(ops) > 1),
        },
    )


def no_phantom(facts: Facts, options: Mapping[str, Any]) -> CheckResult:
    if not facts.deliveries:
        return vacuous("no_phantom", NOTHING_DELIVERED, {"deliveries": 0})
    witnesses: list[Witness] = []
    for op in facts.deliveries:
        message_id, topic = str(op.value.get("id")), str(op.value.get("topic"))
        published = facts.publishes.get(message_id)
        problem = None
        if published is None:
            problem = f"{message_id} was never published"
        elif published.topic != topic:
            problem = f"{message_id} was published on {published.topic}, delivered on {topic}"
        elif topic not in facts.expected_topics.get(op.process, set()):
            problem = f"{op.process} received {message_id} on {topic}, which it never joined"
        elif op.value.get("state") == "closed":
            problem = f"{op.process} received {message_id} on {topic} after it had left"
        if problem is not None:
            witnesses.append(
                Witness(
                    problem,
                    op.time,
                    op.process,
                    topic,
                    {
                        "delivery": describe(op),
                        "faults": facts.windows_near(op.time, op.time, 1.0),
                    },
                )
            )
    return verdict("no_phantom", witnesses, {"deliveries": len(facts.deliveries)})


def order(facts: Facts, options: Mapping[str, Any]) -> CheckResult:
    # per (client, topic, publisher): the delivered message with the latest invoke so far
    latest: dict[tuple[str, str, str], tuple[Publish, Op]] = {}
    seen: set[tuple[str, str, str]] = set()
    witnesses: list[Witness] = []
    judged = 0
    for op in facts.deliveries:
        message_id, topic = str(op.value.get("id")), str(op.value.get("topic"))
        if (op.process, topic, message_id) in seen:
            continue  # a duplicate: at_most_once's finding
        seen.add((op.process, topic, message_id))
        published = facts.publishes.get(message_id)
        if published is None:
            continue  # a phantom: no_phantom's finding
        key = (op.process, topic, published.publisher)
        before = latest.get(key)
        if before is not None:
            earlier, earlier_op = before
            if _before(published, earlier):
                judged += 1
                witnesses.append(_inversion(facts, op, published, earlier_op, earlier))
            elif _before(earlier, published):
                judged += 1
        if before is None or published.invoked > before[0].invoked:
            latest[key] = (published, op)
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
