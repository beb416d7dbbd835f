"""The broadcast proxy: its framings cut any byte stream into the frames it was made of, the
rules take the broadcasts they select, and through real sockets every byte passes untouched
unless a rule takes a broadcast (drop, duplicate, reorder, delay)."""

from __future__ import annotations

import random
from functools import partial

import orjson
import pytest
import trio

from harness.broadcast_proxy import Route, Rule, open_broadcast_proxy
from harness.broadcast_proxy._framing import Broadcast, MeshFramer, RespFramer
from harness.broadcast_proxy._rules import Rules


def mesh_line(origin: str, topic: str, n: int) -> bytes:
    payload = {"id": f"m{n}", "body": "x" * (n % 7)}
    line = {"from": origin, "topic": topic, "event": "new_msg", "payload": payload}
    return orjson.dumps(line) + b"\n"


def resp(*items: bytes) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(b"$%d\r\n%s\r\n" % (len(i), i) for i in items)


def cut_anywhere(data: bytes, rng: random.Random) -> list[bytes]:
    pieces, at = [], 0
    while at < len(data):
        step = rng.randint(1, 40)
        pieces.append(data[at : at + step])
        at += step
    return pieces


MESH = b"".join(
    [b'{"hello":"n1","boot":"b1"}\n', b'{"interest":["room:1"]}\n']
    + [mesh_line("n1", f"room:{n % 2}", n) for n in range(30)]
    + [b'{"subscribe":"room:9"}\n']
)
ENVELOPES = [
    orjson.dumps({"from": "n1", "topic": "room:1", "event": "e", "payload": n}) for n in range(20)
]
RESP = (
    resp(b"SUBSCRIBE", b"phx:reference")
    + b"".join(resp(b"message", b"phx:reference", e) for e in ENVELOPES)
    + b":3\r\n+OK\r\n$-1\r\n*-1\r\n-ERR no\r\n"
    + b"".join(resp(b"PUBLISH", b"phx:reference", e) for e in ENVELOPES)
)


@pytest.mark.parametrize("seed", range(20))
def test_the_framings_give_back_every_byte_cut_anywhere(seed):
    rng = random.Random(seed)
    for framer, data, broadcasts in ((MeshFramer(), MESH, 30), (RespFramer(), RESP, 40)):
        frames = [f for piece in cut_anywhere(data, rng) for f in framer.feed(piece)]
        assert b"".join(f.raw for f in frames) == data
        found = [f.broadcast for f in frames if f.broadcast is not None]
        assert len(found) == broadcasts
        assert {b.origin for b in found} == {"n1"}


def test_a_broadcast_says_where_it_comes_from_and_what_it_is():
    (frame,) = MeshFramer().feed(mesh_line("n2", "room:7", 1))
    assert frame.broadcast == Broadcast("n2", "room:7", "new_msg")
    (frame,) = RespFramer().feed(resp(b"message", b"phx:x", b"\x83h\x06erlang-term"))
    assert frame.broadcast == Broadcast(None, None, None)  # a real Phoenix node's envelope
    (frame,) = RespFramer().feed(resp(b"GET", b"key"))
    assert frame.broadcast is None


def test_what_is_not_its_framing_passes_opaque_and_whole():
    framer = RespFramer()
    data = b">3\r\nRESP3 push or garbage\r\n\x00\xff"
    assert b"".join(f.raw for f in framer.feed(data)) == data
    assert framer.opaque
    assert [f.raw for f in framer.feed(b"more")] == [b"more"]
    mesh = MeshFramer(limit=100)
    long = b"{" + b"x" * 200
    assert b"".join(f.raw for f in mesh.feed(long)) == long
    assert mesh.opaque


def test_rules_take_every_nth_the_first_n_or_with_a_seeded_probability():
    b = Broadcast("n1", "room:1", "new_msg")

    def taken(rule: Rule, n: int = 30) -> list[int]:
        rules = Rules()
        rules.add(rule)
        return [i for i in range(n) if rules.decide(b, "n2") is not None]

    assert taken(Rule("f1", "drop", every=10)) == [9, 19, 29]
    assert taken(Rule("f1", "drop", first=2)) == [0, 1]
    one = taken(Rule("f1", "drop", probability=0.5, seed=7), 200)
    assert one == taken(Rule("f1", "drop", probability=0.5, seed=7), 200)  # seeded: replays
    assert 60 < len(one) < 140
    assert taken(Rule("f1", "drop", directions=frozenset({"n3->n2"}))) == []
    assert len(taken(Rule("f1", "drop", directions=frozenset({"n1->n2"}), topic="room:*"))) == 30
    assert taken(Rule("f1", "drop", topic="lobby")) == []
    assert taken(Rule("f1", "drop", event="other")) == []
    unknown = Rules()
    unknown.add(Rule("f1", "drop", directions=frozenset({"n1->n2"})))
    assert unknown.decide(Broadcast(None, None, None), "n2") is not None  # its receiver matches
    assert unknown.decide(Broadcast(None, None, None), "n3") is None


async def through_proxy(rule: Rule | None, data: bytes, pieces: int = 7) -> bytes:
    """`data` sent by a dialer through a mesh route of the proxy; what the listener got."""
    got: list[bytes] = []
    done = trio.Event()

    async def serve(stream: trio.SocketStream) -> None:
        async with stream:
            while chunk := await stream.receive_some(65536):
                got.append(chunk)
        done.set()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
        upstream = listeners[0].socket.getsockname()[:2]
        async with open_broadcast_proxy([Route("n1->n2", upstream, "mesh")]) as proxy:
            if rule is not None:
                proxy.add_rule(rule)
            stream = await trio.open_tcp_stream(*proxy.addresses["n1->n2"])
            size = len(data) // pieces + 1
            for at in range(0, len(data), size):
                await stream.send_all(data[at : at + size])
            await stream.aclose()
            with trio.fail_after(5):
                await done.wait()
        nursery.cancel_scope.cancel()
    return b"".join(got)


def lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


async def test_with_no_rule_every_byte_passes_as_it_came():
    assert await through_proxy(None, MESH) == MESH


async def test_drop_duplicate_reorder_and_delay_take_single_broadcasts():
    sent = lines(MESH)
    broadcasts = [line for line in sent if line.startswith(b'{"from"')]
    dropped = await through_proxy(Rule("f1", "drop", every=5), MESH)
    assert lines(dropped) == [line for line in sent if line not in broadcasts[4::5]]
    doubled = lines(await through_proxy(Rule("f1", "duplicate", first=2), MESH))
    assert doubled.count(broadcasts[0]) == doubled.count(broadcasts[1]) == 2
    assert len(doubled) == len(sent) + 2
    reordered = lines(await through_proxy(Rule("f1", "reorder", first=1), MESH))
    assert sorted(reordered) == sorted(sent)
    # the first broadcast (room:0) went right after the next one of n1 on room:0
    assert reordered.index(broadcasts[0]) == reordered.index(broadcasts[2]) + 1
    delayed = await through_proxy(Rule("f1", "delay", first=3, delay=0.05), MESH)
    assert delayed == MESH  # in order: what follows a delayed broadcast waits behind it


async def test_redis_echoing_a_nodes_own_publish_is_not_taken():
    """On n1's link to Redis the pushes are what n1 receives; the one of n1's own publish is
    Redis's echo (n1 drops it, as phoenix_pubsub_redis does): no rule takes it, none counts it."""
    own = resp(
        b"message",
        b"phx:rooms",
        orjson.dumps({"from": "n1", "topic": "room:1", "event": "new_msg"}),
    )
    other = resp(
        b"message",
        b"phx:rooms",
        orjson.dumps({"from": "n2", "topic": "room:1", "event": "new_msg"}),
    )
    pushed = own + other + own + other

    async def redis(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.send_all(pushed)

    got = bytearray()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, redis, 0, host="127.0.0.1"))
        upstream = listeners[0].socket.getsockname()[:2]
        async with open_broadcast_proxy([Route("n1->redis", upstream, "resp")]) as proxy:
            taken = proxy.add_rule(Rule("f1", "drop", every=1))
            stream = await trio.open_tcp_stream(*proxy.addresses["n1->redis"])
            with trio.fail_after(5):
                while len(got) < len(own + own):
                    got += await stream.receive_some(65536)
            await stream.aclose()
        nursery.cancel_scope.cancel()
    assert bytes(got) == own + own  # n2's were dropped; the echoes passed
    assert (taken.matched, taken.taken) == (2, 2)
