"""Server fan-out: `python bench/fanout.py [--subscribers 500] [--messages 200]`.

One reference node (a real process), `--subscribers` receivers on one topic and one publisher
pushing `--messages` new_msg. Receivers are raw sockets that parse only websocket frame headers
and count frames, so the server, not the client, is what is measured. Two runs, same process:

* fastlane: each broadcast is encoded once (JSON and frame) and the same bytes go to every
  subscriber (what the server does for ordinary broadcasts);
* intercepted: the receivers join with {"dedupe": true}, so `new_msg` goes through each
  channel's handle_out and is encoded once per subscriber;
* websockets: the baseline, `bench/_ws_broadcast.py`, a `websockets` asyncio server (its own
  process, like the node) that answers joins and sends each `new_msg` to the room with
  `websockets.broadcast()`, the library's one-frame-for-all fan-out, with no store and no PubSub.

Prints deliveries/s for each and the ratios to the websockets baseline (each the best of
`--repeat` runs: the box is shared and noisy). Bounded in count and time; loopback only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
import wsproto
import wsproto.events as wse

from harness._process import free_ports
from harness.cluster import LocalNode, NodeSpec


async def receiver(
    port: int, params: dict[str, Any], expected: int, ready: trio.Semaphore, done: list[float]
) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    await stream.send_all(
        ws.send(wse.Request(host="127.0.0.1", target="/socket/websocket?vsn=2.0.0"))
    )
    accepted = False
    while not accepted:
        ws.receive_data(await stream.receive_some(65536))
        accepted = any(isinstance(e, wse.AcceptConnection) for e in ws.events())
    join = json.dumps(["1", "1", "room:fan", "phx_join", params])
    await stream.send_all(ws.send(wse.TextMessage(data=join)))
    frames, buffer = 0, b""
    ready.release()
    target = expected + 2  # the join reply and the welcome push come first
    while frames < target:
        data = await stream.receive_some(1 << 20)
        if not data:
            break
        buffer += data
        pos = 0
        while len(buffer) - pos >= 2:  # server frames are unmasked: parse headers, skip payloads
            length, head = buffer[pos + 1] & 0x7F, 2
            if length == 126:
                if len(buffer) - pos < 4:
                    break
                length, head = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if len(buffer) - pos < 10:
                    break
                length, head = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), 10
            if len(buffer) - pos < head + length:
                break
            pos += head + length
            frames += 1
        buffer = buffer[pos:]
    done.append(time.perf_counter())
    await stream.aclose()


async def one_run(port: int, subscribers: int, messages: int, params: dict[str, Any]) -> float:
    ready = trio.Semaphore(0)
    done: list[float] = []
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for _ in range(subscribers):
                nursery.start_soon(receiver, port, params, messages, ready, done)
            for _ in range(subscribers):
                await ready.acquire()
            await trio.sleep(0.5)  # let the joins finish on the server before the clock starts
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
            await stream.send_all(
                ws.send(wse.Request(host="127.0.0.1", target="/socket/websocket?vsn=2.0.0"))
            )
            while not any(isinstance(e, wse.AcceptConnection) for e in ws.events()):
                ws.receive_data(await stream.receive_some(65536))
            await stream.send_all(
                ws.send(wse.TextMessage(data=json.dumps(["p", "p", "room:fan", "phx_join", {}])))
            )
            start = time.perf_counter()
            tag = f"{params.get('dedupe', False)}-{start}"
            out = b"".join(
                ws.send(
                    wse.TextMessage(
                        data=json.dumps(
                            [
                                "p",
                                str(i),
                                "room:fan",
                                "new_msg",
                                {"id": f"{tag}-{i}", "body": "x" * 40},
                            ]
                        )
                    )
                )
                for i in range(messages)
            )
            await stream.send_all(out)
    return subscribers * messages / (max(done) - start)


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    port, pubsub = free_ports(2)
    node = LocalNode(
        NodeSpec(
            "n1",
            "127.0.0.1",
            port,
            pubsub,
            store=f"sqlite:///{root / 'db.sqlite'}",
            extra_args=("--log-level", "WARNING"),
        ),
        root / "n1.log",
    )
    (base_port,) = free_ports(1)
    script = Path(__file__).with_name("_ws_broadcast.py")
    baseline = await trio.lowlevel.open_process(
        [sys.executable, str(script), str(base_port)], stdout=subprocess.PIPE
    )
    await node.start()
    runs: dict[str, list[float]] = {"fastlane": [], "intercepted": [], "websockets": []}
    try:
        assert baseline.stdout is not None
        with trio.fail_after(10):
            assert b"ready" in await baseline.stdout.receive_some(100)
        for _ in range(args.repeat):
            runs["websockets"].append(await one_run(base_port, args.subscribers, args.messages, {}))
            runs["fastlane"].append(await one_run(port, args.subscribers, args.messages, {}))
            runs["intercepted"].append(
                await one_run(port, args.subscribers, args.messages, {"dedupe": True})
            )
    finally:
        await node.stop(graceful=False)
        baseline.kill()
        await baseline.wait()
    best = {name: max(rates) for name, rates in runs.items()}
    base = best["websockets"]
    print(
        f"{args.subscribers} subscribers x {args.messages} messages on one node,"
        f" best of {args.repeat}"
    )
    print(f"baseline, websockets broadcast() server:        {base:,.0f} deliveries/s")
    print(
        f"fastlane (encoded once, same bytes to all):     {best['fastlane']:,.0f} deliveries/s"
        f" ({best['fastlane'] / base:.2f}x the websockets baseline)"
    )
    print(
        f"intercepted (handle_out, encoded per socket):   {best['intercepted']:,.0f} deliveries/s"
        f" ({best['intercepted'] / base:.2f}x)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    trio.run(main, parser.parse_args())
