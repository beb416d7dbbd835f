"""Hostile clients against the reference server, each with a bystander who must see nothing.

Every probe here once worked (issue: hardening): a page on any site opened a socket, anyone
kicked anyone, the mesh port believed any TCP peer, one non-finite number broke a room's
history for ever, a knob blocked a reader for ever, a lone surrogate ended a socket with a
traceback, a client that never reads stayed "joined" while its messages were thrown away. The
bystander is an honest user joined to the room throughout: it must stay connected, receive
only what was really published, and the room must still read back.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator

import pytest
import trio
from trio_websocket import HandshakeError

from harness.infra.process import free_ports
from server_under_test._auth import mesh_proof, sign
from tests.support.rawclient import RawClient, open_raw

SECRET = "socket-secret"
COOKIE = "cluster-secret"


@pytest.fixture
async def guarded(start_node):
    """A node with tokens, check_origin, a mesh port with one known peer (n2) and a secret."""
    (pubsub_port, peer_port) = free_ports(2)
    return await start_node(
        secret=SECRET,
        cluster_secret=COOKIE,
        pubsub_port=pubsub_port,
        peers={"n2": ("127.0.0.1", peer_port)},
        outbox_limit=200_000,
    )


@pytest.fixture
async def bystander(guarded) -> AsyncIterator[RawClient]:
    async with open_raw(guarded.url(token=sign(SECRET, "bystander"))) as ws:
        jr, _ = await ws.join("room:1")
        await ws.recv_until(lambda f: f[3] == "welcome")
        ws.jr = jr  # type: ignore[attr-defined]
        yield ws


async def unharmed(bystander: RawClient, node) -> None:
    """Still connected, nothing arrived, and the room reads back."""
    await bystander.no_frame(within=0.3)
    reply = await bystander.push("room:1", bystander.jr, "history", {})  # type: ignore[attr-defined]
    assert reply[4]["status"] == "ok", reply


async def test_a_page_on_another_site_cannot_open_a_socket(guarded, bystander):
    url = guarded.url()
    for origin in (b"https://evil.example", b"null", b"http://127.0.0.1.evil.example"):
        with pytest.raises(HandshakeError):
            async with open_raw(url, extra_headers=[(b"origin", origin)]):
                pass
    same_host = f"http://127.0.0.1:{guarded.port}".encode()
    async with open_raw(url, extra_headers=[(b"origin", same_host)]) as ws:
        await ws.join("room:2")
    await unharmed(bystander, guarded)


async def test_a_forged_or_expired_token_is_refused(guarded, bystander):
    forged = sign("not-the-secret", "bystander")
    expired = sign(SECRET, "bystander", max_age=-1)
    for token in (forged, expired, "garbage", forged.split(".")[0] + ".", ""):
        with pytest.raises(HandshakeError):
            async with open_raw(guarded.url(token=token)):
                pass
    await unharmed(bystander, guarded)


async def test_nobody_kicks_a_bystander(guarded, bystander):
    async with (
        open_raw(guarded.url(user_id="bystander")) as claims_to_be,  # a query param is no identity
        open_raw(guarded.url(token=sign(SECRET, "mallory"))) as mallory,
    ):
        for ws in (claims_to_be, mallory):
            jr, _ = await ws.join("room:1")
            reply = await ws.push("room:1", jr, "kick", {"user_id": "bystander"})
            assert reply[4]["status"] == "error"
    await unharmed(bystander, guarded)


async def mesh_send(port: int, *lines: dict) -> bool:
    """Speak the mesh protocol to the node; True if it kept the link open afterwards."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"".join((json.dumps(line) + "\n").encode() for line in lines))
        with trio.move_on_after(0.5):
            try:
                return await stream.receive_some(1) != b""
            except trio.BrokenResourceError:  # a reset: the node closes a link abortively
                return False
        return True


@pytest.mark.parametrize(
    "hello",
    [
        {"hello": "mallory", "boot": "x"},  # not a peer
        {"hello": "n2", "boot": "x"},  # a peer's name, no proof
        {"hello": "n2", "boot": "x", "proof": mesh_proof("wrong", "n2", "x")},
        {"topic": "room:1", "event": "new_msg", "payload": {"id": "forged"}},  # no hello at all
    ],
)
async def test_the_mesh_believes_no_stranger(guarded, bystander, hello):
    port = guarded.node.config.pubsub_port
    forged = {"from": "n2", "topic": "room:1", "event": "new_msg", "payload": {"id": "forged"}}
    kick = {"from": "n2", "topic": "user_socket:bystander", "event": "disconnect", "payload": {}}
    assert not await mesh_send(port, hello, forged, kick), "the node hung up on the stranger"
    await unharmed(bystander, guarded)
    proof = mesh_proof(COOKIE, "n2", "b1")  # the real peer, with the cookie, is believed
    real = {"hello": "n2", "boot": "b1", "proof": proof}
    assert await mesh_send(port, real, {**forged, "payload": {"id": "real"}})
    frames = await bystander.recv_until(lambda f: f[3] == "new_msg")
    assert frames[-1][4] == {"id": "real"}


async def test_a_non_finite_number_never_reaches_the_store(guarded, bystander):
    async with open_raw(guarded.url()) as ws:
        jr, _ = await ws.join("room:1")
        await ws.send(f'["{jr}","9","room:1","new_msg",{{"id":"p","v":1e400}}]')
        assert await ws.closed() == 1011  # malformed frame
    reply = await bystander.push("room:1", bystander.jr, "history", {})  # type: ignore[attr-defined]
    assert reply[4] == {"status": "ok", "response": {"messages": []}}


async def test_knobs_are_bounded(guarded, bystander):
    async with open_raw(guarded.url()) as ws:
        with trio.fail_after(5):
            _, reply = await ws.join("room:2", {"join_delay_ms": 1e308})
        assert reply[4]["status"] == "error", reply
        _, reply = await ws.join("room:3", {"tick_ms": 0.001})
        assert reply[4]["status"] == "error", reply
    await unharmed(bystander, guarded)


async def test_a_lone_surrogate_is_a_protocol_error_not_a_traceback(guarded, bystander, caplog):
    caplog.set_level(logging.WARNING)
    async with open_raw(guarded.url()) as ws:
        await ws.send('["1","1","room:\\ud800","phx_join",{}]')
        assert await ws.closed() == 1011
    assert not [r for r in caplog.records if r.exc_info], "no traceback in the node's log"
    await unharmed(bystander, guarded)


async def test_a_client_that_never_reads_is_dropped(guarded, bystander, caplog):
    caplog.set_level(logging.WARNING)
    sleeper = socket.create_connection(("127.0.0.1", guarded.port))
    sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        sleeper.sendall(
            b"GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        join = b'["1","1","room:1","phx_join",{}]'
        sleeper.sendall(bytes([0x81, 0x80 | len(join)]) + b"\0\0\0\0" + join)  # masked, zero key
        async with open_raw(guarded.url(token=sign(SECRET, "publisher"))) as publisher:
            jr, _ = await publisher.join("room:1")
            body = "x" * 20_000
            with trio.fail_after(30):
                n = 0
                while not any("does not read" in r.getMessage() for r in caplog.records):
                    n += 1
                    await publisher.push("room:1", jr, "new_msg", {"id": f"m{n}", "body": body})
                    frames = await bystander.recv_until(lambda f: f[3] == "new_msg")
                    assert frames[-1][4]["id"] == f"m{n}"  # the bystander keeps up meanwhile
                    assert n < 2_000, "the sleeper was never dropped"
    finally:
        sleeper.close()
    await unharmed(bystander, guarded)
