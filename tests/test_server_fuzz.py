"""Fuzz the reference server with garbage: the node stays up, only the offending socket is
closed, and a well-behaved client on the same node sees nothing but its own traffic."""

from __future__ import annotations

import json

import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from trio_websocket import ConnectionClosed

from harness.infra.http import get_json
from tests.conftest import in_process_node
from tests.support.rawclient import open_raw

garbage = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300),
    st.lists(
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=10),
            st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
        ),
        max_size=7,
    ).map(json.dumps),
    st.tuples(
        st.none() | st.text(max_size=3),
        st.none() | st.text(max_size=3),
        st.sampled_from(["room:1", "phoenix", "room:2", "x"]),
        st.sampled_from(
            [
                "phx_join",
                "phx_leave",
                "heartbeat",
                "new_msg",
                "history",
                "crash",
                "stop",
                "echo",
                "nope",
                "kick",
            ]
        ),
        st.one_of(
            st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
            st.integers(),
            st.none(),
        ),
    ).map(lambda t: json.dumps(list(t))),
)


@settings(max_examples=60, deadline=None)
@given(frames=st.lists(garbage, min_size=1, max_size=8))
async def test_garbage_never_hurts_the_node_or_other_clients(frames):
    async with in_process_node() as node, open_raw(node.url()) as bystander:
        jr, _ = await bystander.join("room:fuzz")
        await bystander.recv()  # welcome
        close_code = None
        try:
            async with open_raw(node.url()) as attacker:
                for frame in frames:
                    await attacker.send(frame)
                await attacker.send([None, "hb", "phoenix", "heartbeat", {}])
                await attacker.recv_until(lambda f: isinstance(f, list) and f[1] == "hb", timeout=5)
        except ConnectionClosed as exc:
            close_code = exc.reason.code
        assert close_code in {None, 1011, 1001, 1002, 1009}
        # The bystander still works and saw only its own frames.
        reply = await bystander.push("room:fuzz", jr, "ping", {})
        assert reply[4] == {"status": "ok", "response": {}}
        await bystander.no_frame(within=0.05)
        assert (await get_json("127.0.0.1", node.port, "/health"))[0] == 200


async def test_client_that_never_heartbeats_is_dropped_and_others_stay(start_node):
    quick = await start_node(idle_timeout=0.3)
    async with open_raw(quick.url()) as silent, open_raw(quick.url()) as chatty:
        jr, _ = await chatty.join("room:1")
        await chatty.recv()
        code = None
        while code is None:  # keep the chatty client alive with heartbeats until silent is dropped
            await chatty.send([None, "hb", "phoenix", "heartbeat", {}])
            await chatty.recv()
            try:
                await silent.recv(timeout=0.1)
            except ConnectionClosed as exc:
                code = exc.reason.code
            except trio.TooSlowError:
                pass
        assert code == 1001
        assert (await chatty.push("room:1", jr, "ping", {}))[4]["status"] == "ok"
