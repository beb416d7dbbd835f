"""Containment: everything a node starts is stopped with it, even a daemon it forked.

A server under test may daemonize (fork, `setsid`, fork again): the child leaves the process
group the harness signals, survives `kill` faults (so the fault did not take the service down)
and outlives the run. Two mechanisms, the first the machine allows:

* **cgroup** (`Cgroup`): each node runs in a cgroup of its own under cgroup v2 (at
  `/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on machines with the hybrid layout, which these
  are), made by the harness as root (`chaos-harness/<run>/<node>`). The node's command is
  started by a shell that first moves itself into it (`echo $$ > cgroup.procs; exec ...`), so
  every descendant is inside, whatever session it makes. `kill` writes `cgroup.kill` (every
  process in it, SIGKILL, by the kernel), a graceful stop signals every member, `pause` freezes
  it (`cgroup.freeze`), and teardown kills what is left and removes the directory. Its
  `cpu.stat` gives the node's CPU, descendants included (`harness.infra.gauge`).
* **ports** (no cgroup: rootless, or no cgroup v2): every node's environment carries a mark
  (`CHAOS_HARNESS_NODE=<run>/<node>`). After a kill and at teardown, the processes that listen
  on the node's ports and carry that mark in `/proc/PID/environ` are SIGKILLed and named in a
  warning (only processes with the run's mark are ever touched).

Registered with the watchdog (`cgroup PATH`), so a SIGKILLed harness leaves no cgroup and no
process in one.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import trio

from .process import watch

MARK = "CHAOS_HARNESS_NODE"
_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))


def cgroup_root() -> Path | None:
    """The cgroup v2 hierarchy this process may make cgroups in, or None."""
    for root in _ROOTS:
        if (root / "cgroup.controllers").is_file() and os.access(root, os.W_OK):
            return root
    return None


class Cgroup:
    """One node's cgroup (v2): made on `create`, emptied and removed on `remove`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, run: str, node: str) -> Cgroup | None:
        """The node's cgroup, made now; None when the machine does not let us."""
        root = cgroup_root()
        if root is None:
            return None
        path = root / "chaos-harness" / run / node
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        watch(f"cgroup {path}")
        return cls(path)

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """The command, started inside the cgroup (the shell moves itself in, then execs)."""
        procs = str(self.path / "cgroup.procs")
        script = 'echo $$ > "$0" || exit 126; exec "$@"'
        return ["/bin/sh", "-c", script, procs, *argv]

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def signal(self, signum: int) -> None:
        """Signal every process in the cgroup (a graceful stop reaches daemons too)."""
        for pid in self.pids():
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    def kill(self) -> None:
        """SIGKILL every process in the cgroup, by the kernel where it can (`cgroup.kill`)."""
        try:
            (self.path / "cgroup.kill").write_text("1")
        except OSError:
            self.signal(signal.SIGKILL)

    def freeze(self, frozen: bool) -> None:
        with suppress(OSError):
            (self.path / "cgroup.freeze").write_text("1" if frozen else "0")

    @property
    def populated(self) -> bool:
        try:
            events = (self.path / "cgroup.events").read_text()
        except OSError:
            return bool(self.pids())
        return "populated 1" in events

    def cpu_seconds(self) -> float | None:
        """CPU time used by every process that ran in the cgroup (`cpu.stat` usage_usec)."""
        try:
            for line in (self.path / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
        except (OSError, ValueError):
            return None
        return None

    async def remove(self, *, timeout: float = 5.0) -> None:
        """Kill what is left, wait (bounded) until the cgroup is empty, remove it (and the
        run's directory once its last node is gone)."""
        self.kill()
        self.freeze(False)  # a frozen process cannot die
        with trio.move_on_after(timeout):
            while self.populated:  # noqa: ASYNC110 - the kernel empties it, not a task
                await trio.sleep(0.01)
        with suppress(OSError):
            self.path.rmdir()
            watch(f"drop cgroup {self.path}")
        with suppress(OSError):
            self.path.parent.rmdir()


def marked_holders(ports: Sequence[int], mark: str) -> list[tuple[int, str]]:
    """(pid, command line) of each process that listens on one of `ports` and carries
    `CHAOS_HARNESS_NODE=<mark>` in its environment: a node's escaped descendant."""
    inodes = _listening_inodes(set(ports))
    if not inodes:
        return []
    found: list[tuple[int, str]] = []
    wanted = f"{MARK}={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        held = False
        for fd in fds:
            with suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                    held = True
                    break
        if not held:
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if wanted in environ:
            found.append((int(entry.name), command.strip()))
    return found


def _listening_inodes(ports: set[int]) -> set[int]:
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != "0A":  # 0A: LISTEN
                continue
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if port in ports:
                inodes.add(int(fields[9]))
    return inodes


def stop_holders(ports: Sequence[int], mark: str) -> list[str]:
    """SIGKILL the marked processes still holding `ports`; a sentence for each, for a warning."""
    said = []
    for pid, command in marked_holders(ports, mark):
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            said.append(f"pid {pid} ({command[:80]})")
    return said


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def group_cpu_seconds(pgid: int) -> float:
    """CPU time of the processes now in a process group (user + system; without a cgroup,
    what a node's tree has used, less what exited children took with them)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 12 and fields[2] == str(pgid):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS
