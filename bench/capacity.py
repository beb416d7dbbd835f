"""Swarm capacity on this machine: `python bench/capacity.py [--clients 5000] [--workers 2]`.

Starts a 3-node reference cluster (real processes, loopback), then measures in one run:

* baseline: bare trio-websocket connect + phx_join for `--baseline` sockets in one process, no
  client model and no history (the cost floor of one handshake + join);
* swarm: `--clients` phoenix.js-like clients over `--workers` processes, seeded over the 3
  nodes: time until every one is connected and joined, and RSS per client;
* receive rate: publishers publish for `--seconds` into rooms of ~100 subscribers; messages
  received per second per worker process.

Prints figures and ratios against the baseline (the machine is shared and noisy: compare ratios,
not absolute numbers). Everything is bounded in count and time and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import trio
from trio_websocket import connect_websocket_url

from harness._clock import RunClock
from harness.cluster import LocalNode, mesh_specs, wait_links
from harness.grammar.behaviour import Endpoint
from harness.phoenix import Join, Reply, Role, V2JSONCodec
from harness.scenario import parse_scenario, plan_clients
from harness.swarm import WorkerSwarm

CODEC = V2JSONCodec()


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (its own threads, not its children)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def baseline(urls: list[str], count: int) -> float:
    """Sockets per second for a bare connect + join, 200 in flight."""
    limiter = trio.CapacityLimiter(200)
    done = 0
    stop = trio.Event()

    async def one(nursery: trio.Nursery, i: int) -> None:
        nonlocal done
        async with limiter:  # only the handshake and the join count against the limit
            url = urls[i % len(urls)] + "/websocket?vsn=2.0.0"
            ws = await connect_websocket_url(nursery, url)
            await ws.send_message(CODEC.encode(Join("room:base", {}, "1", "1")))
            while not isinstance(CODEC.decode(await ws.get_message(), sender=Role.SERVER), Reply):
                pass
        done += 1
        if done == count:
            stop.set()
        await stop.wait()
        await ws.aclose()

    start = time.perf_counter()
    elapsed = 0.0
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for i in range(count):
                nursery.start_soon(one, nursery, i)
            await stop.wait()
            elapsed = time.perf_counter() - start
    return count / elapsed


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    specs = mesh_specs(
        ["n1", "n2", "n3"],
        store=f"sqlite:///{root / 'store.sqlite'}",
        extra_args=("--log-level", "WARNING"),
    )
    nodes = [LocalNode(s, root / "logs" / f"{s.name}.log") for s in specs]
    try:
        for n in nodes:
            await n.start()
        await wait_links(
            {n.name: n for n in nodes},
            "up",
            [(a.name, b.name) for a in nodes for b in nodes if a is not b],
        )
        urls = [n.url for n in nodes]

        base_rate = await baseline(urls, args.baseline)
        print(f"baseline: bare connect+join {args.baseline} sockets: {base_rate:,.0f}/s")

        topics = [f"room:{i}" for i in range(max(1, args.clients // 100))]
        scenario = parse_scenario(
            f"name: capacity\nduration: 1h\nseed: 1\ncluster: {{nodes: {len(nodes)}}}\n"
            f"clients: {{count: {args.clients}, topics: {json.dumps(topics)}}}\n"
            f"workload: {{publishers: {args.workers}, rate: {args.rate}}}\n"
        )
        swarm_nodes = [Endpoint(n.name, n.url) for n in nodes]
        clock = RunClock()
        plan = plan_clients(scenario, swarm_nodes)
        swarm = WorkerSwarm(plan, clock, root / "swarm", workers=args.workers)
        cpu_nodes_before = sum(cpu_seconds(n.pid) for n in nodes)
        async with trio.open_nursery() as nursery:
            start = time.perf_counter()
            await swarm.start(nursery)
            await swarm.wait_joined(timeout=args.join_timeout)
            join_seconds = time.perf_counter() - start
            cpu_workers = sum(cpu_seconds(w.process.pid) for w in swarm.workers)
            cpu_nodes = sum(cpu_seconds(n.pid) for n in nodes) - cpu_nodes_before
            total = args.clients + args.workers
            rate = total / join_seconds
            rss = [rss_kb(w.process.pid) for w in swarm.workers]
            per_client_kb = sum(rss) / total
            print(
                f"swarm: {total} clients connected and joined in {join_seconds:.1f}s "
                f"({rate:,.0f}/s, {rate / base_rate:.2f}x the bare baseline) "
                f"over {args.workers} workers"
            )
            print(
                f"cpu while joining: workers {cpu_workers:.1f}s ({cpu_workers / total * 1e3:.2f}"
                f" ms a client), nodes {cpu_nodes:.1f}s ({cpu_nodes / total * 1e3:.2f} ms a"
                f" client), wall {join_seconds:.1f}s on {os.cpu_count()} cores"
            )
            print(
                f"memory: {sum(rss) / 1024:,.0f} MB RSS in workers, {per_client_kb:.1f} KB per "
                "client (client model, history writer and websocket included)"
            )

            before = swarm.stats().received
            t0 = time.perf_counter()
            await swarm.publish(duration=args.seconds)
            await trio.sleep(args.seconds + 1.0)  # a benchmark measures over a fixed window
            elapsed = time.perf_counter() - t0
            received = swarm.stats().received - before
            published = swarm.stats().published
            room = total // len(topics)
            offered = published * room / args.seconds
            per_worker = received / elapsed / args.workers
            print(
                f"receive: offered ~{offered:,.0f} deliveries/s ({published} messages into rooms"
                f" of ~{room}); received {received:,} in {elapsed:.1f}s = {per_worker:,.0f}/s per"
                f" worker process ({per_worker / 10000:.2f}x the ~10k/s one-process ceiling"
                " measured in research)"
            )
            await swarm.stop()
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            for n in nodes:
                await n.stop(graceful=False)
    print(f"artefacts in {root}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--baseline", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="messages/s published in total")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--join-timeout", type=float, default=180.0)
    trio.run(main, parser.parse_args())
