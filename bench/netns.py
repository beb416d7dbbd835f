"""`network: isolated`'s costs: making a namespace per node, and putting a packet rule in force.

    python bench/netns.py [--nodes 3 9] [--rules 20]

Set-up: `open_hub(N nodes)` from the machine's namespace (a holder process for the hub, and per
node a holder, a veth pair, addresses, a route), per node; baseline: starting one `unshare --net
true` process, the floor of anything that makes a namespace. Rule latency: the call that cuts
n1->n2 (`nft` through `nsenter` into the hub; nft commits atomically, so the rule is in force when
it returns; each cut is then proved by its counter after a connect from n1) and the heal's;
baseline: disabling or enabling one Toxiproxy proxy (the shared network's cut) on a server
started here, through its HTTP API. Both in the same run, printed as ratios. Bounded: `--rules`
cuts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.infra.netns import open_hub
from harness.infra.toxiproxy import open_toxiproxy


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def setup(nodes: int) -> tuple[float, float]:
    started = time.perf_counter()
    for _ in range(nodes):
        await trio.run_process(["unshare", "--net", "true"])
    floor = (time.perf_counter() - started) / nodes
    started = time.perf_counter()
    async with open_hub([f"n{i}" for i in range(1, nodes + 1)]):
        made = (time.perf_counter() - started) / nodes
    return made, floor


async def rules(count: int) -> tuple[list[float], list[float]]:
    """Seconds a cut takes to be in force (nft commits a rule atomically: it is in force when
    the call returns) and a heal; each cut is proved by the rule's counter after a connect."""
    cuts: list[float] = []
    heals: list[float] = []
    probe = (
        "import socket\ntry:\n socket.create_connection(('10.201.2.2', 9), timeout=0.2)\n"
        "except OSError: pass"
    )
    async with open_hub(["n1", "n2"]) as hub:
        for _ in range(count):
            started = time.perf_counter()
            rule = await hub.cut("n1", "n2")
            cuts.append(time.perf_counter() - started)
            await hub.nodes["n1"].run(sys.executable, "-c", probe)
            assert await rule.dropped() > 0, "the rule dropped nothing"
            started = time.perf_counter()
            await rule.remove()
            heals.append(time.perf_counter() - started)
    return cuts, heals


async def toxiproxy(count: int) -> list[float]:
    took: list[float] = []
    async with open_toxiproxy(Path("/tmp/bench-netns-toxiproxy.log"), None) as server:
        client = server.client
        await client.create_proxy("bench", "127.0.0.1:9", "127.0.0.1:0")
        try:
            for _ in range(count):
                started = time.perf_counter()
                await client.set_enabled("bench", False)
                await client.set_enabled("bench", True)
                took.append((time.perf_counter() - started) / 2)
        finally:
            await client.delete_proxy("bench")
    return took


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 9])
    parser.add_argument("--rules", type=int, default=20)
    args = parser.parse_args()
    for n in args.nodes:
        made, floor = await setup(n)
        print(
            f"set-up, {n} nodes: {ms(made)} a node; `unshare --net true` {ms(floor)}:"
            f" {made / floor:.1f}x"
        )
    cuts, heals = await rules(args.rules)
    proxy = await toxiproxy(args.rules)
    base = statistics.median(proxy)
    for what, took in (("cut in force", cuts), ("heal in force", heals)):
        mid = statistics.median(took)
        print(
            f"{what}: median {ms(mid)}, max {ms(max(took))} ({len(took)} times);"
            f" a Toxiproxy enable/disable {ms(base)}: {mid / base:.1f}x"
        )


if __name__ == "__main__":
    trio.run(main)
