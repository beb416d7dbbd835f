"""A two-node exchange: the smallest end-to-end proof that the pieces fit.

Starts two reference nodes as real processes (a mesh, one shared SQLite store), joins one client
to `room:demo` on each, publishes from the client on n2 and watches the client on n1 receive it
over the PubSub link; then kills n1, restarts it on the same port, and shows the client rejoin.
Returns the lines to print; the CLI prints them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from .cluster import LocalNode, mesh_specs, wait_links
from .phoenix import Broadcast, Join, Push, Reply, Role, V2JSONCodec

CODEC = V2JSONCodec()


async def _join(ws: WebSocketConnection, topic: str, ref: str) -> None:
    await ws.send_message(CODEC.encode(Join(topic, {}, ref, ref)))
    while True:
        event = CODEC.decode(await ws.get_message(), sender=Role.SERVER)
        if isinstance(event, Reply) and event.ref == ref:
            if event.status != "ok":
                raise RuntimeError(f"join refused: {event.response}")
            return


async def run_demo(say: Callable[[str], None], workdir: Path | None = None) -> None:
    root = Path(workdir or tempfile.mkdtemp(prefix="harness-demo-"))
    specs = mesh_specs(["n1", "n2"], store=f"sqlite:///{root / 'store.sqlite'}")
    nodes = [LocalNode(s, root / "logs" / f"{s.name}.log") for s in specs]
    try:
        for node in nodes:
            await node.start()
            say(f"started {node.name} on {node.url} (log: {node.log_path})")
        n1, n2 = nodes
        await wait_links({n.name: n for n in nodes}, "up", [("n1", "n2"), ("n2", "n1")])
        say("PubSub links n1->n2 and n2->n1 are up")
        async with (
            open_websocket_url(n1.url + "/websocket?vsn=2.0.0") as listener,
            open_websocket_url(n2.url + "/websocket?vsn=2.0.0") as publisher,
        ):
            await _join(listener, "room:demo", "1")
            await _join(publisher, "room:demo", "1")
            say("a client on n1 and a client on n2 joined room:demo")
            received: list[str] = []
            with trio.fail_after(10):
                for i in range(1, 6):
                    push = Push(
                        "room:demo",
                        "new_msg",
                        {"id": f"m{i}", "body": f"hello {i}"},
                        str(i + 1),
                        "1",
                    )
                    await publisher.send_message(CODEC.encode(push))
                while len(received) < 5:
                    event = CODEC.decode(await listener.get_message(), sender=Role.SERVER)
                    if isinstance(event, Broadcast) and event.event == "new_msg":
                        received.append(event.payload["id"])
                        say(f"  n1 client received {event.payload} (published on n2)")
        n1.kill()
        say(f"killed n1 (exit {await n1.wait_exit()}); restarting it on the same port")
        await n1.start()
        async with open_websocket_url(n1.url + "/websocket?vsn=2.0.0") as again:
            await _join(again, "room:demo", "9")
            ref = "10"
            await again.send_message(CODEC.encode(Push("room:demo", "history", {}, ref, "9")))
            while True:
                event = CODEC.decode(await again.get_message(), sender=Role.SERVER)
                if isinstance(event, Reply) and event.ref == ref:
                    ids = [m["id"] for m in event.response["messages"]]
                    say(f"after the kill, n1 still serves the room's history from the store: {ids}")
                    break
        say("demo finished: the full scenario runner replaces this in `harness run`")
    finally:
        with trio.CancelScope(shield=True):
            for node in nodes:
                await node.stop()
