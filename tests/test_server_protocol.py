"""The reference server against the protocol rules of research/phoenix-protocol.md §2,
frame by frame, with a raw websocket client and an in-process node."""

from __future__ import annotations

import json

import pytest
import trio
from trio_websocket import ConnectionRejected

from harness.infra.http import get_json
from tests.support.rawclient import open_raw


async def test_heartbeat_is_answered_with_the_same_ref(node):
    async with open_raw(node.url()) as c:
        await c.send([None, "42", "phoenix", "heartbeat", {}])
        assert await c.recv() == [
            None,
            "42",
            "phoenix",
            "phx_reply",
            {"status": "ok", "response": {}},
        ]
        await c.send([None, "abc", "phoenix", "heartbeat", {}])  # refs are opaque
        assert (await c.recv())[1] == "abc"


async def test_join_ok_then_welcome_push_with_join_ref(node):
    async with open_raw(node.url()) as c:
        await c.send(["7", "7", "room:1", "phx_join", {}])
        assert await c.recv() == [
            "7",
            "7",
            "room:1",
            "phx_reply",
            {"status": "ok", "response": {"node": "n1"}},
        ]
        assert await c.recv() == ["7", None, "room:1", "welcome", {"node": "n1", "join_ref": "7"}]


async def test_join_refused_echoes_refs(node):
    async with open_raw(node.url()) as c:
        await c.send(["3", "3", "room:1", "phx_join", {"reject": "unauthorized"}])
        reply = await c.recv()
        assert reply == [
            "3",
            "3",
            "room:1",
            "phx_reply",
            {"status": "error", "response": {"reason": "unauthorized"}},
        ]


async def test_unmatched_topic_has_null_join_ref(node):
    async with open_raw(node.url()) as c:
        await c.send(["1", "1", "lobby", "phx_join", {}])
        assert await c.recv() == [
            None,
            "1",
            "lobby",
            "phx_reply",
            {"status": "error", "response": {"reason": "unmatched topic"}},
        ]
        await c.send(["9", "2", "room:9", "new_msg", {"id": "x"}])  # never joined
        assert await c.recv() == [
            None,
            "2",
            "room:9",
            "phx_reply",
            {"status": "error", "response": {"reason": "unmatched topic"}},
        ]


async def test_push_reply_broadcast_and_idempotent_publish(node):
    async with open_raw(node.url()) as a, open_raw(node.url()) as b:
        ja, _ = await a.join("room:1")
        _jb, _ = await b.join("room:1")
        await b.recv()  # welcome
        reply = await a.push("room:1", ja, "new_msg", {"id": "m1", "body": "hi", "seq": 1})
        assert reply[4] == {"status": "ok", "response": {"id": "m1"}}
        assert await b.recv() == [
            None,
            None,
            "room:1",
            "new_msg",
            {"id": "m1", "body": "hi", "seq": 1},
        ]
        again = await a.push("room:1", ja, "new_msg", {"id": "m1", "body": "hi", "seq": 1})
        assert again[4] == {"status": "ok", "response": {"id": "m1"}}
        history = await a.push("room:1", ja, "history", {})
        assert history[4]["response"] == {"messages": [{"id": "m1", "body": "hi", "seq": 1}]}
        await b.no_frame()  # the repeated id was not broadcast again


async def test_sender_receives_its_own_broadcast_but_not_broadcast_from(node):
    async with open_raw(node.url()) as a, open_raw(node.url()) as b:
        ja, _ = await a.join("room:1")
        await a.recv()  # welcome
        _jb, _ = await b.join("room:1")
        await b.recv()
        ref = a.ref()
        await a.send([ja, ref, "room:1", "shout", {"x": 1}])
        assert (await a.recv())[3] == "phx_reply"
        assert await b.recv() == [None, None, "room:1", "shout", {"x": 1}]
        await a.no_frame()


async def test_invalid_new_msg_is_an_error_reply(node):
    async with open_raw(node.url()) as c:
        jr, _ = await c.join("room:1")
        reply = await c.push("room:1", jr, "new_msg", {"body": "no id"})
        assert reply[4]["status"] == "error"


async def test_duplicate_join_closes_the_old_channel_after_the_new_reply(node):
    async with open_raw(node.url()) as c:
        await c.join("room:1")  # join_ref "1"
        await c.recv()  # welcome
        await c.send(["2", "2", "room:1", "phx_join", {}])
        frames = [await c.recv(), await c.recv()]
        assert frames[0] == [
            "2",
            "2",
            "room:1",
            "phx_reply",
            {"status": "ok", "response": {"node": "n1"}},
        ]
        assert frames[1] == ["1", "1", "room:1", "phx_close", {}]
        assert node.node.pubsub.subscriber_counts() == {"room:1": 1}


async def test_stale_join_ref_is_dropped_without_reply(node):
    async with open_raw(node.url()) as c:
        await c.join("room:1")
        await c.recv()
        await c.send(["1", "9", "room:1", "ping", {}])
        assert (await c.recv())[3] == "phx_reply"
        await c.send(["old", "10", "room:1", "ping", {}])
        await c.no_frame()
        await c.send([None, "11", "room:1", "ping", {}])  # a null join_ref is accepted (1.8.12)
        assert (await c.recv())[:2] == ["1", "11"]


async def test_leave_replies_ok_then_phx_close_and_unknown_leave_is_ok(node):
    async with open_raw(node.url()) as c:
        jr, _ = await c.join("room:1")
        await c.recv()
        await c.send([jr, "5", "room:1", "phx_leave", {}])
        assert await c.recv() == [jr, "5", "room:1", "phx_reply", {"status": "ok", "response": {}}]
        assert await c.recv() == [jr, jr, "room:1", "phx_close", {}]
        await c.send(["77", "6", "room:2", "phx_leave", {}])
        assert await c.recv() == [
            "77",
            "6",
            "room:2",
            "phx_reply",
            {"status": "ok", "response": {}},
        ]
        assert node.node.pubsub.subscriber_counts() == {}


async def test_channel_crash_sends_phx_error_and_frees_the_topic(node):
    async with open_raw(node.url()) as c:
        jr, _ = await c.join("room:1")
        await c.recv()
        await c.send([jr, "9", "room:1", "crash", {}])
        assert await c.recv() == [jr, jr, "room:1", "phx_error", {"reason": "channel_crash"}]
        await c.send([jr, "10", "room:1", "ping", {}])
        assert (await c.recv())[4]["response"] == {"reason": "unmatched topic"}
        await c.send([jr, "11", "room:1", "no_such_event", {}])  # like a missing handle_in clause
        assert (await c.recv())[4]["response"] == {"reason": "unmatched topic"}


async def test_unknown_event_crashes_the_channel(node):
    async with open_raw(node.url()) as c:
        jr, _ = await c.join("room:1")
        await c.recv()
        await c.send([jr, "9", "room:1", "no_such_event", {}])
        assert await c.recv() == [jr, jr, "room:1", "phx_error", {"reason": "channel_crash"}]


async def test_stop_replies_then_phx_close(node):
    async with open_raw(node.url()) as c:
        jr, _ = await c.join("room:1")
        await c.recv()
        await c.send([jr, "9", "room:1", "stop", {}])
        assert (await c.recv())[3] == "phx_reply"
        assert await c.recv() == [jr, jr, "room:1", "phx_close", {}]


async def test_the_101st_channel_is_refused(node):
    async with open_raw(node.url()) as c:
        for i in range(100):
            ref = str(i + 1)
            await c.send([ref, ref, f"room:{i}", "phx_join", {}])
        replies = await c.recv_until(lambda f: f[1] == "100" and f[3] == "phx_reply", timeout=10)
        assert sum(1 for f in replies if f[3] == "phx_reply" and f[4]["status"] == "ok") == 100
        await c.send(["101", "101", "room:extra", "phx_join", {}])
        frames = await c.recv_until(lambda f: f[1] == "101")
        assert frames[-1][4] == {
            "status": "error",
            "response": {"reason": "too many channels joined"},
        }


async def test_dedupe_intercept_skips_ids_already_pushed(node):
    async with open_raw(node.url()) as a, open_raw(node.url()) as b:
        ja, _ = await a.join("room:1")
        await a.recv()
        jb, _ = await b.join("room:1", {"dedupe": True})
        await b.recv()
        await a.push("room:1", ja, "new_msg", {"id": "m1"})
        # intercepted: a per-client push carrying b's join_ref instead of the fastlane broadcast
        assert await b.recv() == [jb, None, "room:1", "new_msg", {"id": "m1", "seq": 1}]
        node.node.pubsub.broadcast("room:1", "new_msg", {"id": "m1"})  # a replay of the same id
        await a.push("room:1", ja, "new_msg", {"id": "m2"})
        assert await b.recv() == [jb, None, "room:1", "new_msg", {"id": "m2", "seq": 2}]


async def test_a_join_with_since_is_caught_up_from_the_store_then_live_in_order(node):
    """Every broadcast carries its position (`seq`); a join with `since` gets the stored
    messages after it, then the live ones, each once (a live one the replay had is skipped)."""
    async with open_raw(node.url()) as a, open_raw(node.url()) as b:
        ja, _ = await a.join("room:1")
        await a.recv()
        for n in (1, 2, 3):
            await a.push("room:1", ja, "new_msg", {"id": f"m{n}"})
        jb, _ = await b.join("room:1", {"since": 1})
        frames = await b.recv_until(lambda f: f[3] == "new_msg" and f[4]["seq"] == 3)
        assert [f[4] for f in frames if f[3] == "new_msg"] == [
            {"id": "m2", "seq": 2},
            {"id": "m3", "seq": 3},
        ]
        node.node.pubsub.broadcast("room:1", "new_msg", {"id": "m3", "seq": 3})  # again: skipped
        await a.push("room:1", ja, "new_msg", {"id": "m4"})
        assert await b.recv() == [jb, None, "room:1", "new_msg", {"id": "m4", "seq": 4}]
        refused = await b.join("room:2", {"since": "x"})
        assert refused[1][4]["status"] == "error"


async def test_recurring_push_goes_to_one_client_and_stops_on_leave(node):
    async with open_raw(node.url()) as a, open_raw(node.url()) as b:
        ja, _ = await a.join("room:1", {"tick_ms": 20})
        _jb, _ = await b.join("room:1")
        ticks = await a.recv_until(lambda f: f[3] == "tick" and f[4]["n"] == 3)
        assert all(f[0] == ja for f in ticks if f[3] == "tick")
        await b.recv()  # welcome only
        await b.no_frame(within=0.1)
        await a.send([ja, "99", "room:1", "phx_leave", {}])
        await a.recv_until(lambda f: f[3] == "phx_close")
        await a.no_frame(within=0.1)


async def test_kick_ends_the_users_other_sockets_with_1001_and_nobody_elses(start_node):
    from server_under_test._auth import sign

    node = await start_node(secret="s3cret")
    me, other = sign("s3cret", "42"), sign("s3cret", "7")
    async with (
        open_raw(node.url(token=me)) as mine,
        open_raw(node.url(token=me)) as my_other_tab,
        open_raw(node.url(token=other)) as stranger,
    ):
        jr, _ = await stranger.join("room:1")
        refused = await stranger.push("room:1", jr, "kick", {"user_id": "42"})
        assert refused[4] == {
            "status": "error",
            "response": {"reason": "you may only kick yourself"},
        }
        jr, _ = await mine.join("room:1")
        await mine.send([jr, "9", "room:1", "kick", {"user_id": "42"}])  # it ends mine too
        assert await my_other_tab.closed() == 1001
        jr, _ = await stranger.join("room:2")  # the stranger was not kicked
        assert (await stranger.push("room:2", jr, "ping", {}))[4]["status"] == "ok"


async def test_v1_object_frames_without_vsn(node):
    async with open_raw(node.url(vsn=None)) as c:
        await c.send({"topic": "room:1", "event": "phx_join", "payload": {}, "ref": "1"})
        reply = await c.recv()
        assert reply == {
            "topic": "room:1",
            "event": "phx_reply",
            "payload": {"status": "ok", "response": {"node": "n1"}},
            "ref": "1",
        }
        await c.send(
            {"topic": "room:1", "event": "ping", "payload": {}, "ref": "2", "join_ref": "1"}
        )
        frames = await c.recv_until(lambda f: f["ref"] == "2")
        assert frames[-1]["payload"]["status"] == "ok"


async def test_binary_push_gets_a_reply(node):
    async with open_raw(node.url()) as c:
        _jr, _ = await c.join("room:1")
        await c.recv()
        # kind 0, join_ref "1", ref "2", topic, event "echo", raw payload
        topic, event = b"room:1", b"echo"
        frame = bytes([0, 1, 1, len(topic), len(event)]) + b"12" + topic + event + b"\x01\x02"
        await c.send(frame)
        reply = await c.recv()
        # kind 1 reply: join_ref, ref, topic, status, payload
        assert reply == bytes([1, 1, 1, len(topic), 2]) + b"12" + topic + b"ok" + b"\x01\x02"


@pytest.mark.parametrize(
    "frame",
    ["not json", "[1,2,3]", '{"a": 1}', json.dumps([1, "1", "room:1", "x", {}]), b"\x07garbage"],
)
async def test_malformed_frame_closes_with_1011(node, frame):
    async with open_raw(node.url()) as c:
        await c.send(frame)
        assert await c.closed() == 1011


async def test_oversized_frame_closes_with_1009(start_node):
    small = await start_node(max_frame_size=1000)
    async with open_raw(small.url()) as c:
        await c.send(json.dumps([None, "1", "phoenix", "heartbeat", {"pad": "x" * 5000}]))
        assert await c.closed() == 1009


async def test_idle_socket_is_closed_with_1001(start_node):
    quick = await start_node(idle_timeout=0.2)
    async with open_raw(quick.url()) as c:
        assert await c.closed() == 1001


@pytest.mark.parametrize("vsn", ["3.0.0", "2.1.0", "garbage"])
async def test_unsupported_vsn_is_refused_with_403(node, vsn):
    with pytest.raises(ConnectionRejected) as info:
        async with open_raw(node.url(vsn=vsn)):
            pass
    assert info.value.status_code == 403


async def test_health_and_stats_share_the_websocket_port(node):
    assert await get_json("127.0.0.1", node.port, "/health") == (
        200,
        {"status": "ok", "node": "n1"},
    )
    async with open_raw(node.url()) as c:
        await c.join("room:1")
        status, stats = await get_json("127.0.0.1", node.port, "/stats")
    assert status == 200
    assert stats["sockets"] == 1
    assert stats["channels"] == {"room:1": 1}
    assert stats["pubsub"]["adapter"] == "mesh"
    assert (await get_json("127.0.0.1", node.port, "/nope"))[0] == 404


async def test_drain_closes_sockets_with_1012_and_health_goes_503(node):
    async with open_raw(node.url()) as c:
        await c.join("room:1")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.node.drain)
            assert await c.closed() == 1012


async def test_bug_duplicate_after_rejoin_replays_history(start_node):
    buggy = await start_node(bugs=("duplicate_after_rejoin",))
    async with open_raw(buggy.url()) as c:
        jr, _ = await c.join("room:1")
        await c.recv()
        await c.push("room:1", jr, "new_msg", {"id": "m1"})
        await c.send([jr, "50", "room:1", "phx_leave", {}])
        await c.recv_until(lambda f: f[3] == "phx_close")
        jr2, _ = await c.join("room:1")
        frames = await c.recv_until(lambda f: f[3] == "new_msg")
        assert frames[-1] == [jr2, None, "room:1", "new_msg", {"id": "m1"}]


async def test_a_burst_of_pushes_in_one_write_reaches_everyone_once_in_order(node):
    """Frames that arrive together are handled under the outbox cork (`_outbox.Cork`): what they
    broadcast is held and written once a subscriber; nothing may be lost, doubled or reordered,
    and every push still gets its reply."""
    import wsproto
    import wsproto.events as wse

    count = 60
    async with open_raw(node.url()) as b, open_raw(node.url()) as c:
        for sub in (b, c):
            await sub.join("room:burst")
            await sub.recv()  # welcome
        stream = await trio.open_tcp_stream("127.0.0.1", node.port)
        ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        await stream.send_all(
            ws.send(wse.Request(host="127.0.0.1", target="/socket/websocket?vsn=2.0.0"))
        )
        while not any(isinstance(e, wse.AcceptConnection) for e in ws.events()):
            ws.receive_data(await stream.receive_some(65536))
        frames = [["1", "1", "room:burst", "phx_join", {}]]
        frames += [
            ["1", str(i + 2), "room:burst", "new_msg", {"id": f"b{i}"}] for i in range(count)
        ]
        await stream.send_all(b"".join(ws.send(wse.TextMessage(json.dumps(f))) for f in frames))
        for sub in (b, c):
            got = [(await sub.recv())[4]["id"] for _ in range(count)]
            assert got == [f"b{i}" for i in range(count)]
            await sub.no_frame()
        replies: list[str] = []
        with trio.fail_after(5):
            while len(replies) < count + 1:
                ws.receive_data(await stream.receive_some(65536))
                for event in ws.events():
                    if isinstance(event, wse.TextMessage):
                        frame = json.loads(event.data)
                        if frame[3] == "phx_reply":
                            replies.append(frame[1])
        assert replies == [str(i + 1) for i in range(count + 1)]
        await stream.aclose()
