"""The swarm's receive path: `python bench/receive.py [--subscribers 100] [--rooms 1]`.

One reference node (a real process) and, in this process, `--subscribers` sockets, each joined to
one of `--rooms` rooms (the swarm's plan decides which, and the other modes use the same
rooms); a publisher connection pushes `new_msg`, `--burst` messages into every room, and waits
until every subscriber has had the whole burst before the next (a closed loop, so neither side
can drown the other and both modes are offered exactly the load they can take: the rate it
reaches is the highest each sustains without lag). Measured side by side, same node, same
rooms, same loop:

* raw: wsproto directly on a trio socket, one `receive_some` per wake-up, JSON decode of every
  frame, a counter; no client model, no history, no heartbeats (the floor this path can reach);
* swarm: the swarm's own `InProcessSwarm` clients (`harness.swarm`): the phoenix.js model,
  heartbeats on (every 2 s here), every delivery recorded in a real history file;
* trio-websocket: the same closed loop over `trio_websocket` connections with `get_message`
  and JSON decode (what the swarm used before its own websocket, for the record).

Prints deliveries/s for each, the CPU seconds this process spent per 100,000 deliveries in each
(the publisher's share, the same in every mode, included), and the ratios swarm/raw and
swarm/trio-websocket. One bursty room (`--subscribers 100`) gives each socket many frames a
wake-up; trickle rooms (`--subscribers 2000 --rooms 200 --burst 1`) one frame a wake-up, the
shape of most real runs. Bounded in count and time; loopback only.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import trio
import wsproto
import wsproto.events as wse
from trio_websocket import open_websocket_url

from harness._clock import RunClock
from harness.cluster import LocalNode, mesh_specs
from harness.grammar.behaviour import Endpoint
from harness.infra.gauge import LoadGauge
from harness.run.rundir import HistoryWriter
from harness.scenario import Scenario, parse_scenario, plan_clients
from harness.swarm import InProcessSwarm

TOPIC = "room:bench"  # the room of `--rooms 1`


class Count:
    """Deliveries seen so far, and a wake-up when a target is reached."""

    def __init__(self) -> None:
        self.value = 0
        self.target = 0
        self.reached = trio.Event()

    def add(self, n: int = 1) -> None:
        self.value += n
        if self.value >= self.target:
            self.reached.set()

    async def wait(self, target: int) -> None:
        self.target, self.reached = target, trio.Event()
        if self.value < target:
            await self.reached.wait()


async def raw_subscriber(port: int, topic: str, count: Count, ready: trio.Semaphore) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    await stream.send_all(
        ws.send(wse.Request(host="127.0.0.1", target="/socket/websocket?vsn=2.0.0"))
    )
    while not any(isinstance(e, wse.AcceptConnection) for e in ws.events()):
        ws.receive_data(await stream.receive_some(65536))
    join = orjson.dumps(["1", "1", topic, "phx_join", {}]).decode()
    await stream.send_all(ws.send(wse.TextMessage(data=join)))
    ready.release()
    text = ""
    while True:
        data = await stream.receive_some(1 << 18)
        if not data:
            return
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, wse.TextMessage):
                text += event.data
                if event.message_finished:
                    frame = orjson.loads(text)
                    text = ""
                    if frame[3] == "new_msg":
                        count.add()


async def tws_subscriber(port: int, topic: str, count: Count, ready: trio.Semaphore) -> None:
    async with open_websocket_url(f"ws://127.0.0.1:{port}/socket/websocket?vsn=2.0.0") as ws:
        await ws.send_message(orjson.dumps(["1", "1", topic, "phx_join", {}]).decode())
        ready.release()
        while True:
            frame = orjson.loads(await ws.get_message())
            if frame[3] == "new_msg":
                count.add()


class Publisher:
    """One raw connection that pushes `new_msg` and throws the replies away."""

    def __init__(self, port: int, rooms: list[str]) -> None:
        self.port = port
        self.rooms = rooms
        self.seq = 0
        self.tag = f"bench{time.monotonic_ns()}x{rooms[0]}"  # the store ignores ids it has seen

    async def open(self, nursery: trio.Nursery) -> None:
        self.stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        await self.stream.send_all(
            self.ws.send(wse.Request(host="127.0.0.1", target="/socket/websocket?vsn=2.0.0"))
        )
        while not any(isinstance(e, wse.AcceptConnection) for e in self.ws.events()):
            self.ws.receive_data(await self.stream.receive_some(65536))
        for k, room in enumerate(self.rooms):
            await self._send([str(k + 1), str(k + 1), room, "phx_join", {}])
        nursery.start_soon(self._drain)

    async def _drain(self) -> None:
        while await self.stream.receive_some(1 << 18):
            pass

    async def _send(self, frame: list[object]) -> None:
        await self.stream.send_all(self.ws.send(wse.TextMessage(data=orjson.dumps(frame).decode())))

    async def burst(self, n: int) -> None:
        out = b""
        for k, room in enumerate(self.rooms):
            for _ in range(n):
                self.seq += 1
                message = {"id": f"{self.tag}-p1-{self.seq}", "body": "x" * 16}
                ref = str(self.seq + len(self.rooms))
                frame = orjson.dumps([str(k + 1), ref, room, "new_msg", message]).decode()
                out += self.ws.send(wse.TextMessage(data=frame))
        await self.stream.send_all(out)


async def closed_loop(
    port: int, count: Count, subscribers: int, args: argparse.Namespace
) -> tuple[int, float, float]:
    """Bursts until `seconds` are over; returns deliveries, the time they took and the CPU
    seconds this process spent meanwhile."""
    burst, seconds = args.burst, args.seconds
    async with trio.open_nursery() as nursery:
        every = rooms(args)  # a socket may join 100 channels on the reference server
        publishers = [Publisher(port, every[k : k + 100]) for k in range(0, len(every), 100)]
        for publisher in publishers:
            await publisher.open(nursery)
        await trio.sleep(0.2)  # the publisher's join settles before the first burst
        start_value, start, cpu = count.value, time.perf_counter(), time.process_time()
        rounds = 0
        while time.perf_counter() - start < seconds and rounds < 10_000:
            rounds += 1
            target = start_value + rounds * burst * subscribers
            for publisher in publishers:
                await publisher.burst(burst)
            with trio.fail_after(30):
                await count.wait(target)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        nursery.cancel_scope.cancel()
    return count.value - start_value, elapsed, cpu


def rooms(args: argparse.Namespace) -> list[str]:
    return [TOPIC] if args.rooms == 1 else [f"room:{k}" for k in range(args.rooms)]


def scenario_of(args: argparse.Namespace) -> Scenario:
    return parse_scenario(
        f"name: receive\nduration: 1h\nseed: 1\ncluster: {{nodes: 1}}\n"
        f"clients: {{count: {args.subscribers}, topics: {json.dumps(rooms(args))},"
        " timings: {heartbeat_interval: 2s, timeout: 10s}}\nworkload: {publishers: 0}\n"
    )


Subscriber = Callable[[int, str, Count, trio.Semaphore], Awaitable[None]]
Rate = tuple[float, float]  # deliveries a second, CPU seconds per 100,000 deliveries


async def run_plain(port: int, kind: Subscriber, args: argparse.Namespace) -> Rate:
    count = Count()
    ready = trio.Semaphore(0)
    plan = plan_clients(scenario_of(args), [Endpoint("n1", f"ws://127.0.0.1:{port}/socket")])
    async with trio.open_nursery() as nursery:
        for client in plan.clients:  # the rooms the swarm's clients join
            nursery.start_soon(kind, port, client.topics[0], count, ready)
        with trio.fail_after(60):
            for _ in range(args.subscribers):
                await ready.acquire()
        await trio.sleep(0.3)  # joins answered
        delivered, elapsed, cpu = await closed_loop(port, count, args.subscribers, args)
        nursery.cancel_scope.cancel()
    return delivered / elapsed, cpu / delivered * 1e5


async def run_swarm(port: int, root: Path, args: argparse.Namespace) -> Rate:
    plan = plan_clients(scenario_of(args), [Endpoint("n1", f"ws://127.0.0.1:{port}/socket")])
    clock = RunClock()
    writer = HistoryWriter(root / "history.swarm.jsonl")
    gauge = LoadGauge(writer, clock, "swarm0")
    swarm = InProcessSwarm(plan, writer, clock, gauge)
    count = Count()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(gauge.run)
            await nursery.start(swarm.run)
            await swarm.wait_joined(timeout=60)
            await trio.sleep(0.3)
            base = swarm.stats().received
            count.value = 0

            async def watch() -> None:  # the swarm's own counter, read every millisecond
                while True:
                    received = swarm.stats().received - base
                    if received > count.value:
                        count.add(received - count.value)
                    await trio.sleep(0.001)

            nursery.start_soon(watch)
            delivered, elapsed, cpu = await closed_loop(port, count, args.subscribers, args)
            nursery.cancel_scope.cancel()
    finally:
        writer.close()
    size = (root / "history.swarm.jsonl").stat().st_size
    print(f"  swarm history: {size / 1e6:.1f} MB written for {delivered:,} deliveries")
    return delivered / elapsed, cpu / delivered * 1e5


async def profile_swarm(port: int, root: Path, args: argparse.Namespace) -> None:
    """`--profile`: the swarm mode once under cProfile; the functions that took the most time
    themselves, and per delivery."""
    profile = cProfile.Profile()
    profile.enable()
    rate, _ = await run_swarm(port, root, args)
    profile.disable()
    stats = pstats.Stats(profile)
    total = sum(entry[2] for entry in stats.stats.values())  # type: ignore[attr-defined]
    print(f"swarm under cProfile: {rate:,.0f} deliveries/s; own time of the top functions:")
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    for (file, line, name), (_cc, calls, own, _cum, _callers) in rows[: args.profile]:
        where = f"{Path(file).parent.name}/{Path(file).name}:{line}" if line else file
        print(f"  {own / total:6.1%}  {calls:>9,} calls  {name} ({where})")


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-receive-"))
    (spec,) = mesh_specs(
        ["n1"], store=f"sqlite:///{root / 'store.sqlite'}", extra_args=("--log-level", "WARNING")
    )
    node = LocalNode(spec, root / "logs" / "n1.log")
    await node.start()
    if args.profile:
        try:
            await profile_swarm(node.spec.port, root, args)
        finally:
            with trio.CancelScope(shield=True):
                await node.stop(graceful=False)
        return
    try:
        figures: dict[str, list[Rate]] = {"raw": [], "swarm": [], "trio-websocket": []}
        for rep in range(args.repeat):
            for name in figures:
                if name == "raw":
                    rate = await run_plain(node.spec.port, raw_subscriber, args)
                elif name == "trio-websocket":
                    rate = await run_plain(node.spec.port, tws_subscriber, args)
                else:
                    rate = await run_swarm(node.spec.port, root, args)
                figures[name].append(rate)
                print(
                    f"round {rep + 1}: {name:15} {rate[0]:9,.0f} deliveries/s,"
                    f" {rate[1]:.2f} CPU s per 100k deliveries"
                )
    finally:
        with trio.CancelScope(shield=True):
            await node.stop(graceful=False)
    best = {name: max(rate for rate, _ in rates) for name, rates in figures.items()}
    cpu = {name: min(c for _, c in rates) for name, rates in figures.items()}
    print(
        f"receive path, one process, {args.subscribers} subscribers in {args.rooms} rooms, best"
        f" of {args.repeat}: "
        + ", ".join(
            f"{name} {rate:,.0f}/s ({cpu[name]:.2f} CPU s per 100k)" for name, rate in best.items()
        )
    )
    print(
        f"swarm / raw wsproto loop = {best['swarm'] / best['raw']:.2f}x the rate,"
        f" {cpu['swarm'] / cpu['raw']:.2f}x the CPU per delivery; "
        f"swarm / trio-websocket = {best['swarm'] / best['trio-websocket']:.2f}x the rate "
        f"(CPU count {os.cpu_count()}; artefacts in {root})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rooms", type=int, default=1, help="each subscriber joins one")
    parser.add_argument("--burst", type=int, default=20, help="messages per closed-loop round")
    parser.add_argument("--seconds", type=float, default=5.0, help="per mode and round")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="profile the swarm: print the top N"
    )
    trio.run(main, parser.parse_args())
