"""The reference mesh's dialer against a peer that is not there (issue 31): behind a Toxiproxy
listener whose upstream is down, the connect succeeds and the proxy closes at once. A link is up
only once the peer answers the hello, so such a connect never resets the backoff: the dialer
makes a handful of attempts a second, not thousands (it made ~2,000 a second before). A peer
that comes back dials in, and that cuts the backoff short: redialed at once."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import trio

from server_under_test._bugs import Bugs
from server_under_test._mesh import MeshPubSub
from server_under_test._pubsub import BACKOFF_MAX, BACKOFF_START, Backoff


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


async def test_a_backoff_grows_to_its_cap_and_a_sign_of_life_cuts_it_short(autojump_clock):
    backoff = Backoff()
    start = trio.current_time()
    for _ in range(8):
        await backoff.wait()
    assert backoff.delay == BACKOFF_MAX
    waited = trio.current_time() - start
    assert waited == sum(min(BACKOFF_START * 2**i, BACKOFF_MAX) for i in range(8))
    backoff.wake()
    before = trio.current_time()
    await backoff.wait()  # returns at once, and starts over from the shortest delay
    assert trio.current_time() == before
    assert (backoff.delay, backoff.woken) == (BACKOFF_START, 1)


async def until(condition: Callable[[], bool], deadline: float = 30.0) -> None:
    with trio.fail_after(deadline):
        while not condition():  # noqa: ASYNC110 - state the mesh's own tasks change
            await trio.sleep(0.01)


async def test_a_peer_that_comes_back_is_redialed_when_it_dials_in():
    """n1 has backed off from n2 (nothing listens there); n2 starts and dials n1: n1's hello
    from n2 wakes n1's dialer, which links to n2 without waiting out its backoff."""
    with trio.socket.socket() as probe:  # a port nothing listens on, for now
        await probe.bind(("127.0.0.1", 0))
        n2_port = probe.getsockname()[1]
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        n1_port = probe.getsockname()[1]
    n1 = MeshPubSub(
        "n1", peers={"n2": ("127.0.0.1", n2_port)}, listen=("127.0.0.1", n1_port), bugs=Bugs()
    )
    n2 = MeshPubSub(
        "n2", peers={"n1": ("127.0.0.1", n1_port)}, listen=("127.0.0.1", n2_port), bugs=Bugs()
    )
    link = n1.links["n2"]
    async with trio.open_nursery() as nursery:
        await nursery.start(n1.serve)
        await until(lambda: link.backoff.delay == BACKOFF_MAX)
        await nursery.start(n2.serve)
        await until(lambda: link.state == n2.links["n1"].state == "up")
        nursery.cancel_scope.cancel()
    assert link.backoff.woken >= 1
    assert link.connects == 1
