"""The client swarm: clients that behave like phoenix.js, over the swarm's own websocket.

SwarmClient      one client: the sans-io `harness.phoenix.ClientSocket` over a websocket
Swarm            the interface the runner and the nemesis use
InProcessSwarm   many clients and publishers in this trio loop
WorkerSwarm      the same, spread over worker processes (`harness.swarm.worker`), here or on
                 worker hosts (`open_worker_hosts`: connected and installed over SSH)
open_swarm       the one way to run either: joined on entry, stopped on exit
read_rooms       the final read of every room's stored messages (durability)

What it runs is a `harness.grammar.behaviour.SwarmPlan` (`harness.scenario.plan_clients`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from .._clock import RunClock
from ..grammar.behaviour import SwarmPlan
from ..history import Recorder
from ..infra.gauge import LoadGauge
from ._client import SwarmClient as SwarmClient
from ._hosts import WorkerHosts as WorkerHosts
from ._hosts import open_worker_hosts as open_worker_hosts
from ._processes import WorkerSwarm as WorkerSwarm
from ._processes import open_worker_swarm
from ._reader import read_rooms as read_rooms
from ._swarm import InProcessSwarm as InProcessSwarm
from ._swarm import Swarm as Swarm
from ._swarm import SwarmStats as SwarmStats


@asynccontextmanager
async def open_swarm(
    plan: SwarmPlan,
    *,
    recorder: Recorder,
    clock: RunClock,
    directory: Path,
    workers: int = 1,
    join_timeout: float = 60.0,
    gauge: LoadGauge | None = None,
    hosts: WorkerHosts | None = None,
) -> AsyncIterator[Swarm]:
    """Connect every planned client and wait until all are joined; stop them at the end.
    With `workers > 1` the clients run in worker processes whose history parts are written
    under `directory` and watch their own load; in-process clients report publish lag to
    `gauge`. With `hosts` the workers run there (`clients.hosts`), however many `workers`."""
    if workers > 1 or hosts is not None:
        async with open_worker_swarm(
            plan, clock, directory, workers=workers, hosts=hosts, recorder=recorder
        ) as swarm:
            await swarm.wait_joined(timeout=join_timeout)
            yield swarm
        return
    local = InProcessSwarm(plan, recorder, clock, gauge)
    async with trio.open_nursery() as nursery:
        await nursery.start(local.run)
        nursery.start_soon(local.freeze_when_joined)
        await local.wait_joined(timeout=join_timeout)
        yield local
        nursery.cancel_scope.cancel()
