"""The Redis PubSub adapter on real connections: a real redis-server, three node processes that
reach it through Toxiproxy (`n1->redis`, ...), the same nine clients and two publishers as the
mesh fault tests (c1, c4, c7 on n1; c2, c5, c8 on n2; c3, c6, c9 on n3; p1 on n1, p2 on n2)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from harness.cluster import wait_links
from tests.support.waiting import wait_until
from tests.test_faults import ALL, ON, SCENARIO, Env, open_env

REDIS_SCENARIO = SCENARIO.replace("cluster: {nodes: 3}", "cluster: {nodes: 3, pubsub: redis}")
TO_REDIS = [("n1", "redis"), ("n2", "redis"), ("n3", "redis")]


@pytest.fixture
async def env(tmp_path) -> AsyncIterator[Env]:
    async with open_env(REDIS_SCENARIO, tmp_path) as env:
        yield env
    (pid,) = [o.value["redis_pid"] for o in env.ops() if o.f == "setup" and "redis_pid" in o.value]
    with pytest.raises(ProcessLookupError):  # the run stops the redis-server it started
        os.kill(pid, 0)


async def test_broadcasts_cross_nodes_through_redis_exactly_once(env):
    ids = env.publish("p2", 5, "hello") + env.publish("p1", 5, "back")
    for mid in ids:
        await env.delivered(mid, ALL)
    env.publish("p1", 1, "marker")
    await env.delivered("marker-0", ALL)
    copies = Counter((o.process, o.value["id"]) for o in env.of("recv") if o.value["id"] in ids)
    assert set(copies.values()) == {1}, "a node ignores its own publish coming back from Redis"


async def test_a_node_cut_off_redis_neither_sends_nor_receives_and_nothing_is_replayed(env):
    start = await env.fault("down", 3.0, links=("n1->redis",))
    await wait_links(env.nodes, "down", [("n1", "redis")])
    env.publish("p2", 1, "cut")  # from n2: reaches n2 and n3 through Redis, never n1
    env.publish("p1", 1, "alone")  # from n1: its own clients only
    await env.delivered("cut-0", ON["n2"] | ON["n3"])
    await env.delivered("alone-0", ON["n1"])
    env.publish("p2", 1, "marker")
    await env.delivered("marker-0", ON["n2"] | ON["n3"])
    assert not set(env.receivers("alone-0")) & (ON["n2"] | ON["n3"])
    await env.fault_stopped(start)
    await wait_links(env.nodes, "up", TO_REDIS)
    env.publish("p2", 1, "healed")
    await env.delivered("healed-0", ALL)
    assert not set(env.receivers("cut-0")) & ON["n1"], "Redis Pub/Sub keeps nothing to replay"


async def test_partition_leaves_redis_with_one_side(env):
    start = await env.fault("partition", 3.0, groups=(("n1", "redis"), ("n2", "n3")), one_way=False)
    await wait_links(env.nodes, "down", [("n2", "redis"), ("n3", "redis")])
    await wait_links(env.nodes, "up", [("n1", "redis")])
    env.publish("p2", 1, "island")  # n2 lost Redis: only n2's own clients
    env.publish("p1", 1, "mainland")  # n1 keeps Redis, but n2 and n3 are not listening
    await env.delivered("island-0", ON["n2"])
    await env.delivered("mainland-0", ON["n1"])
    env.publish("p2", 1, "marker")
    await env.delivered("marker-0", ON["n2"])
    assert set(env.receivers("island-0")) == ON["n2"] | {"p2"}
    assert not set(env.receivers("mainland-0")) & (ON["n2"] | ON["n3"])
    await env.fault_stopped(start)
    await wait_links(env.nodes, "up", TO_REDIS)
    env.publish("p1", 1, "together")
    await env.delivered("together-0", ALL)


async def test_a_killed_node_comes_back_to_redis(env):
    start = await env.fault("kill", None, node="n3", restart_after=0.5)
    await env.fault_stopped(start)
    await env.all_joined()
    await wait_links(env.nodes, "up", [("n3", "redis")])
    env.publish("p1", 1, "again")
    await env.delivered("again-0", ALL)
    await wait_until(lambda: ON["n3"] <= env.disconnected(start), timeout=5)


def server(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server_under_test", "--node", "n1", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pubsub", "nats://x:1"], "expects mesh or redis://HOST:PORT"),
        (["--pubsub", "redis://127.0.0.1:port"], "the port is not a number"),
        (["--pubsub", "redis://127.0.0.1:1", "--peer", "n2=127.0.0.1:2"], "belong to the mesh"),
        (
            ["--pubsub", "redis://127.0.0.1:1", "--bug", "resend_after_reconnect"],
            "is a mesh defect",
        ),
    ],
)
def test_redis_command_line_errors_exit_2(args, message):
    result = server(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_run_without_redis_server_says_what_to_install(tmp_path):
    scenario = tmp_path / "r.yaml"
    scenario.write_text(REDIS_SCENARIO.replace("duration: 60s", "duration: 2s"))
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "REDIS_SERVER": str(tmp_path / "no-such-redis")},
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "redis-server not found" in result.stderr
    assert "apt-get install redis-server" in result.stderr
    assert "Traceback" not in result.stderr
