"""Every fault kind on real connections: a real toxiproxy-server, three node processes behind
proxies, nine clients (c1, c4, c7 on n1; c2, c5, c8 on n2; c3, c6, c9 on n3) and two publishers
(p1 on n1, p2 on n2). Each test applies one fault through the nemesis and asserts its effect on
the recorded history, as orderings and membership, not wall-clock numbers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from harness.cluster import wait_links
from harness.faults import KINDS, expand_random
from harness.history import Op, fault_edge
from harness.run.rundir import HistoryWriter, RunDir, read_history
from harness.run.runner import Run, RunOptions, open_run
from harness.scenario import parse_scenario, resolve, resolved_yaml
from tests.support.waiting import wait_until

SCENARIO = """
name: faults
seed: 3
duration: 60s
cluster: {nodes: 3}
clients:
  count: 9
  topics: ["room:1"]
  timings:
    reconnect_after: [10ms, 50ms, 100ms, 200ms]
    rejoin_after: [100ms, 200ms]
    heartbeat_interval: 500ms
    timeout: 3s
workload: {publishers: 2, rate: 20/s}
"""
ON = {"n1": {"c1", "c4", "c7"}, "n2": {"c2", "c5", "c8"}, "n3": {"c3", "c6", "c9"}}
ALL = set().union(*ON.values())


class Env:
    def __init__(self, run: Run, nursery: trio.Nursery) -> None:
        self.run = run
        self.nursery = nursery
        self.nemesis = run.nemesis
        self.swarm = run.swarm
        self.nodes = run.cluster.nodes

    def ops(self) -> list[Op]:
        self.run.writer.flush()
        return read_history(self.run.writer.path)

    def now(self) -> float:
        return self.run.clock.now()

    def of(self, f: str, since: float = 0.0, type_: str | None = None) -> list[Op]:
        return [
            o
            for o in self.ops()
            if o.f == f and o.time >= since and (type_ is None or o.type == type_)
        ]

    def disconnected(self, since: float) -> set[str]:
        return {o.process for o in self.of("disconnect", since) if o.process.startswith("c")}

    async def fault(self, kind: str, duration: float | None = None, **params) -> float:
        """Start a fault now (in the background); return its start time."""
        start = self.now()
        if "links" in params:
            params["link"] = params.pop("links")
        fault = KINDS[kind].model_validate({"at": 0.0, "for": duration, **params})
        self.nursery.start_soon(self.nemesis.run, [fault], start)
        await wait_until(
            lambda: any(fault_edge(o) == "start" for o in self.of("fault", start)), timeout=5
        )
        return start

    async def fault_stopped(self, since: float) -> None:
        await wait_until(
            lambda: any(fault_edge(o) == "stop" for o in self.of("fault", since)), timeout=30
        )

    async def all_joined(self) -> None:
        await self.swarm.wait_joined(timeout=20)

    def publish(self, publisher: str, count: int, tag: str) -> list[str]:
        client = self.swarm.clients[publisher]
        ids = [f"{tag}-{i}" for i in range(count)]
        for i, mid in enumerate(ids):
            client.publish("room:1", {"id": mid, "body": "x" * 100}, mid, i)
        return ids

    def receivers(self, mid: str) -> dict[str, float]:
        return {o.process: o.time for o in self.of("recv") if o.value.get("id") == mid}

    async def delivered(self, mid: str, to: set[str], timeout: float = 15) -> None:
        await wait_until(
            lambda: to <= set(self.receivers(mid)), timeout=timeout, what=f"{mid} to {sorted(to)}"
        )


@asynccontextmanager
async def open_env(text: str, out: Path) -> AsyncIterator[Env]:
    """A run of the scenario `text` set up (cluster, proxies, joined swarm), torn down after."""
    scenario = parse_scenario(text, "faults.yaml")
    run_dir = RunDir.create(out, "faults", scenario.seed)
    writer = HistoryWriter(run_dir.history)
    try:
        async with (
            open_run(scenario, run_dir, RunOptions(out=out), writer) as run,
            trio.open_nursery() as nursery,
        ):
            yield Env(run, nursery)
            nursery.cancel_scope.cancel()
    finally:
        writer.close()


@pytest.fixture
async def env(tmp_path) -> AsyncIterator[Env]:
    async with open_env(SCENARIO, tmp_path) as env:
        yield env


def link(node: str) -> tuple[str, ...]:
    return (f"clients->{node}",)


TOXIC = {"stream": "downstream", "toxicity": 1.0}


async def test_down_disconnects_exactly_that_nodes_clients_who_rejoin_after(env):
    start = await env.fault("down", 1.0, links=link("n3"))
    await wait_until(lambda: env.disconnected(start) >= ON["n3"])
    await env.fault_stopped(start)
    await env.all_joined()
    assert env.disconnected(start) == ON["n3"]


async def test_partition_cuts_remote_broadcasts_between_groups_not_inside(env):
    start = await env.fault("partition", 3.0, groups=(("n1",), ("n2", "n3")), one_way=False)
    await wait_until(lambda: len(env.of("fault", start)) >= 1)
    env.publish("p2", 1, "inside")  # p2 is on n2: reaches n2 and n3, not n1
    env.publish("p1", 1, "across")  # p1 is on n1: reaches n1 only
    await env.delivered("inside-0", ON["n2"] | ON["n3"])
    await env.delivered("across-0", ON["n1"])
    env.publish("p2", 1, "marker")  # per-link FIFO: once the marker is in, earlier ones would be
    await env.delivered("marker-0", ON["n2"] | ON["n3"])
    assert not set(env.receivers("inside-0")) & ON["n1"]
    assert not set(env.receivers("across-0")) & (ON["n2"] | ON["n3"])
    await env.fault_stopped(start)
    # links reconnect with backoff; a broadcast sent before that is lost (at most once)
    await wait_links(env.nodes, "up", [("n1", "n2"), ("n1", "n3"), ("n2", "n1"), ("n3", "n1")])
    env.publish("p1", 1, "healed")
    await env.delivered("healed-0", ALL)


async def test_timeout_black_hole_is_detected_by_the_heartbeat(env):
    start = await env.fault(
        "timeout", 3.0, links=link("n3"), timeout="0ms", stream="both", toxicity=1.0
    )
    await wait_until(
        lambda: {o.process for o in env.of("heartbeat_timeout", start)} >= ON["n3"], timeout=10
    )
    assert {o.process for o in env.of("heartbeat_timeout", start)} == ON["n3"]
    await env.fault_stopped(start)
    await env.all_joined()


# bandwidth: 5 KB/s holds ~1.5 KB of messages back ~0.3 s, less than the 0.5 s heartbeat timeout
@pytest.mark.parametrize(
    ("kind", "params"),
    [("latency", {"latency": "400ms", "jitter": "0ms"}), ("bandwidth", {"rate": 5})],
)
async def test_slow_link_delivers_to_that_nodes_clients_after_everyone_else(env, kind, params):
    await env.fault(kind, 6.0, links=link("n3"), **TOXIC, **params)
    ids = env.publish("p1", 10, kind)
    await env.delivered(ids[-1], ALL)
    # latency delays every message by 400 ms; bandwidth's delay builds up as the backlog grows,
    # so its clear margin is on the later messages
    for mid in ids if kind == "latency" else ids[-3:]:
        got = env.receivers(mid)
        fast = max(got[c] for c in ON["n1"] | ON["n2"])
        assert min(got[c] for c in ON["n3"]) > fast, mid


async def test_slicer_fragments_frames_without_breaking_them(env):
    await env.fault(
        "slicer", 4.0, links=link("n3"), **TOXIC, average_size=7, size_variation=3, delay=200
    )
    ids = env.publish("p1", 5, "sliced")
    for mid in ids:
        await env.delivered(mid, ALL)
    assert not env.disconnected(0.0)


async def test_slow_close_hides_a_dead_server_until_the_heartbeat_notices(env):
    # Without the toxic a killed node's clients see the TCP close at once (1006, see the kill
    # test). With the close held back longer than two heartbeat intervals, they find out by
    # heartbeat timeout instead, and close the socket themselves.
    await env.fault("slow_close", 10.0, links=link("n3"), **TOXIC, delay="3000ms")
    killed = env.now()
    await env.nodes["n3"].kill()
    await wait_until(lambda: env.disconnected(killed) >= ON["n3"], timeout=10)
    for client in ON["n3"]:
        first = min(
            (o for o in env.of("disconnect", killed) if o.process == client), key=lambda o: o.time
        )
        assert (first.value["by_client"], first.value["reason"]) == (True, "heartbeat timeout")


@pytest.mark.parametrize(
    ("kind", "params"), [("reset_peer", {"timeout": "100ms"}), ("limit_data", {"bytes": 300})]
)
async def test_connection_killing_toxics_disconnect_that_nodes_clients(env, kind, params):
    start = await env.fault(kind, 2.0, links=link("n3"), **TOXIC, **params)
    env.publish("p1", 5, kind)  # data must flow for either toxic to fire
    await wait_until(lambda: env.disconnected(start) >= ON["n3"], timeout=10)
    assert env.disconnected(start) <= ON["n3"]
    await env.fault_stopped(start)
    await env.all_joined()


async def test_kill_then_restart_clients_rejoin_with_new_join_refs(env):
    start = await env.fault("kill", None, node="n3", restart_after=0.5)
    await env.fault_stopped(start)
    await env.all_joined()
    assert env.disconnected(start) == ON["n3"]
    for client in ON["n3"]:
        refs = [o.value["join_ref"] for o in env.of("join", 0.0, "ok") if o.process == client]
        assert len(refs) >= 2
        assert len(set(refs)) == len(refs)


async def test_terminate_drains_with_1012(env):
    start = await env.fault("terminate", None, node="n3", restart_after=0.5)
    await env.fault_stopped(start)
    await env.all_joined()
    codes = {o.value["code"] for o in env.of("disconnect", start) if o.process in ON["n3"]}
    assert 1012 in codes


async def test_pause_makes_that_nodes_clients_time_out_on_heartbeats(env):
    start = await env.fault("pause", 2.5, node="n3")
    await env.fault_stopped(start)
    assert {o.process for o in env.of("heartbeat_timeout", start)} == ON["n3"]
    await env.all_joined()


async def test_restart_and_rolling_restart(env):
    start = await env.fault("restart", None, node="n2")
    await env.fault_stopped(start)
    await env.all_joined()
    assert env.disconnected(start) == ON["n2"]
    rolling = await env.fault("rolling_restart", None, nodes=("n1", "n2", "n3"), interval=0.2)
    await env.fault_stopped(rolling)
    await env.all_joined()
    assert env.disconnected(rolling) == ALL


@pytest.mark.parametrize(("kind", "code"), [("client_close", 1000), ("client_crash", 1006)])
async def test_client_faults_hit_exactly_the_chosen_clients(env, kind, code):
    start = await env.fault(kind, None, clients=2)
    chosen = set(env.of("client_fault", start)[0].value["clients"])
    assert len(chosen) == 2
    await wait_until(lambda: env.disconnected(start) >= chosen)
    assert env.disconnected(start) == chosen
    assert {o.value["code"] for o in env.of("disconnect", start)} == {code}
    await env.all_joined()


async def test_overlapping_faults_and_the_final_heal(env):
    start = await env.fault(
        "latency", 30.0, links=link("n1"), **TOXIC, latency="200ms", jitter="0ms"
    )
    await env.fault("down", 30.0, links=link("n3"))
    await wait_until(lambda: env.disconnected(start) >= ON["n3"])
    assert len([o for o in env.of("fault", start) if fault_edge(o) == "start"]) == 2
    await env.nodes["n2"].pause()
    await env.nemesis.heal()  # toxics gone, proxies enabled, n2 resumed
    assert not env.nodes["n2"].paused
    assert all(
        p.toxics == () and p.enabled for p in (await env.nemesis.toxiproxy.proxies()).values()
    )
    await env.all_joined()


def test_random_faults_expand_deterministically_inside_their_window():
    scenario = parse_scenario(
        SCENARIO + "faults:\n  - {at: 5s, for: 20s, kind: random, count: 6}\n", "r.yaml"
    )
    topology = scenario.cluster.topology
    first = expand_random(scenario.faults, 1, topology)
    assert first == expand_random(scenario.faults, 1, topology)
    assert first != expand_random(scenario.faults, 2, topology)
    assert len(first) == 6
    assert all(f.at >= 5.0 and (f.end or f.at) <= 25.0 + 1e-6 for f in first)
    assert all(f.kind_name() != "random" for f in first)


@pytest.mark.parametrize("pubsub", ["mesh", "redis"])
@pytest.mark.parametrize("seed", range(25))
def test_a_resolved_random_scenario_is_a_valid_scenario_that_replays(seed, pubsub):
    """What the run directory keeps must parse again, to the same faults, for every kind."""
    kinds = "[latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data, down, partition, kill, terminate, pause, restart, client_close, client_crash, client_leave]"
    text = SCENARIO.replace("{nodes: 3}", f"{{nodes: 3, pubsub: {pubsub}}}")
    text += f"faults:\n  - {{at: 2s, for: 50s, kind: random, count: 8, kinds: {kinds}}}\n"
    expanded = resolve(parse_scenario(text, "r.yaml"), seed)
    again = parse_scenario(resolved_yaml(expanded), "resolved.yaml")
    assert again.faults == expanded.faults
