"""The load generator watching itself: is the harness keeping up with the load it was asked for?

A correct server must never be reported broken because the box or the harness was slow. So
every process that runs clients (the runner with its in-process swarm, each swarm worker)
samples, while the run goes:

* **event-loop lag**: a task sleeps `interval` and notes how much later than asked it woke up.
  Every client of the process shares that loop, so the lag bounds how late any of them read a
  frame, answered a heartbeat or fired a timer;
* **publish schedule lag**: how far behind its schedule a publisher sent (`publish_late`);
* **receive backlog**: the most bytes any client's socket holds that the client has not read yet
  (`FIONREAD`, sampled once per period through `backlog`). The loop can keep a short lag and
  still fall behind the inflow (every wake-up busy with frames); then the backlog grows.
* on the runner only, **the machine**: the share of CPU time busy (`/proc/stat`) and the share of
  wall time some task was runnable but waiting for a CPU (PSI, `/proc/pressure/cpu` "some"),
  when the kernel has them, the machine's CPUs, and the CPU the server's nodes used (`server`:
  a callable the runner sets, the nodes' CPU seconds so far);
* **its own CPU**: the CPU this process used in the period (`cpu_self`, in CPUs: 1.0 is one
  core busy), so a distress window can say who had the CPU: the load generator, or the server.

Every `report_every` seconds the worst figures of the period go into the history as one `load`
op, so `harness check` judges from the run directory alone (`harness.checkers._distress`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from .._clock import RunClock
from ..history import Op, Recorder

INTERVAL = 0.1
REPORT_EVERY = 1.0
_STAT = Path("/proc/stat")
_PSI = Path("/proc/pressure/cpu")


@dataclass(slots=True)
class _Machine:
    """Deltas of the kernel's CPU counters between two reads."""

    busy: tuple[int, int] | None = None  # (busy jiffies, total jiffies)
    stall: int | None = None  # PSI "some" total, microseconds

    def sample(self, span: float) -> dict[str, float]:
        out: dict[str, float] = {}
        busy = _cpu_jiffies()
        if busy is not None and self.busy is not None and busy[1] > self.busy[1]:
            out["cpu_busy"] = round((busy[0] - self.busy[0]) / (busy[1] - self.busy[1]), 3)
        self.busy = busy
        stall = _psi_some_total()
        if stall is not None and self.stall is not None and span > 0:
            out["cpu_stall"] = round(min(1.0, (stall - self.stall) / 1e6 / span), 3)
        self.stall = stall
        return out


def _cpu_jiffies() -> tuple[int, int] | None:
    try:
        first = _STAT.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user/nice
    return total - idle, total


def _psi_some_total() -> int | None:
    try:
        for line in _PSI.read_text().splitlines():
            if line.startswith("some "):
                for part in line.split()[1:]:
                    key, _, value = part.partition("=")
                    if key == "total":
                        return int(value)
    except (OSError, ValueError):
        return None
    return None


class LoadGauge:
    """Samples this process's loop lag (and, with `machine`, the CPUs) into `load` ops."""

    def __init__(
        self,
        recorder: Recorder,
        clock: RunClock,
        process: str,
        *,
        machine: bool = False,
        interval: float = INTERVAL,
        report_every: float = REPORT_EVERY,
    ) -> None:
        self.recorder = recorder
        self.clock = clock
        self.process = process
        self.interval = interval
        self.report_every = report_every
        self._machine = _Machine() if machine else None
        self._lag = 0.0
        self._publish_lag = 0.0
        self.backlog: Callable[[], int] | None = None
        self.server: Callable[[], float] | None = None  # the nodes' CPU seconds so far
        self._cpu = time.process_time()
        self._server_cpu: float | None = None

    def publish_late(self, seconds: float) -> None:
        """A publisher sent `seconds` after its schedule said."""
        if seconds > self._publish_lag:
            self._publish_lag = seconds

    async def run(self) -> None:
        """Sample until cancelled; each period's worst figures become one `load` op."""
        if self._machine is not None:
            self._machine.sample(0.0)
        started = self.clock.now()
        while True:
            asked = self.clock.now()
            await trio.sleep(self.interval)
            now = self.clock.now()
            self._lag = max(self._lag, now - asked - self.interval)
            if now - started >= self.report_every:
                self._report(now, now - started)
                started = now

    def _report(self, now: float, span: float) -> None:
        value: dict[str, float | int] = {
            "span": round(span, 3),
            "lag": round(self._lag, 4),
            "publish_lag": round(self._publish_lag, 4),
        }
        if self.backlog is not None:
            value["backlog"] = self.backlog()
        cpu = time.process_time()
        if span > 0:
            value["cpu_self"] = round((cpu - self._cpu) / span, 3)
        self._cpu = cpu
        if self._machine is not None:
            value.update(self._machine.sample(span))
            value["cpus"] = os.cpu_count() or 1
        if self.server is not None:
            used = self.server()
            if self._server_cpu is not None and span > 0:  # a restarted node starts again at 0
                value["cpu_server"] = round(max(0.0, used - self._server_cpu) / span, 3)
            self._server_cpu = used
        self.recorder.record(Op(now, self.process, "info", "load", value))
        self._lag = 0.0
        self._publish_lag = 0.0


__all__ = ["INTERVAL", "REPORT_EVERY", "LoadGauge"]
