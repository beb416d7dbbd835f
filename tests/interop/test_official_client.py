"""The official npm `phoenix` client (1.8.16; 1.8.15 where close codes matter) under Node 20,
with `ws` as transport, against real reference-server processes.

Cases are numbered as in research/phoenix-protocol.md §6. Timings are data (short reconnect and
rejoin schedules); assertions are about which events happen and in what order.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest

from harness.cluster import wait_links
from harness.infra.http import get_json
from tests.support.jsclient import open_js_client

pytestmark = pytest.mark.interop

FAST = {"reconnectAfterMs": [20, 50, 100, 200], "rejoinAfterMs": [50, 100, 200]}


@pytest.fixture
async def n1(local_cluster):
    return (await local_cluster(("n1",)))["n1"]


async def connected(js, node, **opts):
    await js.send("connect", url=node.url, opts={**FAST, **opts})
    await js.wait_ev("open")


async def joined(js, topic="room:1", chan=None, **params):
    mark = js.mark()
    await js.send("join", topic=topic, chan=chan or topic, params=params)
    return await js.wait_ev("join_ok", chan=chan or topic, after=mark)


async def test_01_connect_params_reach_the_server(local_cluster):
    from server_under_test._auth import sign

    n1 = (await local_cluster(("n1",), extra_args=("--secret", "s3cret")))["n1"]
    token = sign("s3cret", "42")
    async with open_js_client() as js, open_js_client() as admin:
        await connected(js, n1, params={"token": token})
        await connected(admin, n1, params={"token": token})  # the same user, another tab
        await joined(admin)
        mark = js.mark()
        # The server verified the token in the params: its socket-id topic answers a kick of
        # the user's own other sessions (case 29).
        await admin.send("push", chan="room:1", event="kick", payload={"user_id": "42"}, tag="k")
        close = await js.wait_ev("close", after=mark)
        assert close["code"] == 1001
        await js.wait_ev("open", after=mark)  # and the client comes back by itself


async def test_03_refused_connect_is_retried_and_the_server_survives(n1):
    async with open_js_client() as js:
        await js.send("connect", url=n1.url, opts={**FAST, "params": {"reject_connect": "1"}})
        await js.wait_for(lambda e: len(js.all("close")) >= 3)  # three refused attempts...
        assert js.all("open") == []  # ...and never an open socket
    assert (await get_json("127.0.0.1", n1.spec.port, "/health"))[0] == 200


async def test_04_auth_token_subprotocol_is_accepted(n1):
    async with open_js_client() as js:
        await connected(js, n1, authToken="s3cr3t")
        assert (await joined(js))["state"] == "joined"


async def test_06_heartbeats_are_acknowledged_and_the_socket_stays_open(n1):
    async with open_js_client() as js:
        await connected(js, n1, heartbeatIntervalMs=30)
        await js.wait_for(
            lambda e: (
                len([f for f in js.all("frame", topic="phoenix") if f["payload"]["status"] == "ok"])
                >= 10
            )
        )
        assert js.all("close") == []


async def test_08_join_ok_uses_join_ref_equal_to_ref(n1):
    async with open_js_client() as js:
        await connected(js, n1)
        ok = await joined(js)
        assert ok["response"] == {"node": "n1"}
        assert ok["state"] == "joined"
        reply = await js.wait_ev("frame", event="phx_reply", topic="room:1")
        assert reply["ref"] == reply["join_ref"] == ok["join_ref"]


async def test_09_refused_join_is_retried_with_new_join_refs(n1):
    async with open_js_client() as js:
        await connected(js, n1)
        await js.send("join", topic="room:1", params={"reject": "unauthorized"})
        await js.wait_for(lambda e: len(js.all("join_error")) >= 3)
        errors = js.all("join_error")
        assert all(e["response"] == {"reason": "unauthorized"} for e in errors)
        refs = [int(e["join_ref"]) for e in errors]
        assert refs == sorted(set(refs))  # each retry is a new join with a newer join_ref


async def test_10_unmatched_topic_is_an_error_with_null_join_ref(n1):
    async with open_js_client() as js:
        await connected(js, n1)
        await js.send("join", topic="lobby")
        error = await js.wait_ev("join_error", chan="lobby")
        assert error["response"] == {"reason": "unmatched topic"}
        frame = await js.wait_ev("frame", topic="lobby")
        assert frame["join_ref"] is None


async def test_13_push_gets_ok_and_error_replies(n1):
    async with open_js_client() as js:
        await connected(js, n1)
        await joined(js)
        await js.send("push", chan="room:1", event="echo", payload={"x": 1}, tag="ok")
        assert (await js.wait_ev("reply", tag="ok"))["response"] == {"x": 1}
        await js.send("push", chan="room:1", event="new_msg", payload={"body": "no id"}, tag="err")
        assert (await js.wait_ev("reply", tag="err"))["status"] == "error"


async def test_14_push_without_reply_times_out(n1):
    async with open_js_client() as js:
        await connected(js, n1)
        await joined(js)
        await js.send("push", chan="room:1", event="noreply", timeout=100, tag="n")
        assert (await js.wait_ev("reply", tag="n"))["status"] == "timeout"


async def test_15_push_before_join_ok_is_sent_after_the_join(n1):
    async with open_js_client() as js:
        await connected(js, n1)
        await js.send("join", topic="room:1", params={"join_delay_ms": 200})
        await js.send("push", chan="room:1", event="echo", payload={"early": True}, tag="e")
        reply = await js.wait_ev("reply", tag="e")
        assert reply["response"] == {"early": True}
        order = [e["ev"] for e in js.events if e["ev"] in {"join_ok", "reply"}]
        assert order == ["join_ok", "reply"]


async def test_17_server_push_reaches_the_channel_with_its_join_ref(n1):
    async with open_js_client() as js:
        await connected(js, n1)
        ok = await joined(js, tick_ms=20)
        welcome = await js.wait_ev("message", event="welcome")
        assert welcome["payload"] == {"node": "n1", "join_ref": ok["join_ref"]}
        await js.wait_for(
            lambda e: e.get("event") == "tick" and e["ev"] == "message" and e["payload"]["n"] >= 3
        )


async def test_18_broadcast_reaches_every_subscriber_and_broadcast_from_skips_the_sender(n1):
    async with open_js_client() as a, open_js_client() as b:
        await connected(a, n1)
        await connected(b, n1)
        await joined(a)
        await joined(b)
        await a.send(
            "push", chan="room:1", event="new_msg", payload={"id": "m1", "body": "hi"}, tag="p"
        )
        await a.wait_ev("reply", tag="p")
        for js in (a, b):
            msg = await js.wait_for(lambda e: e["ev"] == "message" and e["event"] == "new_msg")
            assert msg["payload"] == {"id": "m1", "body": "hi", "seq": 1}
        await a.send("push", chan="room:1", event="shout", payload={"n": 1}, tag="s")
        await a.wait_ev("reply", tag="s")
        await b.wait_ev("message", event="shout")
        await a.send("push", chan="room:1", event="ping", tag="after")  # order marker
        await a.wait_ev("reply", tag="after")
        assert a.all("message", event="shout") == []


async def test_21_leave_closes_the_channel(n1):
    async with open_js_client() as js:
        await connected(js, n1)
        await joined(js)
        await js.send("leave", chan="room:1")
        await js.wait_ev("leave_ok", chan="room:1")
        close = await js.wait_ev("chan_close", chan="room:1")
        assert close["reason"] == "leave"
    _, stats = await get_json("127.0.0.1", n1.spec.port, "/stats")
    assert stats["channels"] == {}


async def test_23_server_stop_closes_the_channel_for_good(n1):
    async with open_js_client() as js:
        await connected(js, n1)
        await joined(js)
        await js.send("push", chan="room:1", event="stop", tag="s")
        await js.wait_ev("chan_close", chan="room:1")
        await js.send("push", chan="room:1", event="ping", tag="marker", timeout=300)
        await js.wait_ev("reply", tag="marker")  # a closed channel's push buffers, then times out
        assert len(js.all("join_ok")) == 1  # no rejoin


async def test_24_channel_crash_errors_then_rejoins_with_a_new_join_ref(n1):
    async with open_js_client() as js:
        await connected(js, n1)
        first = await joined(js)
        mark = js.mark()
        await js.send("push", chan="room:1", event="crash", tag="c")
        error = await js.wait_ev("chan_error", chan="room:1", after=mark)
        assert error["reason"] == {"reason": "channel_crash"}
        again = await js.wait_ev("join_ok", chan="room:1", after=mark)
        assert again["join_ref"] != first["join_ref"]


async def test_26_two_channel_objects_on_one_topic(n1):
    async with open_js_client() as js:
        await connected(js, n1)
        await joined(js, chan="first")
        mark = js.mark()
        await js.send("join", topic="room:1", chan="second")
        await js.wait_ev("join_ok", chan="second", after=mark)
        await js.wait_ev("frame", event="phx_close", after=mark)  # the first channel was left...
    _, stats = await get_json("127.0.0.1", n1.spec.port, "/stats")
    assert stats["channels"] in ({}, {"room:1": 1})  # ...so at most one subscription remains


async def test_27_killed_server_restarted_on_the_same_port_clients_rejoin(n1):
    async with open_js_client() as js:
        await connected(js, n1)
        first = await joined(js)
        mark = js.mark()
        await n1.kill()
        assert await n1.wait_exit() == -9
        await js.wait_ev("close", after=mark)
        await js.wait_ev("chan_error", chan="room:1", after=mark)
        # Pushed while down: buffered, then sent after the rejoin.
        await js.send(
            "push", chan="room:1", event="new_msg", payload={"id": "during-outage"}, tag="b"
        )
        await n1.start()
        await js.wait_ev("open", after=mark)
        again = await js.wait_ev("join_ok", chan="room:1", after=mark)
        assert again["join_ref"] != first["join_ref"]
        reply = await js.wait_ev("reply", tag="b")
        assert reply["status"] == "ok"
        kinds = [
            e["ev"] for e in js.events[mark:] if e["ev"] in {"close", "open", "join_ok", "reply"}
        ]
        assert kinds.index("open") < kinds.index("join_ok") < kinds.index("reply")


@pytest.mark.parametrize("package", ["phoenix", "phoenix-1815"])
async def test_28_graceful_sigterm_closes_with_1012_and_clients_come_back(n1, package):
    async with open_js_client(package) as js:
        await connected(js, n1)
        await joined(js)
        mark = js.mark()
        await n1.terminate()
        close = await js.wait_ev("close", after=mark)
        assert close["code"] == 1012
        assert await n1.wait_exit() == 0
        await n1.start()
        await js.wait_ev("open", after=mark)
        await js.wait_ev("join_ok", chan="room:1", after=mark)


async def test_31_binary_push_and_reply(n1):
    async with open_js_client() as js:
        await connected(js, n1)
        await joined(js)
        await js.send("push", chan="room:1", event="echo", binary=[1, 2, 250], tag="bin")
        reply = await js.wait_ev("reply", tag="bin")
        assert reply == {**reply, "status": "ok", "response": {"binary": [1, 2, 250]}}


async def test_38_slow_join_is_answered_correctly(n1):
    async with open_js_client() as js:
        await connected(js, n1)
        ok = await joined(js, join_delay_ms=300)
        assert ok["response"] == {"node": "n1"}


@asynccontextmanager
async def one_client_per_node(nodes):
    """An official client joined to room:1 on n1 (a) and one on n2 (b)."""
    async with open_js_client() as a, open_js_client() as b:
        await connected(a, nodes["n1"])
        await connected(b, nodes["n2"])
        await joined(a)
        await joined(b)
        yield a, b


async def test_two_nodes_a_client_on_n1_receives_what_n2_published(local_cluster):
    nodes = await local_cluster(("n1", "n2"))
    await wait_links(nodes, "up", [("n1", "n2"), ("n2", "n1")])
    async with one_client_per_node(nodes) as (a, b):
        await b.send(
            "push", chan="room:1", event="new_msg", payload={"id": "x1", "body": "from n2"}, tag="p"
        )
        assert (await b.wait_ev("reply", tag="p"))["response"] == {"id": "x1"}
        got = await a.wait_for(lambda e: e["ev"] == "message" and e["event"] == "new_msg")
        assert got["payload"] == {"id": "x1", "body": "from n2", "seq": 1}


async def test_two_nodes_on_redis_pubsub_a_client_on_n1_receives_what_n2_published(
    local_cluster, redis_server
):
    nodes = await local_cluster(("n1", "n2"), redis=redis_server)
    await wait_links(nodes, "up", [("n1", "redis"), ("n2", "redis")])
    async with one_client_per_node(nodes) as (a, b):
        await b.send("push", chan="room:1", event="new_msg", payload={"id": "r1"}, tag="p")
        assert (await b.wait_ev("reply", tag="p"))["response"] == {"id": "r1"}
        got = await a.wait_for(lambda e: e["ev"] == "message" and e["event"] == "new_msg")
        assert got["payload"] == {"id": "r1", "seq": 1}
        await b.wait_for(lambda e: e["ev"] == "message" and e["event"] == "new_msg")
        await b.send("push", chan="room:1", event="new_msg", payload={"id": "r2"}, tag="q")
        await a.wait_for(lambda e: e["ev"] == "message" and e.get("payload", {}).get("id") == "r2")
        await b.wait_for(lambda e: e["ev"] == "message" and e.get("payload", {}).get("id") == "r2")
        # the publisher's own node delivered r1 once, not a second time from Redis's echo
        assert [e["payload"]["id"] for e in b.all("message", event="new_msg")] == ["r1", "r2"]


async def test_partitioned_peer_link_drops_remote_broadcasts_then_they_flow_again(
    local_cluster, toxiproxy
):
    nodes = await local_cluster(("n1", "n2"), toxiproxy=toxiproxy)
    await wait_links(nodes, "up", [("n1", "n2"), ("n2", "n1")])
    async with one_client_per_node(nodes) as (a, b):
        await toxiproxy.client.set_enabled("n2->n1", False)  # n2's broadcasts can't reach n1
        await wait_links(nodes, "down", [("n2", "n1")])
        await b.send("push", chan="room:1", event="new_msg", payload={"id": "lost"}, tag="lost")
        assert (await b.wait_ev("reply", tag="lost"))[
            "status"
        ] == "ok"  # no error for the publisher
        _, stats = await get_json("127.0.0.1", nodes["n2"].spec.port, "/stats")
        assert stats["pubsub"]["links"]["n1"]["dropped"] >= 1
        await toxiproxy.client.set_enabled("n2->n1", True)
        await wait_links(nodes, "up", [("n2", "n1")])
        await b.send("push", chan="room:1", event="new_msg", payload={"id": "after"}, tag="after")
        await a.wait_for(
            lambda e: e["ev"] == "message" and e.get("payload", {}).get("id") == "after"
        )
        ids = [e["payload"]["id"] for e in a.all("message", event="new_msg")]
        assert ids == ["after"]  # the link is FIFO: "lost" would have arrived first; it never will
        # the other direction was never cut
        await a.send("push", chan="room:1", event="new_msg", payload={"id": "from-n1"}, tag="n1")
        await b.wait_for(
            lambda e: e["ev"] == "message" and e.get("payload", {}).get("id") == "from-n1"
        )


async def test_catch_up_with_a_params_closure_gets_what_it_missed_in_order(local_cluster):
    """The at-least-once idiom with the official client: `socket.channel(topic, () => ({since:
    last}))`. A subscriber on n2 sees #1-#3, n2 is killed, a publisher on n1 publishes #4-#8
    meanwhile, n2 comes back: the rejoin carries since=3 and the reference server's catch-up
    sends #4-#8 from the store, in order, once, then live ones (#9)."""
    nodes = await local_cluster(("n1", "n2"))
    n1, n2 = nodes["n1"], nodes["n2"]
    await wait_links(nodes, "up", [("n1", "n2"), ("n2", "n1")])
    catch_up = {"param": "since", "field": "seq", "event": "new_msg"}
    async with open_js_client() as sub, open_js_client() as pub:
        await connected(sub, n2)
        mark = sub.mark()
        await sub.send("join", topic="room:1", chan="room:1", catchUp=catch_up)
        await sub.wait_ev("join_ok", chan="room:1", after=mark)
        await connected(pub, n1)
        await joined(pub)

        async def publish(n: int) -> None:
            await pub.send("push", chan="room:1", event="new_msg", payload={"id": f"m{n}"}, tag=n)
            assert (await pub.wait_ev("reply", tag=n))["status"] == "ok"

        for n in (1, 2, 3):
            await publish(n)
        await sub.wait_for(lambda e: len(sub.all("message", event="new_msg")) >= 3)
        mark = sub.mark()
        await n2.kill()
        await sub.wait_ev("close", after=mark)
        for n in range(4, 9):
            await publish(n)
        await n2.start()
        await wait_links(nodes, "up", [("n1", "n2"), ("n2", "n1")])
        rejoined = await sub.wait_ev("join_ok", chan="room:1", after=mark)
        await sub.wait_for(lambda e: len(sub.all("message", event="new_msg")) >= 8)
        await publish(9)
        await sub.wait_for(lambda e: len(sub.all("message", event="new_msg")) >= 9)
        got = [
            (m["payload"]["id"], m["payload"]["seq"]) for m in sub.all("message", event="new_msg")
        ]
        assert got == [(f"m{n}", n) for n in range(1, 10)]
        sent = [e["params"] for e in sub.all("join_params")]
        assert sent[0] == {"since": None}  # the first join had seen nothing
        assert {"since": 3} in sent[1:]  # the rejoin that was answered carried the last seen
        assert rejoined["state"] == "joined"
