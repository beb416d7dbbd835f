"""A swarm worker process: `python -m harness.swarm.worker`, on this machine or on a worker host.

Runs its share of the clients in its own trio loop, writes its history part (stamped on the
run's clock: the control node's origin, shifted by this machine's measured clock offset, so
parts merge by time), reports JSON statistics every `stats_interval` seconds, samples its own
loop and publish lag (`load` ops, see `harness.infra.gauge`). It talks over stdin and stdout
only, so the same process works through a pipe here and through an SSH channel (`harness.swarm.
_hosts`). Commands, one JSON object a line on stdin:

    {"cmd": "clock"}                    answer this machine's clock now (before or after the run)
    {"cmd": "start", "spec": {...}}     the `WorkerSpec`: run its clients
    {"cmd": "publish", "duration": S}   publishers in this worker publish for S seconds
    {"cmd": "client_fault", "kind": K, "clients": [ids]}   close or crash those clients' sockets
    {"cmd": "stop"}                     say `stopping` once what it recorded is in its part,
                                        then stop every client, close the part, exit 0

End of stdin means stop too, so a worker never outlives its parent's pipe or its SSH channel.

On stdout, every line the worker says to its parent starts with `!` (`!{"stats": ...}`,
`!{"clock": T}`); with `spec.history` "-" every other line is its history part, streamed
(`harness.swarm._wire`). `--clock-skew S` adds S seconds to every
reading of this machine's clock: the test option that stands in for a host whose clock is
elsewhere (network namespaces share one kernel clock). `--identity` prints the harness's
version and the digest of its code, and exits: the control node's version check.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import trio

from .._clock import RunClock
from .._lines import json_lines
from ..grammar.behaviour import WorkerSpec
from ..infra.descriptors import raise_limit
from ..infra.gauge import LoadGauge
from ..journal import HistoryWriter
from ._swarm import InProcessSwarm
from ._wire import SAID, STREAM, identity


class Outlet:
    """The worker's stdout: what it says (`!` lines) between its history batches."""

    def __init__(self) -> None:
        self.writer: HistoryWriter | None = None  # set when the history streams here

    def say(self, message: dict[str, Any]) -> None:
        line = SAID + json.dumps(message).encode() + b"\n"
        if self.writer is not None and not self.writer.closed:
            self.writer.say(line)
        else:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()


def _report(swarm: InProcessSwarm, outlet: Outlet) -> None:
    outlet.say({"stats": asdict(swarm.stats()), "refused": swarm.refused()})


async def _stats(swarm: InProcessSwarm, outlet: Outlet, interval: float) -> None:
    while True:
        _report(swarm, outlet)
        await trio.sleep(interval)


async def run_worker(skew: float = 0.0) -> None:
    """Answer clock readings until the spec arrives, run the clients until told to stop (or
    stdin ends), then close the history part."""
    outlet = Outlet()
    commands = json_lines(trio.lowlevel.FdStream(sys.stdin.fileno()))
    spec: WorkerSpec | None = None
    async for command in commands:
        if command["cmd"] == "clock":
            outlet.say({"clock": time.monotonic() + skew})
        elif command["cmd"] == "start":
            spec = WorkerSpec.model_validate(command["spec"])
            break
        elif command["cmd"] == "stop":
            return
    if spec is None:
        return
    streaming = spec.history == STREAM
    writer = HistoryWriter.over(1) if streaming else HistoryWriter(Path(spec.history))
    outlet.writer = writer if streaming else None
    clock = RunClock(origin=spec.origin - skew)
    try:
        gauge = LoadGauge(writer, clock, f"swarm{spec.worker}")
        swarm = InProcessSwarm(spec.plan, writer, clock, gauge)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(gauge.run)
            await nursery.start(swarm.run)
            nursery.start_soon(_stats, swarm, outlet, spec.stats_interval)
            nursery.start_soon(swarm.freeze_when_joined)
            async for command in commands:
                if command["cmd"] == "publish":
                    duration = float(command["duration"])
                    nursery.start_soon(partial(swarm.publish_some, duration=duration))
                elif command["cmd"] == "client_fault":
                    nursery.start_soon(
                        swarm.client_fault,
                        command["kind"],
                        command["clients"],
                        command.get("duration"),
                    )
                elif command["cmd"] == "clock":
                    outlet.say({"clock": time.monotonic() + skew})
                elif command["cmd"] == "stop":
                    break
            writer.flush()  # all it recorded before the stop is in its part: then say so
            outlet.say({"stopping": True})
            gc.disable()  # the process ends once its clients closed: no passes over that garbage
            _report(swarm, outlet)
            nursery.cancel_scope.cancel()
    finally:
        writer.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.swarm.worker")
    parser.add_argument("--clock-skew", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--identity", action="store_true")
    args = parser.parse_args()
    if args.identity:
        sys.stdout.write(json.dumps(identity()) + "\n")
        return 0
    raise_limit()  # a socket per client: the session's soft limit (often 1,024) is not enough
    trio.run(run_worker, args.clock_skew)
    return 0


if __name__ == "__main__":
    sys.exit(main())
