"""The swarm across worker processes, for client counts one trio loop cannot carry.

One process is one core: it takes ~10k deliveries/s when each arrives on its own socket and
~40k/s in bursts, and connects ~1,000 clients/s (`bench/README.md`), so a large swarm is split
round-robin over `workers` processes, each in a process group of its own. Each worker writes
`history.<k>.jsonl` (the run directory merges the parts once and removes them). Statistics are
the sum of each worker's last report. `open_worker_swarm` is its lifetime: workers stopped
(SIGKILL after a deadline) however the block ends.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import astuple
from pathlib import Path
from typing import Any

import trio

from .._clock import RunClock
from .._lines import json_lines
from ..errors import ClusterError, WorkerFailed
from ..grammar.behaviour import ClientPlan, SwarmPlan, WorkerSpec
from ..infra.process import open_process_group, signal_group
from ._swarm import SwarmStats


class _Worker:
    def __init__(self, index: int, process: trio.Process, history: Path) -> None:
        self.index = index
        self.process = process
        self.history = history
        self.stats = SwarmStats(0, 0, 0, 0, 0, 0)
        self.refused: str | None = None
        self.has_publishers = False

    async def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self.process.stdin.send_all((json.dumps(command) + "\n").encode())

    async def read_stats(self) -> None:
        assert self.process.stdout is not None
        async for report in json_lines(self.process.stdout):
            self.refused = self.refused or report.pop("refused", None)
            self.stats = SwarmStats(**report)


class WorkerSwarm:
    """Start workers, watch them, stop them."""

    def __init__(
        self,
        plan: SwarmPlan,
        clock: RunClock,
        directory: Path,
        *,
        workers: int,
    ) -> None:
        self.plan = plan
        self.plans = list(plan.clients)
        self.clock = clock
        self.directory = directory
        self.worker_count = max(1, min(workers, len(self.plans)))
        self.workers: list[_Worker] = []

    async def start(self, nursery: trio.Nursery) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        shares: list[list[ClientPlan]] = [[] for _ in range(self.worker_count)]
        for i, plan in enumerate(self.plans):
            shares[i % self.worker_count].append(plan)
        for k, share in enumerate(shares):
            history = self.directory / f"history.{k}.jsonl"
            spec_path = self.directory / f"worker.{k}.json"
            spec = WorkerSpec(
                origin=self.clock.origin,
                worker=k,
                history=str(history),
                plan=self.plan.share(tuple(share)),
            )
            spec_path.write_text(spec.model_dump_json())
            process = await open_process_group(
                [sys.executable, "-m", "harness.swarm.worker", str(spec_path)],
                subprocess.PIPE,
                stdin=subprocess.PIPE,
            )
            worker = _Worker(k, process, history)
            worker.has_publishers = any(p.role == "publisher" for p in share)
            self.workers.append(worker)
            nursery.start_soon(worker.read_stats)

    def stats(self) -> SwarmStats:
        totals = [astuple(w.stats) for w in self.workers]
        return SwarmStats(*(sum(column) for column in zip(*totals, strict=True)))

    async def wait_joined(self, *, timeout: float) -> None:
        with trio.move_on_after(timeout):
            while self.stats().joined < len(self.plans):
                for worker in self.workers:
                    if worker.process.poll() is not None:
                        raise WorkerFailed(f"swarm worker {worker.index} exited early")
                    if worker.refused is not None:
                        raise ClusterError(worker.refused)
                await trio.sleep(0.05)
            return
        raise WorkerFailed(f"{self.stats().joined}/{len(self.plans)} clients joined in {timeout}s")

    async def publish(self, *, duration: float) -> None:
        for worker in self.workers:
            if worker.has_publishers:
                await worker.send({"cmd": "publish", "duration": duration})
        await trio.sleep(duration)

    def client_ids(self) -> list[str]:
        return [p.id for p in self.plans if p.role != "publisher"]

    async def client_fault(
        self, kind: str, client_ids: Sequence[str], duration: float | None = None
    ) -> None:
        for worker in self.workers:
            await worker.send(
                {
                    "cmd": "client_fault",
                    "kind": kind,
                    "clients": list(client_ids),
                    "duration": duration,
                }
            )

    async def stop(self, *, timeout: float = 10.0) -> None:
        """Stop every worker (SIGKILL after `timeout`); their history parts are complete then."""
        for worker in self.workers:
            await worker.send({"cmd": "stop"})
        with trio.move_on_after(timeout):
            for worker in self.workers:
                await worker.process.wait()
        for worker in self.workers:
            if worker.process.poll() is None:
                signal_group(worker.process, signal.SIGKILL)
                await worker.process.wait()

    @property
    def parts(self) -> list[Path]:
        return [w.history for w in self.workers]


@asynccontextmanager
async def open_worker_swarm(
    plan: SwarmPlan,
    clock: RunClock,
    directory: Path,
    *,
    workers: int,
) -> AsyncIterator[WorkerSwarm]:
    swarm = WorkerSwarm(plan, clock, directory, workers=workers)
    try:
        async with trio.open_nursery() as nursery:
            await swarm.start(nursery)
            try:
                yield swarm
            finally:
                with trio.CancelScope(shield=True):
                    await swarm.stop()
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            for worker in swarm.workers:
                if worker.process.poll() is None:
                    signal_group(worker.process, signal.SIGKILL)
                    with suppress(Exception):
                        await worker.process.wait()
