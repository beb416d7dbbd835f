"""Parity: the official phoenix.js client and the Python swarm client, side by side against the
same server through the same faults, show the same sequence of states and the same schedules.

Both get the same timings (short, as data). Tolerance, stated once: every measured gap between
two connection attempts (or two join attempts) must be within 50% + 50 ms of the scheduled
delay, for both clients, index by index; the schedules are chosen so that neighbouring steps
differ by far more than that, so a client on the wrong step fails.
"""

from __future__ import annotations

import itertools

import pytest

from harness._clock import RunClock
from harness.grammar.behaviour import ClientPlan, Endpoint
from harness.history import Op
from harness.swarm import SwarmClient
from tests.support.jsclient import open_js_client
from tests.support.plans import swarm_plan
from tests.support.waiting import wait_until

pytestmark = pytest.mark.interop

RECONNECT = [50, 150, 400, 800]
REJOIN = [100, 300, 800]
HEARTBEAT = 300


def within_tolerance(measured_ms: list[float], scheduled_ms: list[int]) -> bool:
    return all(abs(m - s) <= 0.5 * s + 50 for m, s in zip(measured_ms, scheduled_ms, strict=False))


class Ops:
    def __init__(self) -> None:
        self.ops: list[Op] = []

    def record(self, op: Op) -> None:
        self.ops.append(op)

    def all(self, f: str, type_: str | None = None) -> list[Op]:
        return [o for o in self.ops if o.f == f and (type_ is None or o.type == type_)]


async def side_by_side(node, nursery, *, topic_params=None):
    timings = {
        "reconnect_after": [f"{ms}ms" for ms in RECONNECT],
        "rejoin_after": [f"{ms}ms" for ms in REJOIN],
        "heartbeat_interval": f"{HEARTBEAT}ms",
    }
    ops = Ops()
    endpoint = Endpoint(node.name, node.url)
    app = {"join": {"payload": topic_params}} if topic_params else None
    plan = swarm_plan([endpoint], clients=1, publishers=0, timings=timings, app=app)
    py = SwarmClient(
        ClientPlan(id="py", topics=("room:1",)),
        plan.behaviours["client"],
        [endpoint],
        ops,
        RunClock(),
        0,
    )
    nursery.start_soon(py.run)
    return py, ops


def channel_states_js(js) -> list[str]:
    """The JS channel's states at each event that changes it, de-duplicated in a row."""
    mapping = {
        "join_ok": "joined",
        "join_error": "errored",
        "chan_error": "errored",
        "chan_close": "closed",
    }
    states = [mapping[e["ev"]] for e in js.events if e["ev"] in mapping]
    return [k for k, _ in itertools.groupby(states)]


def channel_states_py(ops: Ops) -> list[str]:
    states = []
    for o in ops.ops:
        if o.f == "join" and o.type == "ok":
            states.append("joined")
        elif (o.f == "join" and o.type == "fail") or o.f == "channel_error":
            states.append("errored")
        elif o.f == "channel_close":
            states.append("closed")
    return [k for k, _ in itertools.groupby(states)]


async def connect_js(js, node):
    """The official client with the same timings as the Python client of `side_by_side`."""
    opts = {
        "reconnectAfterMs": RECONNECT,
        "rejoinAfterMs": REJOIN,
        "heartbeatIntervalMs": HEARTBEAT,
    }
    await js.send("connect", url=node.url, opts=opts)


async def both_joined(js, node, nursery, *, topic_params=None):
    """The official and the Python client, same timings, both joined to room:1."""
    await connect_js(js, node)
    await js.send("join", topic="room:1", params=topic_params or {})
    _py, ops = await side_by_side(node, nursery, topic_params=topic_params)
    if topic_params is None:
        await js.wait_ev("join_ok")
        await wait_until(lambda: ops.all("join", "ok"))
    return ops


@pytest.fixture
async def n1(local_cluster):
    return (await local_cluster(("n1",)))["n1"]


async def test_server_kill_same_states_and_same_reconnect_schedule(n1, nursery):
    async with open_js_client() as js:
        ops = await both_joined(js, n1, nursery)

        await n1.kill()
        await n1.wait_exit()
        # both retry on schedule while the server is down: wait for len(RECONNECT) failures each
        await wait_until(lambda: len(js.all("close")) >= 1 + len(RECONNECT), timeout=10)
        await wait_until(lambda: len(ops.all("connect", "fail")) >= len(RECONNECT), timeout=10)
        await n1.start()
        await wait_until(lambda: len(js.all("join_ok")) >= 2, timeout=10)
        await wait_until(lambda: len(ops.all("join", "ok")) >= 2, timeout=10)

        js_closes = [e["t"] for e in js.all("close")][: 1 + len(RECONNECT)]
        js_gaps = [b - a for a, b in itertools.pairwise(js_closes)]
        py_marks = [
            ops.all("disconnect")[0].time,
            *[o.time for o in ops.all("connect", "fail")][: len(RECONNECT)],
        ]
        py_gaps = [(b - a) * 1000 for a, b in itertools.pairwise(py_marks)]
        assert within_tolerance(js_gaps, RECONNECT), js_gaps
        assert within_tolerance(py_gaps, RECONNECT), py_gaps
        assert channel_states_js(js) == channel_states_py(ops) == ["joined", "errored", "joined"]
        # a new join_ref after the rejoin, on both
        assert len({e["join_ref"] for e in js.all("join_ok")}) == 2
        assert len({o.value["join_ref"] for o in ops.all("join", "ok")}) == 2


async def test_paused_server_heartbeat_timeout_same_states(n1, nursery):
    async with open_js_client() as js:
        ops = await both_joined(js, n1, nursery)

        await n1.pause()
        # No ack within the interval: each client errors its channels and tears the connection
        # down itself (1000, "heartbeat timeout"). phoenix.js 1.8.16 fires no onClose for its own
        # teardown, so on the JS side the observable is the channel error's reason.
        await js.wait_ev("chan_error", timeout=10)
        await wait_until(lambda: ops.all("disconnect"), timeout=10)
        assert ops.all("heartbeat_timeout")
        py_close = ops.all("disconnect")[0].value
        assert (py_close["code"], py_close["reason"], py_close["by_client"]) == (
            1000,
            "heartbeat timeout",
            True,
        )
        js_error = js.all("chan_error")[0]["reason"]
        py_error = ops.all("channel_error")[0].value["reason"]
        assert js_error == py_error == {"source": "transport", "reason": "heartbeat_timeout"}

        await n1.resume()
        await wait_until(lambda: len(js.all("join_ok")) >= 2, timeout=15)
        await wait_until(lambda: len(ops.all("join", "ok")) >= 2, timeout=15)
        assert channel_states_js(js) == channel_states_py(ops) == ["joined", "errored", "joined"]


async def test_refused_join_same_rejoin_schedule(n1, nursery):
    async with open_js_client() as js:
        ops = await both_joined(js, n1, nursery, topic_params={"reject": "unauthorized"})
        attempts = len(REJOIN) + 2
        await wait_until(lambda: len(js.all("join_error")) >= attempts, timeout=15)
        await wait_until(lambda: len(ops.all("join", "fail")) >= attempts, timeout=15)

        js_gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(js.all("join_error")[:attempts])]
        py_gaps = [
            (b.time - a.time) * 1000
            for a, b in itertools.pairwise(ops.all("join", "fail")[:attempts])
        ]
        expected = [*REJOIN, REJOIN[-1]]
        assert within_tolerance(js_gaps, expected), js_gaps
        assert within_tolerance(py_gaps, expected), py_gaps
        assert {tuple(e["response"].items()) for e in js.all("join_error")} == {
            (("reason", "unauthorized"),)
        }
        assert {o.value["reason"]["reason"] for o in ops.all("join", "fail")} == {"unauthorized"}
        assert channel_states_js(js) == channel_states_py(ops) == ["errored"]
