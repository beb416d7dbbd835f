"""The fan-out baseline for `bench/fanout.py`: a `websockets` (asyncio) server that speaks just
enough Phoenix V2 to be measured like the reference node: `phx_join` is answered `ok`, adds the
socket to the topic and is greeted with a `welcome` push (as the reference app does); `new_msg`
is answered `ok` and sent to every joined socket with `websockets.broadcast()` (the library's
own fan-out: one frame built, written to each socket without awaiting), as
`[null, null, topic, "new_msg", payload]`. No store, no PubSub: a floor the
reference server, which does both, is compared against.

    python bench/_ws_broadcast.py PORT    (prints "ready" when listening on 127.0.0.1:PORT)
"""

from __future__ import annotations

import asyncio
import sys
from collections import defaultdict

import orjson
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

TOPICS: defaultdict[str, set[ServerConnection]] = defaultdict(set)


async def handler(ws: ServerConnection) -> None:
    joined: list[str] = []
    try:
        async for message in ws:
            join_ref, ref, topic, event, payload = orjson.loads(message)[:5]
            reply = {"status": "ok", "response": {}}
            await ws.send(orjson.dumps([join_ref, ref, topic, "phx_reply", reply]).decode())
            if event == "phx_join":  # the reference app greets each join with a push too
                await ws.send(orjson.dumps([join_ref, None, topic, "welcome", {}]).decode())
                TOPICS[topic].add(ws)
                joined.append(topic)
            elif event == "new_msg":
                frame = orjson.dumps([None, None, topic, "new_msg", payload]).decode()
                broadcast(TOPICS[topic], frame)
    except ConnectionClosed:
        pass  # the benchmark's receivers hang up without a close frame
    finally:
        for topic in joined:
            TOPICS[topic].discard(ws)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=None):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
