"""Safety checks: nothing delivered twice, nothing invented, nothing out of order.

* `at_most_once`: no message id reaches the same client on the same topic twice, across all its
  connections and joins (the source material's point 4: zero or one time, never twice).
* `no_phantom`: every delivered id was published, on the topic it arrived on, and the client had
  asked to join that topic and had not left it (a leave is complete once the server answered).
* `order`: per (client, topic, publisher), sequence numbers arrive increasing. Gaps are losses
  (the delivery check's business); an inversion is an ordering violation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..history import Witness
from ._check import Check, Options
from ._facts import Facts, describe
from ._result import CheckResult, verdict


def at_most_once(facts: Facts, options: Mapping[str, Any]) -> CheckResult:
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
    last: dict[tuple[str, str, str], tuple[int, Any]] = {}
    witnesses: list[Witness] = []
    checked = 0
    for op in facts.deliveries:
        published = facts.publishes.get(str(op.value.get("id")))
        if published is None or published.seq is None:
            continue
        key = (op.process, str(op.value.get("topic")), published.publisher)
        checked += 1
        previous = last.get(key)
        if previous is not None and published.seq < previous[0]:
            witnesses.append(
                Witness(
                    f"{op.process} got {published.publisher}'s seq {published.seq} on "
                    f"{key[1]} after seq {previous[0]}",
                    op.time,
                    op.process,
                    key[1],
                    {
                        "publisher": published.publisher,
                        "earlier": describe(previous[1]),
                        "later": describe(op),
                        "faults": facts.windows_near(previous[1].time, op.time, 1.0),
                    },
                )
            )
        if previous is None or published.seq > previous[0]:
            last[key] = (published.seq, op)
    return verdict("order", witnesses, {"deliveries_checked": checked})


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
