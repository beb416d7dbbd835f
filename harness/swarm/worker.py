"""A swarm worker process: `python -m harness.swarm.worker SPEC.json`.

Runs its share of the clients in its own trio loop, writes its own history part (stamped on the
run's shared monotonic clock, so parts merge by time), prints a JSON statistics line on stdout
every `stats_interval` seconds, samples its own loop and publish lag (`load` ops, see
`harness.infra.gauge`), and obeys JSON commands on stdin:

    {"cmd": "publish", "duration": S}   publishers in this worker publish for S seconds
    {"cmd": "client_fault", "kind": K, "clients": [ids]}   close or crash those clients' sockets
    {"cmd": "stop"}                     stop every client, close the history part, exit 0

End of stdin means stop too, so a worker never outlives its parent's pipe.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from functools import partial
from pathlib import Path

import trio

from .._clock import RunClock
from .._lines import json_lines
from ..grammar.behaviour import WorkerSpec
from ..infra.gauge import LoadGauge
from ..journal import HistoryWriter
from ._swarm import InProcessSwarm


async def _commands(swarm: InProcessSwarm, nursery: trio.Nursery, stop: trio.Event) -> None:
    stdin = trio.lowlevel.FdStream(sys.stdin.fileno())
    async for command in json_lines(stdin):
        if command["cmd"] == "publish":
            nursery.start_soon(partial(swarm.publish_some, duration=float(command["duration"])))
        elif command["cmd"] == "client_fault":
            nursery.start_soon(
                swarm.client_fault, command["kind"], command["clients"], command.get("duration")
            )
        elif command["cmd"] == "stop":
            stop.set()
            return
    stop.set()


def _report(swarm: InProcessSwarm) -> None:
    """Statistics to the parent over stdout (an IPC pipe, not a terminal)."""
    sys.stdout.write(json.dumps({**asdict(swarm.stats()), "refused": swarm.refused()}) + "\n")
    sys.stdout.flush()


async def _stats(swarm: InProcessSwarm, interval: float) -> None:
    while True:
        _report(swarm)
        await trio.sleep(interval)


async def run_worker(spec: WorkerSpec) -> None:
    clock = RunClock(origin=spec.origin)
    writer = HistoryWriter(Path(spec.history))
    try:
        gauge = LoadGauge(writer, clock, f"swarm{spec.worker}")
        swarm = InProcessSwarm(spec.plan, writer, clock, gauge)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(gauge.run)
            await nursery.start(swarm.run)
            nursery.start_soon(_stats, swarm, spec.stats_interval)
            nursery.start_soon(_commands, swarm, nursery, stop)
            await stop.wait()
            _report(swarm)
            nursery.cancel_scope.cancel()
    finally:
        writer.close()


def main() -> int:
    spec = WorkerSpec.model_validate_json(Path(sys.argv[1]).read_bytes())
    trio.run(run_worker, spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
