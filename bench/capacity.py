"""Swarm capacity on this machine: `python bench/capacity.py [--clients 20000] [--workers 2]`.

Starts a 3-node reference cluster (real processes, loopback) behind Toxiproxy, as a run has it
(one client proxy per node, the proxies spread over toxiproxy-servers as
`harness.infra.descriptors` sizes them for the count: `--direct` leaves Toxiproxy out), then
measures in one run:

* the largest client count this machine's descriptor limit lets through (the same arithmetic
  a run uses to refuse, with 3 nodes and `--workers`), and why it stops there;
* baseline: bare trio-websocket connect + phx_join for `--baseline` sockets in one process, no
  client model and no history (the cost floor of one handshake + join), on the same path;
* swarm: `--clients` phoenix.js-like clients over `--workers` processes, seeded over the 3
  nodes: time until every one is connected and joined, RSS per client, and the descriptors
  each toxiproxy-server holds then;
* receive rate: publishers publish for `--seconds` into rooms of ~100 subscribers; messages
  received per second per worker process.

Prints figures and ratios against the baseline (the machine is shared and noisy: compare ratios,
not absolute numbers). Everything is bounded in count and time and stops by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

import trio
from trio_websocket import connect_websocket_url

from harness._clock import RunClock
from harness.cluster import LocalNode, mesh_specs, wait_links
from harness.errors import HarnessError
from harness.grammar.behaviour import Endpoint
from harness.infra.descriptors import (
    Placement,
    check_swarm,
    clients_per_node,
    place,
    raise_limit,
)
from harness.infra.toxiproxy import Toxiproxy, open_toxiproxy
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


def descriptors_open(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


NODES = ("n1", "n2", "n3")


def placement_for(clients: int, workers: int, limit: int) -> Placement:
    """The proxies' placement a run of `clients` would get (HarnessError if it would be
    refused): one client proxy per node, clients seeded round-robin, `same_node`."""
    check_swarm(clients, workers, limit)
    first = [k % len(NODES) for k in range(clients)]
    links = [(f"client->{n}", "clients", n) for n in NODES]
    return place(links, clients_per_node(first, NODES, failover=False), limit)


def largest(workers: int, limit: int) -> tuple[int, str]:
    """The largest count the arithmetic lets through (bisection), and the refusal just past it."""
    low, high = 1, 1_000_000
    while low < high:
        middle = (low + high + 1) // 2
        try:
            placement_for(middle, workers, limit)
            low = middle
        except HarnessError:
            high = middle - 1
    try:
        placement_for(low + 1, workers, limit)
        why = "(no refusal)"
    except HarnessError as exc:
        why = str(exc)
    return low, why


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
    limit = raise_limit()  # before anything starts: the nodes and toxiproxy inherit it
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
        count, why = largest(args.workers, limit)
        print(f"descriptors: limit {limit:,}; the largest count a run lets through: {count:,}")
        print(f"  past it: {why}")
        async with contextlib.AsyncExitStack() as stack:
            toxiproxy = None
            urls = [n.url for n in nodes]
            if not args.direct:
                placement = placement_for(args.clients + args.workers, args.workers, limit)
                print(f"toxiproxy: {placement.explain()}")
                toxiproxy = await stack.enter_async_context(
                    open_toxiproxy(root / "logs" / "toxiproxy.log", placement=placement)
                )
                urls = []
                for n in nodes:
                    link = f"client->{n.name}"
                    proxy = await toxiproxy.create_proxy(
                        link, f"bench_{n.name}", f"127.0.0.1:{n.spec.port}"
                    )
                    urls.append(f"ws://127.0.0.1:{proxy.port}/socket")
            await measure(args, root, nodes, urls, toxiproxy)
    finally:
        with trio.CancelScope(shield=True):
            for n in nodes:
                await n.stop(graceful=False)
    print(f"artefacts in {root}")


async def measure(
    args: argparse.Namespace,
    root: Path,
    nodes: list[LocalNode],
    urls: list[str],
    toxiproxy: Toxiproxy | None,
) -> None:
    path = "direct to the nodes" if toxiproxy is None else "through Toxiproxy"
    base_rate = await baseline(urls, args.baseline)
    print(f"baseline: bare connect+join {args.baseline} sockets {path}: {base_rate:,.0f}/s")

    # rooms of ~100, at most 100 of them: the reference server allows 100 channels a socket and
    # the publishers join every room
    topics = [f"room:{i}" for i in range(min(100, max(1, args.clients // 100)))]
    scenario = parse_scenario(
        f"name: capacity\nduration: 1h\nseed: 1\ncluster: {{nodes: {len(nodes)}}}\n"
        f"clients: {{count: {args.clients}, topics: {json.dumps(topics)}}}\n"
        f"workload: {{publishers: {args.workers}, rate: {args.rate}}}\n"
    )
    swarm_nodes = [Endpoint(n.name, url) for n, url in zip(nodes, urls, strict=True)]
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
        if toxiproxy is not None:
            held = {key: descriptors_open(pid) for key, pid in toxiproxy.pids.items()}
            print(f"toxiproxy descriptors held once all joined: {held}")

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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--direct", action="store_true", help="leave Toxiproxy out")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--baseline", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="messages/s published in total")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--join-timeout", type=float, default=60.0)
    trio.run(main, parser.parse_args())
