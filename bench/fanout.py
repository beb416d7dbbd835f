"""Server fan-out: `python bench/fanout.py [--subscribers 500] [--messages 200]`.

One reference node (a real process, its store in memory: with a file, what is timed is the
disk's fsync a message, ~5 ms on this box, not the fan-out), `--subscribers` receivers on one
topic and one publisher pushing `--messages` new_msg in one write. Receivers are raw sockets
in a process of their own (`_fan_receivers.py`: one epoll loop that parses only frame headers
and counts), so the server, not the receivers, is what is measured. Three kinds of run,
alternated:

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

from harness.cluster import LocalNode, NodePlan
from harness.infra.process import free_ports


async def one_run(port: int, subscribers: int, messages: int, params: dict[str, Any]) -> float:
    """Deliveries/s: from the publisher's one write of `messages` new_msg to the moment the last
    subscriber (in `_fan_receivers.py`, a process of its own) had all of them."""
    receivers = await trio.lowlevel.open_process(
        [
            sys.executable,
            str(Path(__file__).with_name("_fan_receivers.py")),
            str(port),
            str(subscribers),
            str(messages + 2),  # the join reply and the welcome push come first
            json.dumps(params),
        ],
        stdout=subprocess.PIPE,
    )
    assert receivers.stdout is not None
    lines = json_free_lines(receivers.stdout)
    try:
        with trio.fail_after(150):
            assert await anext(lines) == "ready"
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
            tag = f"{params.get('dedupe', False)}-{time.monotonic()}"
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
            start = time.monotonic()
            await stream.send_all(out)
            done = await anext(lines)
            await stream.aclose()
    finally:
        with trio.CancelScope(shield=True):
            if receivers.poll() is None:
                receivers.kill()
            await receivers.wait()
    if done == "timeout":
        raise RuntimeError(f"not every subscriber got {messages} messages in 120 s")
    return subscribers * messages / (float(done) - start)


async def json_free_lines(stream: trio.abc.ReceiveStream) -> Any:
    """Lines of text from a child's stdout."""
    pending = b""
    async for chunk in stream:
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line.decode()


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    port, pubsub = free_ports(2)
    node = LocalNode(
        NodePlan(
            "n1",
            "127.0.0.1",
            port,
            pubsub,
            store="sqlite:///:memory:",  # the fan-out, not the disk's fsync a message
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
