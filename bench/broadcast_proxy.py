"""The broadcast proxy's cost on a mesh link: `python bench/broadcast_proxy.py [--rate 1000]`.

Sends timestamped mesh broadcast lines (`{"from", "topic", "event", "payload"}`, as a reference
node writes them) from one socket to a listener at `--rate` lines/s for `--seconds`, first
straight to the listener (the baseline), then through the broadcast proxy with no rule, then with
a rule in force that selects nothing (every broadcast is framed and judged), alternating the three
`--rounds` times in the same run. Prints each one's one-way latency p50/p99/max and the p99 the
proxy adds. The busy-room scenario puts ~20 broadcasts/s on each link; the default rate is 50x
that. Loopback only; bounded by rate x seconds x rounds.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import orjson
import trio

from harness.broadcast_proxy import Route, Rule, open_broadcast_proxy


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Arrivals:
    """One-way latencies as they arrive; `complete` is set once `expected` have."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.expected = 0
        self.complete = trio.Event()

    def reset(self, expected: int) -> None:
        self.latencies, self.expected, self.complete = [], expected, trio.Event()

    def add(self, latency: float) -> None:
        self.latencies.append(latency)
        if len(self.latencies) >= self.expected:
            self.complete.set()


async def one(address: tuple[str, int], arrivals: Arrivals, rate: float, seconds: float) -> None:
    count = int(rate * seconds)
    arrivals.reset(count)
    stream = await trio.open_tcp_stream(*address)
    start = trio.current_time()
    async with stream:
        for n in range(count):
            await trio.sleep_until(start + n / rate)
            line = {
                "from": "n1",
                "topic": "room:busy",
                "event": "new_msg",
                "payload": {"id": f"m{n}", "sent": time.perf_counter(), "body": "x" * 40},
            }
            await stream.send_all(orjson.dumps(line) + b"\n")
    with trio.fail_after(10):
        await arrivals.complete.wait()


async def main(rate: float, seconds: float, rounds: int) -> None:
    arrivals = Arrivals()

    async def serve(stream: trio.SocketStream) -> None:
        pending = b""
        async with stream:
            while data := await stream.receive_some(65536):
                now = time.perf_counter()
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    arrivals.add(now - orjson.loads(line)["payload"]["sent"])

    results: dict[str, list[float]] = {"direct": [], "proxy, no rule": [], "proxy, a rule": []}
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
        sink = listeners[0].socket.getsockname()[:2]
        async with open_broadcast_proxy([Route("n1->n2", sink, "mesh")]) as proxy:
            for _ in range(rounds):
                for name, address in (
                    ("direct", sink),
                    ("proxy, no rule", proxy.addresses["n1->n2"]),
                    ("proxy, a rule", proxy.addresses["n1->n2"]),
                ):
                    rule = Rule("bench", "drop", topic="nothing:*") if "a rule" in name else None
                    if rule is not None:
                        proxy.add_rule(rule)
                    await one(address, arrivals, rate, seconds)
                    results[name].extend(arrivals.latencies)
                    if rule is not None:
                        proxy.remove_rule(rule)
        nursery.cancel_scope.cancel()
    base = percentile(results["direct"], 0.99)
    for name, values in results.items():
        p50, p99 = percentile(values, 0.5) * 1e3, percentile(values, 0.99) * 1e3
        added = (percentile(values, 0.99) - base) * 1e3
        print(
            f"{name:<15} {len(values):>6} lines  p50 {p50:.3f} ms  p99 {p99:.3f} ms  "
            f"max {max(values) * 1e3:.3f} ms  p99 added {added:+.3f} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    trio.run(main, args.rate, args.seconds, args.rounds)
