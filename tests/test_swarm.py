"""The swarm against real nodes: joins, publishes, receives, survives kills, records it all."""

from __future__ import annotations

import itertools
from collections import Counter

import trio

from harness._clock import RunClock
from harness.grammar.behaviour import Endpoint
from harness.history import Op
from harness.run.rundir import HistoryWriter, read_history
from harness.swarm import InProcessSwarm
from tests.support.plans import swarm_plan
from tests.support.waiting import wait_until


class ListRecorder:
    def __init__(self) -> None:
        self.ops: list[Op] = []

    def record(self, op: Op) -> None:
        self.ops.append(op)

    def of(self, f: str, type_: str | None = None, process: str | None = None) -> list[Op]:
        return [
            o
            for o in self.ops
            if o.f == f
            and (type_ is None or o.type == type_)
            and (process is None or o.process == process)
        ]


def test_plan_is_seeded_and_respects_placement():
    nodes = [Endpoint("n1", "ws://x"), Endpoint("n2", "ws://y"), Endpoint("n3", "ws://z")]
    kwargs = {"clients": 9, "topics": ("room:1", "room:2", "room:3"), "topics_per_client": 2}
    plan = swarm_plan(nodes, **kwargs, publishers=2, seed=7)
    assert plan == swarm_plan(nodes, **kwargs, publishers=2, seed=7)
    assert plan.clients != swarm_plan(nodes, **kwargs, publishers=2, seed=8).clients
    clients = [p for p in plan.clients if p.role == "client"]
    assert [p.first_node for p in clients] == [0, 1, 2] * 3
    assert all(len(p.topics) == 2 for p in clients)
    assert [p.id for p in plan.clients if p.role == "publisher"] == ["p1", "p2"]


async def test_swarm_joins_publishes_and_every_client_receives_each_message_once(node, nursery):
    nodes = [Endpoint("n1", f"ws://127.0.0.1:{node.port}/socket")]
    plan = swarm_plan(
        nodes, clients=20, topics=("room:1", "room:2"), publishers=2, rate=200, seed=1
    )
    recorder = ListRecorder()
    swarm = InProcessSwarm(plan, recorder, RunClock())
    await nursery.start(swarm.run)
    await swarm.wait_joined(timeout=10)
    sent = await swarm.publish_some(duration=0.5)
    assert sent > 0
    await wait_until(lambda: swarm.stats().acknowledged >= sent)
    published = {o.value["id"]: o.value["topic"] for o in recorder.of("publish", "ok")}
    assert len(published) == sent
    # every subscriber of a topic received each of its messages exactly once
    expected = Counter()
    for client in swarm.clients.values():
        for topic in client.topics:
            expected.update({(client.id, mid) for mid, t in published.items() if t == topic})
    await wait_until(
        lambda: (
            not (
                sum(1 for o in recorder.of("recv") if o.value["event"] == "new_msg")
                < sum(expected.values())
            )
        )
    )
    got = Counter(
        (o.process, o.value["id"]) for o in recorder.of("recv") if o.value["event"] == "new_msg"
    )
    assert got == expected
    # every publish is recorded with its publisher and sequence number; deliveries name its id
    published = {o.value["id"]: o.value for o in recorder.of("publish") if o.type == "invoke"}
    assert {v["publisher"] for v in published.values()} == {"p1", "p2"}
    assert all(isinstance(v["seq"], int) for v in published.values())
    for o in recorder.of("recv"):
        if o.value["event"] == "new_msg":
            assert o.value["id"] in published


async def test_clients_reconnect_and_rejoin_after_a_kill_and_the_history_shows_it(
    local_cluster, tmp_path, nursery
):
    nodes = await local_cluster(("n1",))
    n1 = nodes["n1"]
    plan = swarm_plan([Endpoint("n1", n1.url)], clients=5, publishers=0, seed=3)
    writer = HistoryWriter(tmp_path / "history.jsonl")
    swarm = InProcessSwarm(plan, writer, RunClock())
    async with trio.open_nursery() as nursery:
        await nursery.start(swarm.run)
        await swarm.wait_joined(timeout=10)
        await n1.kill()
        await n1.wait_exit()
        await wait_until(lambda: not swarm.stats().connected)
        await n1.start()
        await swarm.wait_joined(timeout=10)
        nursery.cancel_scope.cancel()
    writer.close()
    ops = read_history(tmp_path / "history.jsonl")
    assert [o.index for o in ops] == list(range(len(ops)))
    for cid in ("c1", "c2", "c3", "c4", "c5"):
        mine = [o for o in ops if o.process == cid]
        kinds = [
            (o.f, o.type)
            for o in mine
            if o.f in {"join", "disconnect", "channel_error"} and o.type != "invoke"
        ]
        first_ok = kinds.index(("join", "ok"))
        disconnect = kinds.index(("disconnect", "info"))
        errored = kinds.index(("channel_error", "info"))
        rejoined = len(kinds) - 1 - kinds[::-1].index(("join", "ok"))
        assert first_ok < disconnect < rejoined
        assert first_ok < errored < rejoined
        join_refs = [o.value["join_ref"] for o in mine if o.f == "join" and o.type == "ok"]
        assert len(set(join_refs)) == len(join_refs) >= 2  # a new join_ref on every rejoin


async def test_a_client_that_forgets_to_rejoin_ends_up_connected_but_deaf(local_cluster, nursery):
    nodes = await local_cluster(("n1",))
    n1 = nodes["n1"]
    plan = swarm_plan([Endpoint("n1", n1.url)], clients=2, publishers=0, seed=3, rejoin=False)
    recorder = ListRecorder()
    swarm = InProcessSwarm(plan, recorder, RunClock())
    await nursery.start(swarm.run)
    await swarm.wait_joined(timeout=10)
    await n1.restart()
    await wait_until(lambda: swarm.stats().connected >= 2)
    assert swarm.stats().joined == 0
    assert len(recorder.of("join", "ok")) == 2  # only the first joins


async def test_a_large_swarm_freezes_what_lives_once_joined(node, nursery, monkeypatch):
    """A swarm of `FREEZE_AT` clients or more freezes its objects once every client joined (the
    collector's full passes over them stood a 10,000-client worker still for up to a second);
    a smaller one does not. `FREEZE_AT` lowered to this test's swarm."""
    import gc

    from harness.swarm import _swarm

    nodes = [Endpoint("n1", f"ws://127.0.0.1:{node.port}/socket")]
    gc.unfreeze()
    small = InProcessSwarm(swarm_plan(nodes, clients=3, publishers=0), ListRecorder(), RunClock())
    await small.freeze_when_joined()  # returns at once: below the bar
    assert gc.get_freeze_count() == 0
    monkeypatch.setattr(_swarm, "FREEZE_AT", 3)
    swarm = InProcessSwarm(swarm_plan(nodes, clients=3, publishers=0), ListRecorder(), RunClock())
    await nursery.start(swarm.run)
    try:
        with trio.fail_after(10):
            await swarm.freeze_when_joined()
        assert swarm.stats().joined == 3
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


async def test_worker_processes_share_one_clock_and_merge_into_one_history(node, tmp_path, nursery):
    from harness.run.rundir import merge_parts, read_history
    from harness.swarm import WorkerSwarm

    nodes = [Endpoint("n1", f"ws://127.0.0.1:{node.port}/socket")]
    plan = swarm_plan(
        nodes, clients=12, topics=("room:1", "room:2"), publishers=2, rate=100, seed=5
    )
    clock = RunClock()
    swarm = WorkerSwarm(plan, clock, tmp_path, workers=3)
    await swarm.start(nursery)
    await swarm.wait_joined(timeout=20)
    await swarm.publish(duration=0.5)
    await wait_until(lambda: swarm.stats().acknowledged >= 40, timeout=20)
    assert await swarm.stop() == []
    assert {w.process.returncode for w in swarm.workers} == {0}
    assert all(w.acknowledged.is_set() for w in swarm.workers)  # each said it was stopping
    merge_parts(swarm.parts, tmp_path / "history.jsonl")
    ops = read_history(tmp_path / "history.jsonl")
    publishes = [o for o in ops if o.f == "publish" and o.type == "invoke"]
    assert len(publishes) <= 0.5 * 100 + 2  # the total rate, not the rate per worker
    assert ops == read_history(tmp_path / "history.jsonl")
    assert [o.index for o in ops] == list(range(len(ops)))
    assert all(a.time <= b.time for a, b in itertools.pairwise(ops))
    processes = {o.process for o in ops if o.f != "load"}
    assert processes == {f"c{i}" for i in range(1, 13)} | {"p1", "p2"}
    # each worker watches its own load (`harness.infra.gauge`), once a second while it runs
    assert {o.process for o in ops if o.f == "load"} <= {"swarm0", "swarm1", "swarm2"}
    # a message published in one worker is received by clients in the others
    published = {o.value["id"] for o in ops if o.f == "publish" and o.type == "ok"}
    receivers = {o.process for o in ops if o.f == "recv" and o.value.get("id") in published}
    assert len(receivers) == 14  # every client and both publishers


async def test_a_worker_slow_to_close_its_clients_is_noted_and_one_that_never_answers_is_lost(
    tmp_path,
):
    """After the run, a worker that said it was stopping (its part whole up to then) but is
    still closing its clients at the deadline is stopped with a notice, not a lost run; one
    that never answers the stop is lost (its part may end early), and so is one that ends
    without a word (its host lost meanwhile). Real processes that speak the worker's stop
    protocol, with short deadlines."""
    import subprocess
    import sys

    from harness.infra.process import open_process_group
    from harness.swarm import WorkerSwarm
    from harness.swarm._processes import _Worker

    answers = "import sys, time\nsys.stdin.readline()\n{say}time.sleep(600)\n"
    said = "print('!{\"stopping\": true}', flush=True)\n"
    recorder = ListRecorder()
    plan = swarm_plan([Endpoint("n1", "ws://127.0.0.1:9/socket")], clients=3, publishers=0)
    swarm = WorkerSwarm(plan, RunClock(), tmp_path, workers=3, recorder=recorder)
    async with trio.open_nursery() as nursery:
        for k, say in enumerate((said, "", "sys.exit(0)\n")):
            process = await open_process_group(
                [sys.executable, "-c", answers.format(say=say)],
                subprocess.PIPE,
                stdin=subprocess.PIPE,
            )
            worker = _Worker(
                k, process, tmp_path / f"history.{k}.jsonl", "here", None, streams=False
            )
            swarm.workers.append(worker)
            nursery.start_soon(worker.read, swarm.clock)
        lost = ["swarm worker 1 here", "swarm worker 2 here"]
        assert await swarm.stop(answer=2, timeout=1) == lost
    assert [w.process.returncode for w in swarm.workers] == [-9, -9, 0]
    notices = [op.value["notice"] for op in recorder.of("setup")]
    assert len(notices) == 1
    assert notices[0].startswith("swarm worker 0 here took more than 1 s to close its clients")


async def test_on_reconnect_next_node_moves_clients_to_the_next_node(local_cluster, nursery):
    nodes = await local_cluster(("n1", "n2"))
    endpoints = [Endpoint(n.name, n.url) for n in nodes.values()]
    plan = swarm_plan(endpoints, clients=2, publishers=0, seed=3, on_reconnect="next_node")
    recorder = ListRecorder()
    swarm = InProcessSwarm(plan, recorder, RunClock())
    await nursery.start(swarm.run)
    await swarm.wait_joined(timeout=10)
    await nodes["n1"].kill()  # c1 was on n1: it must come back on n2, and stay there
    await wait_until(
        lambda: any(o.process == "c1" and o.node == "n2" for o in recorder.of("join", "ok"))
    )
    assert [o.node for o in recorder.of("connect", "ok", "c1")] == ["n1", "n2"]
    assert [o.node for o in recorder.of("connect", "ok", "c2")] == ["n2"]  # untouched


async def test_a_leave_is_recorded_as_invoke_then_ok(node, nursery):
    plan = swarm_plan(
        [Endpoint("n1", f"ws://127.0.0.1:{node.port}/socket")], clients=1, publishers=0, seed=3
    )
    recorder = ListRecorder()
    swarm = InProcessSwarm(plan, recorder, RunClock())
    await nursery.start(swarm.run)
    await swarm.wait_joined(timeout=10)
    nursery.start_soon(swarm.clients["c1"].leave_and_rejoin, 0.2)
    await wait_until(lambda: len(recorder.of("join", "ok")) >= 2)
    kinds = [
        (o.f, o.type)
        for o in recorder.ops
        if o.process == "c1" and o.f in ("leave", "join", "channel_close")
    ]
    assert kinds[-5:] == [
        ("leave", "invoke"),
        ("leave", "ok"),
        ("channel_close", "ok"),
        ("join", "invoke"),
        ("join", "ok"),
    ]
