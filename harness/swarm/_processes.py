"""The swarm across worker processes, for client counts one trio loop cannot carry.

One process is one core: it takes ~10k deliveries/s when each arrives on its own socket and
~40k/s in bursts, and connects ~1,000 clients/s (`bench/README.md`), so a large swarm is split
round-robin over `workers` processes, each in a process group of its own, here or on worker
hosts (`clients.hosts`, `harness.swarm._hosts`: started over SSH, each host's workers in turn).
Each worker's part is `history.<k>.jsonl` here: written by the worker itself on this machine,
streamed back over its SSH channel from a host (the run directory merges the parts once and
removes them). A host's worker stamps its ops on the run's clock shifted by its machine's
offset, measured (NTP-style, `harness._clock.estimate`) before it starts and recorded again
after the run (`clock` ops: offset, bound, drift). A worker whose output ends before it was told
to stop (it died, its host or the connection was lost) fails the run (`WorkerFailed`, exit 3,
naming where it ran): its clients' histories stop there, so nothing can be judged. Statistics
are the sum of each worker's last report. `open_worker_swarm` is its lifetime: workers stopped
(SIGKILL after a deadline) however the block ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import astuple
from pathlib import Path
from typing import Any

import trio

from .._clock import Offset, RunClock, estimate
from ..errors import ClusterError, WorkerFailed
from ..foreign import clip
from ..grammar.behaviour import ClientPlan, SwarmPlan, WorkerSpec
from ..history import Op, Recorder
from ..infra.process import last_words, open_process_group, signal_group
from ._hosts import WorkerHost, WorkerHosts
from ._swarm import SwarmStats
from ._wire import SAID, STREAM


class _Worker:
    """One worker process: here (a pipe) or on a worker host (its SSH channel), and what it
    says on stdout (`harness.swarm.worker`): `!` lines are statistics and clock readings, any
    other line is its streamed history part, appended to `history` as it comes."""

    def __init__(
        self,
        index: int,
        process: trio.Process,
        history: Path,
        where: str,
        log: Path | None,
        *,
        streams: bool,
    ) -> None:
        self.index = index
        self.process = process
        self.history = history
        self.streams = streams  # its part comes over stdout (else it writes `history` itself)
        self.where = where  # "here", or "on user@host:port"
        self.log = log
        self.stats = SwarmStats(0, 0, 0, 0, 0, 0)
        self.refused: str | None = None
        self.has_publishers = False
        self.stopping = False
        self.acknowledged = trio.Event()  # it said `stopping`: its part is whole up to then
        self.ended = trio.Event()  # its output ended and was read to the end
        self._readings, self.readings = trio.open_memory_channel[float](64)

    async def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self.process.stdin.send_all((json.dumps(command) + "\n").encode())

    def _said(self, line: bytes) -> None:
        try:
            message = json.loads(line[1:])
        except ValueError:  # not the worker's (a library's stray print): nothing to act on
            return
        if not isinstance(message, dict):
            return
        if "clock" in message:
            with suppress(trio.WouldBlock):
                self._readings.send_nowait(float(message["clock"]))
        elif "stopping" in message:
            self.acknowledged.set()
        elif "stats" in message:
            self.refused = self.refused or message.get("refused")
            self.stats = SwarmStats(**message["stats"])

    async def read(self, clock: RunClock) -> None:
        """Until the worker's stdout ends; WorkerFailed naming where it ran if that happens
        before it was told to stop (its process died, or its host or the connection was lost):
        the run cannot be judged without its clients."""
        sink = self.history if self.streams else Path(os.devnull)  # else: strays, not history
        try:
            await self._read(sink)
        finally:
            self.ended.set()
        if not self.stopping:
            said = clip(last_words(self.log)) if self.log is not None else ""
            said = "" if said.strip(" ()").isdigit() else said  # only the group's id there
            raise WorkerFailed(
                f"swarm worker {self.index} {self.where} was lost at {clock.now():.1f}s"
                f" (its output ended before it was stopped){said}; its clients' histories end"
                " there, so the run cannot be judged"
            )

    async def _read(self, sink: Path) -> None:
        """Split the worker's stdout into its history part (`sink`) and what it says."""
        assert self.process.stdout is not None
        with sink.open("ab") as part:
            rest = b""
            async for chunk in self.process.stdout:
                whole, cut, rest = (rest + chunk).rpartition(b"\n")
                if not cut:
                    rest = whole + rest
                    continue
                whole += b"\n"
                if not whole.startswith(SAID) and b"\n" + SAID not in whole:
                    part.write(whole)
                    continue
                for line in whole.split(b"\n"):
                    if line.startswith(SAID):
                        self._said(line)
                    elif line:
                        part.write(line + b"\n")

    async def read_clock(self, *, samples: int = 8, timeout: float = 10.0) -> Offset:
        """Its machine's clock against this one's (`estimate` over `samples` exchanges)."""
        readings = []
        with trio.fail_after(timeout):
            for _ in range(samples):
                sent = time.monotonic()
                await self.send({"cmd": "clock"})
                theirs = await self.readings.receive()
                readings.append((sent, theirs, time.monotonic()))
        return estimate(readings)


class WorkerSwarm:
    """Start workers (here, or on worker hosts), watch them, stop them."""

    def __init__(
        self,
        plan: SwarmPlan,
        clock: RunClock,
        directory: Path,
        *,
        workers: int,
        hosts: WorkerHosts | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.plan = plan
        self.plans = list(plan.clients)
        self.clock = clock
        self.directory = directory
        self.hosts = hosts
        self.recorder = recorder
        # where each worker runs: None here, else its host (each host's workers in turn)
        slots: list[WorkerHost | None] = [None] * workers
        if hosts is not None:
            slots = [h for h in hosts.hosts for _ in range(h.spec.workers)]
        self.slots = slots[: max(1, min(len(slots), len(self.plans)))]
        self.worker_count = len(self.slots)
        self.workers: list[_Worker] = []

    async def start(self, nursery: trio.Nursery) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        shares: list[list[ClientPlan]] = [[] for _ in range(self.worker_count)]
        for i, plan in enumerate(self.plans):
            shares[i % self.worker_count].append(plan)
        for k, (share, host) in enumerate(zip(shares, self.slots, strict=True)):
            history = self.directory / f"history.{k}.jsonl"
            origin = self.clock.origin
            if host is None:
                process = await open_process_group(
                    [sys.executable, "-m", "harness.swarm.worker"],
                    subprocess.PIPE,
                    stdin=subprocess.PIPE,
                )
                worker = _Worker(k, process, history, "here", None, streams=False)
            else:
                assert self.hosts is not None
                log = self.directory / f"worker.{k}.log"
                command = [host.python, "-m", "harness.swarm.worker", *self.hosts.worker_args()]
                group = await host.ssh.start(command, log, piped=True)
                worker = _Worker(k, group.carrier, history, f"on {host.name}", log, streams=True)
            worker.has_publishers = any(p.role == "publisher" for p in share)
            self.workers.append(worker)
            nursery.start_soon(worker.read, self.clock)
            if host is not None:
                try:
                    reading = await worker.read_clock()
                except trio.TooSlowError:
                    raise WorkerFailed(
                        f"swarm worker {k} {worker.where} did not answer its clock readings in"
                        f" 10 s{clip(last_words(worker.log)) if worker.log else ''}"
                    ) from None
                origin += self._offset(worker, host, "before", reading)
            spec = WorkerSpec(
                origin=origin,
                worker=k,
                history=str(history) if host is None else STREAM,
                plan=self.plan.share(tuple(share)),
            )
            await worker.send({"cmd": "start", "spec": spec.model_dump(mode="json")})

    def _offset(self, worker: _Worker, host: WorkerHost, when: str, offset: Offset) -> float:
        """Record a worker's clock offset (a `clock` op) and return it."""
        if self.recorder is not None:
            value = {
                "worker": worker.index,
                "host": host.name,
                "when": when,
                "offset": round(offset.offset, 6),
                "bound": round(offset.bound, 6),
                "rtt": round(offset.rtt, 6),
                "samples": offset.samples,
            }
            self.recorder.record(Op(self.clock.now(), "runner", "info", "clock", value))
        return offset.offset

    def stats(self) -> SwarmStats:
        totals = [astuple(w.stats) for w in self.workers]
        return SwarmStats(*(sum(column) for column in zip(*totals, strict=True)))

    async def wait_joined(self, *, timeout: float) -> None:
        with trio.move_on_after(timeout):
            while self.stats().joined < len(self.plans):
                for worker in self.workers:
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

    async def stop(self, *, answer: float = 30.0, timeout: float = 10.0) -> list[str]:
        """Measure each worker host's clock again (recorded, not applied: how far it drifted
        during the run), then stop every worker. A worker first says it is stopping once all
        it recorded is in its part (within `answer` seconds: a busy loop may be late), then
        closes its clients; one that takes longer than `timeout` to do so is killed, which
        loses only its clients' closing (noted, never judged). Returns the workers that never
        said so, hung or ended (their host or the connection lost): their parts may end
        early."""
        for worker, host in zip(self.workers, self.slots, strict=False):
            if host is not None and worker.process.poll() is None:
                with suppress(trio.TooSlowError):
                    self._offset(worker, host, "after", await worker.read_clock())
        for worker in self.workers:
            worker.stopping = True
            await worker.send({"cmd": "stop"})
        with trio.move_on_after(answer):
            for worker in self.workers:
                await _acknowledged(worker)
        with trio.move_on_after(timeout):
            for worker in self.workers:
                await worker.process.wait()
        lost = []
        for worker in self.workers:
            if worker.process.poll() is None:
                if worker.acknowledged.is_set():
                    self._note(
                        f"swarm worker {worker.index} {worker.where} took more than"
                        f" {timeout:g} s to close its clients after the run and was stopped;"
                        " its history up to the stop is whole (a client's closing is not judged)"
                    )
                signal_group(worker.process, signal.SIGKILL)
                await worker.process.wait()
            if not worker.acknowledged.is_set():  # hung, or ended (its host lost) unheard
                lost.append(f"swarm worker {worker.index} {worker.where}")
        return lost

    def _note(self, notice: str) -> None:
        if self.recorder is not None:
            self.recorder.record(
                Op(self.clock.now(), "runner", "info", "setup", {"notice": notice})
            )

    @property
    def parts(self) -> list[Path]:
        return [w.history for w in self.workers]


async def _acknowledged(worker: _Worker) -> None:
    """Until the worker said it is stopping, or its output ended (all it said was read)."""
    async with trio.open_nursery() as nursery:

        async def said() -> None:
            await worker.acknowledged.wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(said)
        await worker.ended.wait()
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def open_worker_swarm(
    plan: SwarmPlan,
    clock: RunClock,
    directory: Path,
    *,
    workers: int,
    hosts: WorkerHosts | None = None,
    recorder: Recorder | None = None,
) -> AsyncIterator[WorkerSwarm]:
    swarm = WorkerSwarm(plan, clock, directory, workers=workers, hosts=hosts, recorder=recorder)
    try:
        async with trio.open_nursery() as nursery:
            await swarm.start(nursery)
            try:
                yield swarm
            finally:
                with trio.CancelScope(shield=True):
                    lost = await swarm.stop()
                nursery.cancel_scope.cancel()
            if lost:
                raise WorkerFailed(
                    f"{', '.join(lost)} did not stop when told (its host or the connection lost,"
                    " or it hung): its history may end early, so the run cannot be judged"
                )
    finally:
        with trio.CancelScope(shield=True):
            for worker in swarm.workers:
                if worker.process.poll() is None:
                    signal_group(worker.process, signal.SIGKILL)
                    with suppress(Exception):
                        await worker.process.wait()
