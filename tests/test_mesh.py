"""The reference mesh's dialer against a peer that is not there (issue 31): behind a Toxiproxy
listener whose upstream is down, the connect succeeds and the proxy closes at once. A link is up
only once the peer answers the hello, so such a connect never resets the backoff: the dialer
makes a handful of attempts a second, not thousands (it made ~2,000 a second before)."""

from __future__ import annotations

from functools import partial

import trio

from server_under_test._bugs import Bugs
from server_under_test._mesh import MeshPubSub


async def test_the_dialer_backs_off_from_a_listener_that_accepts_and_closes():
    accepted = 0

    async def close_at_once(stream: trio.SocketStream) -> None:
        nonlocal accepted
        accepted += 1
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, host="127.0.0.1"), close_at_once, 0)
        port = listeners[0].socket.getsockname()[1]
        mesh = MeshPubSub("n1", peers={"n2": ("127.0.0.1", port)}, listen=None, bugs=Bugs())
        await nursery.start(mesh.serve)
        await trio.sleep(3.0)  # a fixed window to count in, not a wait for a condition
        nursery.cancel_scope.cancel()
    link = mesh.snapshot()["links"]["n2"]
    assert link["state"] != "up"
    assert link["connects"] == 0  # never counted as up
    assert 3 <= accepted <= 30, accepted  # it retries, at most ~10 a second
    assert link["attempts"] == accepted
