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
join_ref, and ids are run-prefixed (`r1a2b3c-p1-17`), so a delivery is a bare compact row
(`harness.rows`). The floor (orjson over the whole file) and the lean read + check are each
timed `--repeat` times (5) and the medians compared, as the issue asks; the bytes per delivery
row are printed beside them, and the same ops written as rows of strings (the format before the
names table) for comparison.

Prints seconds and ratios against the baseline. Bounded: sizes are fixed by the arguments.
"""

from __future__ import annotations

import argparse
import random
import statistics
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
        mid = f"r1a2b3c-p1-{seq}"
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


def floor_of(path: Path) -> float:
    """The floor of any reader: orjson over the whole file, no model."""
    with paused_gc(freeze=True):
        t0 = time.perf_counter()
        array = bytearray(b"[")
        array += path.read_bytes().replace(b"\n", b",")
        array[-1] = ord("]")
        orjson.loads(array)
        return time.perf_counter() - t0


def row_bytes(path: Path) -> float:
    rows = [line for line in path.read_bytes().splitlines() if line.startswith(b"[")]
    return sum(len(row) + 1 for row in rows) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    t0 = time.perf_counter()
    ops = synthesize(args.events)
    print(f"synthesized {len(ops):,} ops in {time.perf_counter() - t0:.1f}s")

    t0 = time.perf_counter()
    counts = Counter(op.f for op in ops)
    baseline = time.perf_counter() - t0
    print(f"baseline: one counting pass: {baseline:.3f}s ({dict(counts)})")

    with tempfile.TemporaryDirectory(prefix="bench-checkers-") as tmp:
        path = Path(tmp) / "history.jsonl"
        strings = Path(tmp) / "strings.jsonl"
        strings.write_bytes(b"".join(op.to_line() + b"\n" for op in ops))
        write_history(path, ops)
        del ops
        measure(path, strings, baseline, args.repeat)


def measure(path: Path, strings: Path, baseline: float, repeat: int) -> None:
    checks: dict[str, dict[str, object]] = {
        name: {} for name in (*DEFAULT_CHECKS, "latency", "availability")
    }
    print(
        f"history: {path.stat().st_size / 1e6:.0f} MB, {row_bytes(path):.1f} bytes a delivery row;"
        f" as rows of strings {strings.stat().st_size / 1e6:.0f} MB,"
        f" {row_bytes(strings):.1f} bytes a row"
    )
    floors, reads, checked_times = [], [], []
    results = []
    for _ in range(repeat):
        floors.append(floor_of(path))
        # what the runner and `harness check` do (`runner.check_run`), on a fresh heap
        with paused_gc(freeze=True):
            t0 = time.perf_counter()
            lean = read_lean(path)
            reads.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            results = list(assess_facts(facts_of(lean), checks).results)
            checked_times.append(time.perf_counter() - t0)
        del lean
    floor_time = statistics.median(floors)
    read, checked = statistics.median(reads), statistics.median(checked_times)
    total = statistics.median(r + c for r, c in zip(reads, checked_times, strict=True))
    print(f"floor: orjson over the whole file: {floor_time:.2f}s (median of {repeat})")

    t0 = time.perf_counter()
    full = read_history(path, on_workload_clock=True)
    read_ops = time.perf_counter() - t0
    t0 = time.perf_counter()
    by_ops = check_all(full, checks)
    checked_ops = time.perf_counter() - t0
    del full

    assert [r.to_json() for r in results] == [r.to_json() for r in by_ops]
    print(
        f"as ops: read {read_ops:.2f}s ({read_ops / baseline:.0f}x baseline), "
        f"all {len(results)} checkers {checked_ops:.2f}s ({checked_ops / baseline:.0f}x)"
    )
    print(
        f"lean (as `harness check` reads), medians of {repeat}: read {read:.2f}s, all "
        f"{len(results)} checkers {checked:.2f}s; read + check {total:.2f}s, "
        f"{total / floor_time:.1f}x the orjson floor of the same file, "
        f"{total / (read_ops + checked_ops):.2f}x the ops path"
    )
    strings_floor = floor_of(strings)
    with paused_gc(freeze=True):
        t0 = time.perf_counter()
        assess_facts(facts_of(read_lean(strings)), checks)
        strings_total = time.perf_counter() - t0
    print(
        f"rows of strings (the file before the names table), once: floor {strings_floor:.2f}s,"
        f" read + check {strings_total:.2f}s ({strings_total / strings_floor:.1f}x its floor)"
    )
    for r in results:
        print(f"  {r.name:<13} {r.validity}")


if __name__ == "__main__":
    main()
