"""The column checks (`checkers._deliveries`: sorts, gathers and scans in numpy) against an
oracle: the per-delivery walks they replaced, written plainly here, over 300 seeded random
histories with duplicates, reorders, losses, phantoms, unjoined topics, leaves and rejoins,
publishes of every outcome and fault windows. Every verdict, summary and witness must agree."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import pytest

from harness.checkers import CHECKERS, facts_of
from harness.checkers._facts import Facts, Publish
from harness.history import Op, merge
from harness.run.rundir import read_lean, write_history

SETTLE = 3.0


def random_history(seed: int) -> list[Op]:
    rng = random.Random(seed)
    ops: list[Op] = []

    def op(t: float, process: str, type_: str, f: str, node: str | None = "n1", **v: Any) -> None:
        ops.append(Op(t, process, type_, f, v, node))  # type: ignore[arg-type]

    clients, topics, publishers = ["c1", "c2", "c3", "c4"], ["room:1", "room:2"], ["p1", "p2"]
    joined = {c: [t for t in topics if rng.random() < 0.7] or [topics[0]] for c in clients}
    for c in clients + publishers:
        op(0.0, c, "ok", "connect", url="ws://n1")
        for t in joined.get(c, topics):
            op(0.0, c, "invoke", "join", topic=t, join_ref="1")
            op(0.01, c, "ok", "join", topic=t, join_ref="1")
    for k in range(rng.randint(0, 2)):
        start = rng.uniform(0.5, 8.0)
        for phase, at in (("start", start), ("stop", start + rng.uniform(0.1, 2.0))):
            op(
                at,
                "nemesis",
                "info",
                "fault",
                None,
                id=f"f{k}",
                phase=phase,
                kind="kill",
                target="n2",
            )
    for c in clients:  # now and then a client drops and rejoins, or leaves a topic
        if rng.random() < 0.3:
            at = rng.uniform(1.0, 9.0)
            op(at, c, "info", "disconnect", code=1006, reason="", by_client=False)
            op(at + 0.3, c, "ok", "connect", url="ws://n1")
            for t in joined[c]:
                op(at + 0.4, c, "ok", "join", topic=t, join_ref="2")
        if rng.random() < 0.2:
            t = joined[c][0]
            op(rng.uniform(1.0, 9.0), c, "ok", "channel_close", topic=t, join_ref="1", reason={})
    for p in publishers:
        now = rng.uniform(0.1, 0.5)
        for seq in range(1, rng.randint(3, 16)):
            topic, mid = rng.choice(topics), f"{p}-{seq}"
            value = {"topic": topic, "id": mid, "seq": seq}
            op(now, p, "invoke", "publish", **value)
            took = rng.choice((0.001, 0.01, 0.2, 0.6))
            outcome = rng.choices(("ok", "info", "fail", "invoke"), (8, 1, 1, 1))[0]
            if outcome != "invoke":
                op(now + took, p, outcome, "publish", **value)
            for c in clients:
                if topic not in joined[c] and rng.random() > 0.05:
                    continue  # now and then a delivery on a topic the client never joined
                if rng.random() < 0.1:
                    continue  # lost
                on = topic if rng.random() > 0.03 else rng.choice(topics)  # the wrong topic
                at = now + rng.uniform(0.0, 0.8)  # reorders come from these delays
                for _ in range(2 if rng.random() < 0.05 else 1):  # now and then twice
                    op(at, c, "ok", "recv", topic=on, event="new_msg", id=mid, join_ref="1")
                    at += rng.uniform(0.0, 0.3)
            now += rng.uniform(0.0, 0.7)
    if rng.random() < 0.3:
        op(5.0, "c1", "ok", "recv", topic="room:1", event="new_msg", id="ghost", join_ref="1")
    return merge([ops])


def deliveries(history: list[Op]) -> list[tuple[float, str, str, str, Op]]:
    return [
        (op.time, op.process, str(op.value["topic"]), str(op.value["id"]), op)
        for op in history
        if op.f == "recv" and op.value.get("event") == "new_msg"
    ]


def oracle_at_most_once(history: list[Op]) -> list[tuple[str, float]]:
    seen: dict[tuple[str, str, str], list[float]] = {}
    for time, client, topic, mid, _ in deliveries(history):
        seen.setdefault((client, topic, mid), []).append(time)
    found = [
        (f"{m} delivered {len(ts)} times to {c} on {t}", ts[-1], ts[0])
        for (c, t, m), ts in seen.items()
        if len(ts) > 1
    ]
    found.sort(key=lambda w: w[2])
    return [(problem, time) for problem, time, _ in found]


def oracle_no_phantom(history: list[Op], facts: Facts) -> list[tuple[str, float]]:
    out = []
    for time, client, topic, mid, _ in deliveries(history):
        p = facts.publishes.get(mid)
        if p is None:
            out.append((f"{mid} was never published", time))
        elif p.topic != topic:
            out.append((f"{mid} was published on {p.topic}, delivered on {topic}", time))
        elif topic not in facts.expected_topics.get(client, set()):
            out.append((f"{client} received {mid} on {topic}, which it never joined", time))
    return out


def before(a: Publish, b: Publish) -> bool:
    return a.outcome == "ok" and a.completed is not None and a.completed < b.invoked


def oracle_order(history: list[Op], facts: Facts) -> tuple[int, list[tuple[str, float]]]:
    latest: dict[tuple[str, str, str], Publish] = {}
    seen: set[tuple[str, str, str]] = set()
    judged, out = 0, []
    for time, client, topic, mid, _ in deliveries(history):
        if (client, topic, mid) in seen:
            continue
        seen.add((client, topic, mid))
        p = facts.publishes.get(mid)
        if p is None:
            continue
        key = (client, topic, p.publisher)
        earlier = latest.get(key)
        if earlier is None:
            latest[key] = p
            continue
        if before(p, earlier):
            judged += 1
            out.append(
                (f"{client} got {p.publisher}'s {p.id} on {p.topic} after {earlier.id}", time)
            )
        elif before(earlier, p):
            judged += 1
        if p.invoked > earlier.invoked:
            latest[key] = p
    return judged, out


def oracle_delivery(history: list[Op], facts: Facts) -> tuple[dict[str, int], list[str]]:
    received = {(c, t, m) for _, c, t, m, _ in deliveries(history)}
    by_topic = defaultdict(list)
    for (_, topic), memberships in facts.memberships.items():
        by_topic[topic].extend(memberships)
    counts = dict.fromkeys(("expected", "delivered", "lost_in"), 0)
    lost: list[tuple[float, str]] = []
    for p in facts.publishes.values():
        if p.outcome != "ok" or p.completed is None:
            continue
        faulted = any(w.overlaps(p.invoked, p.completed, SETTLE) for w in facts.windows)
        for m in by_topic.get(p.topic, ()):
            if not (m.start <= p.invoked and m.end >= p.completed):
                continue
            if (m.client, p.topic, p.id) in received:
                counts["delivered"] += 1
                counts["expected"] += not faulted
            elif faulted:
                counts["lost_in"] += 1
            else:
                counts["expected"] += 1
                lost.append((p.invoked, f"{m.client} never received {p.id} on {p.topic}"))
    lost.sort(key=lambda x: x[0])
    return counts, [problem for _, problem in lost]


def oracle_latency(history: list[Op], facts: Facts) -> dict[str, Any]:
    seen: set[tuple[str, str, str]] = set()
    values = []
    for time, client, topic, mid, _ in deliveries(history):
        if (client, topic, mid) in seen:
            continue
        seen.add((client, topic, mid))
        p = facts.publishes.get(mid)
        if p is not None:
            values.append(time - p.invoked)
    values.sort()

    def pick(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 3)

    return {"p50": pick(0.5), "p99": pick(0.99), "max": round(values[-1], 3)} if values else {}


def problems(result: Any) -> list[tuple[str, float]]:
    return [(w.problem, round(w.time, 6)) for w in result.witnesses]


def rounded(found: list[tuple[str, float]]) -> list[tuple[str, float]]:
    return [(problem, round(time, 6)) for problem, time in found]


@pytest.mark.parametrize("seed", range(300))
def test_the_column_checks_agree_with_a_walk_over_each_delivery(seed, monkeypatch, tmp_path):
    if seed % 3 == 0:  # as when the codes' product would overflow: (client, topic) made dense
        monkeypatch.setattr("harness.checkers._deliveries.KEY_LIMIT", 0)
    history = random_history(seed)
    facts = facts_of(history)
    if seed % 3 == 1:  # read from the file as the runner does: compact rows as code columns
        path = tmp_path / "history.jsonl"
        write_history(path, history)
        lean = read_lean(path)
        assert lean.names is not None
        facts = facts_of(lean)
    assert problems(CHECKERS["at_most_once"](facts, {})) == rounded(oracle_at_most_once(history))

    phantoms = [
        p for p in problems(CHECKERS["no_phantom"](facts, {})) if "after it had left" not in p[0]
    ]
    assert phantoms == rounded(oracle_no_phantom(history, facts))

    order = CHECKERS["order"](facts, {})
    judged, inversions = oracle_order(history, facts)
    assert order.summary.get("ordered_pairs_judged", 0) == judged
    assert [(p.split(", though")[0], t) for p, t in problems(order)] == rounded(inversions)

    delivery = CHECKERS["delivery"](facts, {})
    counts, lost = oracle_delivery(history, facts)
    assert delivery.summary["expected_deliveries"] == counts["expected"]
    assert delivery.summary["delivered"] == counts["delivered"]
    assert delivery.summary["lost_inside_faults"] == counts["lost_in"]
    assert [w.problem for w in delivery.witnesses] == lost

    latency = CHECKERS["latency"](facts, {"scope": "all"})
    assert latency.summary["all"] == oracle_latency(history, facts)


def test_the_random_histories_hold_every_anomaly():
    """The oracle test is only worth its histories: across the seeds, each kind occurs."""
    kinds: dict[str, int] = defaultdict(int)
    for seed in range(300):
        history = random_history(seed)
        facts = facts_of(history)
        kinds["duplicate"] += bool(oracle_at_most_once(history))
        kinds["phantom"] += bool(oracle_no_phantom(history, facts))
        judged, inversions = oracle_order(history, facts)
        kinds["inversion"] += bool(inversions)
        kinds["judged"] += bool(judged)
        kinds["lost"] += bool(oracle_delivery(history, facts)[1])
    assert all(kinds[k] >= 20 for k in ("duplicate", "phantom", "inversion", "judged", "lost")), (
        kinds
    )
