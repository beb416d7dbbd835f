"""Checkers over a large history: `python bench/checkers.py [--events 1000000]`.

Builds a synthetic but realistic history (clients joined to rooms, publishers, deliveries as
the swarm records them, disconnects and rejoins, fault windows, final reads), writes it the way a
run does, then times in one run:

* baseline: one pass over the ops counting them by `f` (the floor for anything that reads them);
* reading `history.jsonl` back into ops, then every checker (`check_all`, all eight checks);
* the same lean, as the runner and `harness check` do (`runner.check_run`, timed first): the
  file parsed whole, deliveries left as rows (`read_lean`), facts as columns and the checks over
  them (`assess_facts(facts_of(...))`); the results must be identical.

The synthetic deliveries are shaped as the swarm records them: a broadcast's frame carries no
join_ref, so a delivery is a bare 7-element row (until 2026-12-01 each carried a needless
`{"frame_join_ref": "1"}`, which real histories have on ~1% of rows, and parsing cost ~2x).

Prints seconds and ratios against the baseline. Bounded: sizes are fixed by the arguments.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson

from harness._gc import paused_gc
from harness.checkers import DEFAULT_CHECKS, assess_facts, check_all, facts_of
from harness.history import Op, merge
from harness.run.rundir import read_history, read_lean, write_history


def synthesize(events: int, seed: int = 1) -> list[Op]:
    rng = random.Random(seed)
    clients = [f"c{i}" for i in range(1, 201)]
    topics = [f"room:{i}" for i in range(1, 21)]
    members = {c: rng.sample(topics, 2) for c in clients}
    by_topic: dict[str, list[str]] = {t: [] for t in topics}
    for c, ts in members.items():
        for t in ts:
            by_topic[t].append(c)
    ops: list[Op] = [Op(-0.5, "runner", "info", "phase", {"phase": "workload"})]
    now = 0.0
    for c, ts in members.items():
        ops.append(Op(now, c, "ok", "connect", {"url": "ws://n1"}, "n1"))
        for t in ts:
            ops.append(Op(now, c, "invoke", "join", {"topic": t, "join_ref": "1"}, "n1"))
            ops.append(Op(now + 0.01, c, "ok", "join", {"topic": t, "join_ref": "1"}, "n1"))
    ops.append(
        Op(
            50.0,
            "nemesis",
            "info",
            "fault",
            {"id": "f1", "phase": "start", "kind": "kill", "target": "n2"},
        )
    )
    ops.append(
        Op(
            55.0,
            "nemesis",
            "info",
            "fault",
            {"id": "f1", "phase": "stop", "kind": "kill", "target": "n2"},
        )
    )
    seq = 0
    stored: dict[str, list[str]] = {t: [] for t in topics}
    while len(ops) < events:
        seq += 1
        now += 0.005
        topic = topics[seq % len(topics)]
        mid = f"p1-{seq}"
        ops.append(
            Op(now, "p1", "invoke", "publish", {"topic": topic, "id": mid, "seq": seq}, "n1")
        )
        ops.append(
            Op(now + 0.002, "p1", "ok", "publish", {"topic": topic, "id": mid, "seq": seq}, "n1")
        )
        stored[topic].append(mid)
        for c in by_topic[topic]:
            ops.append(
                Op(
                    now + 0.003,
                    c,
                    "ok",
                    "recv",
                    {
                        "topic": topic,
                        "event": "new_msg",
                        "id": mid,
                        "join_ref": "1",
                        "frame_join_ref": None,  # a broadcast frame has no join_ref
                        "state": "joined",
                    },
                    "n1",
                )
            )
        if seq % 5000 == 0:  # a client drops and rejoins now and then
            c = rng.choice(clients)
            ops.append(Op(now + 0.004, c, "info", "disconnect", {"code": 1006}, "n1"))
            ops.append(Op(now + 0.2, c, "ok", "connect", {"url": "ws://n1"}, "n1"))
            for t in members[c]:
                ops.append(Op(now + 0.3, c, "ok", "join", {"topic": t, "join_ref": str(seq)}, "n1"))
    for t in topics:
        ops.append(Op(now + 1, "reader", "ok", "read", {"topic": t, "ids": stored[t]}))
    return merge([ops])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    t0 = time.perf_counter()
    ops = synthesize(args.events)
    print(f"synthesized {len(ops):,} ops in {time.perf_counter() - t0:.1f}s")

    t0 = time.perf_counter()
    counts = Counter(op.f for op in ops)
    baseline = time.perf_counter() - t0
    print(f"baseline: one counting pass: {baseline:.3f}s ({dict(counts)})")

    path = Path(tempfile.mkdtemp(prefix="bench-checkers-")) / "history.jsonl"
    write_history(path, ops)
    del ops
    checks: dict[str, dict[str, object]] = {
        name: {} for name in (*DEFAULT_CHECKS, "latency", "availability")
    }

    with paused_gc(freeze=True):  # the floor of any reader: orjson over the whole file, no model
        t0 = time.perf_counter()
        array = bytearray(b"[")
        array += path.read_bytes().replace(b"\n", b",")
        array[-1] = ord("]")
        floor = len(orjson.loads(array))
        floor_time = time.perf_counter() - t0
    del array
    print(f"floor: orjson over the whole file, {floor:,} values: {floor_time:.2f}s")

    # what the runner and `harness check` do (`runner.check_run`), first, on a fresh heap
    with paused_gc(freeze=True):
        t0 = time.perf_counter()
        lean = read_lean(path)
        read = time.perf_counter() - t0
        t0 = time.perf_counter()
        results = list(assess_facts(facts_of(lean), checks).results)
        checked = time.perf_counter() - t0
    del lean

    t0 = time.perf_counter()
    full = read_history(path, on_workload_clock=True)
    read_ops = time.perf_counter() - t0
    t0 = time.perf_counter()
    by_ops = check_all(full, checks)
    checked_ops = time.perf_counter() - t0
    del full

    assert [r.to_json() for r in results] == [r.to_json() for r in by_ops]
    size = path.stat().st_size / 1e6
    print(
        f"as ops: read {size:.0f} MB {read_ops:.2f}s ({read_ops / baseline:.0f}x baseline), "
        f"all {len(results)} checkers {checked_ops:.2f}s ({checked_ops / baseline:.0f}x)"
    )
    print(
        f"lean (deliveries stay rows, as `harness check` reads): read {read:.2f}s "
        f"({read / baseline:.0f}x baseline), all {len(results)} checkers {checked:.2f}s "
        f"({checked / baseline:.0f}x); read + check {read + checked:.2f}s, "
        f"{(read + checked) / floor_time:.1f}x the orjson floor, "
        f"{(read + checked) / (read_ops + checked_ops):.2f}x the ops path"
    )
    for r in results:
        print(f"  {r.name:<13} {r.validity}")


if __name__ == "__main__":
    main()
