"""The local process backend: each node of the cluster under test is an OS process.

A node runs in its own process group (so a kill reaches everything it spawned and nothing
else), with stdout and stderr captured in its log file. It counts as started when its health
URL answers 200. The operations are the ones the nemesis needs: kill (SIGKILL), terminate
(SIGTERM, graceful), pause/resume (SIGSTOP/SIGCONT), and restart on the same ports.

Processes are only ever signalled through the process group of a process this module started,
and through the node's cgroup where the machine allows one (`harness.infra.contain`: a node that
daemonizes cannot escape a kill or outlive the run; else its marked port holders are stopped and
named). `command` is a template (`NodePlan` fills it) so any server that speaks the protocol can
stand in for the reference one. A node that exits when the harness did not stop it says so
(`exited_by_itself`), so the run can say it.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import IO

import trio

from ..errors import ClusterError
from ..infra.contain import MARK, Cgroup, group_cpu_seconds, stop_holders
from ..infra.http import get_json
from ..infra.process import last_words, open_process_group, signal_group, wait_ready
from ._base import Launch, NodePlan, Placed

REFERENCE_COMMAND = (
    "{python} -m server_under_test --node {node} --host {host} --port {port}"
    " {pubsub_args} --store {store} --cluster-secret {cluster_secret} {bug_args}"
)


def placeholders(
    spec: NodePlan, *, quote: bool = True, python: str = sys.executable
) -> dict[str, object]:
    """The values of the command's placeholders: {python} {node} {host} {port} {pubsub_port}
    {peers} (n2=h:p,n3=h:p) {peer_args} (--peer n2=h:p ...) {pubsub} (mesh or the Redis
    URL) {pubsub_args} (the mesh's --pubsub-port and --peer arguments, or --pubsub URL)
    {store} {bug_args} {cluster_secret} (one random secret per cluster, for a mesh handshake)
    {peer_hosts} (the other nodes' addresses, comma-separated) {hostname} (the node's host
    name: its own under network: isolated, else the machine's). Shell-quoted for a command
    line; plain for env values and cwd."""
    q = shlex.quote if quote else str
    peer_list = [f"{n}={h}:{p}" for n, (h, p) in sorted(spec.peers.items())]
    peer_args = " ".join(f"--peer {p}" for p in peer_list)
    if spec.pubsub == "mesh":
        pubsub_args = f"--pubsub-port {spec.pubsub_port} {peer_args}"
    else:
        pubsub_args = f"--pubsub {q(spec.pubsub)}"
    return {
        "python": q(python),
        "node": spec.name,
        "host": spec.host,
        "port": spec.port,
        "pubsub_port": spec.pubsub_port,
        "peers": ",".join(peer_list),
        "peer_args": peer_args,
        "pubsub": q(spec.pubsub),
        "pubsub_args": pubsub_args,
        "store": q(spec.store),
        "bug_args": " ".join(f"--bug {b}" for b in spec.bugs),
        "cluster_secret": q(spec.cluster_secret),
        "peer_hosts": ",".join(spec.peer_hosts),
        "hostname": spec.hostname or socket.gethostname(),
    }


def command(
    spec: NodePlan, template: str = REFERENCE_COMMAND, *, python: str = sys.executable
) -> list[str]:
    """The node's argv: the template with its placeholders filled (see `placeholders`)."""
    filled = template.format(**placeholders(spec, python=python))
    return [*shlex.split(filled), *spec.extra_args]


async def answers(spec: NodePlan, launch: Launch) -> bool:
    """One health probe (`Launch`): an HTTP 200 on the health path, or with `health_tcp` a port
    that accepts; each bounded by a second (a paused node accepts but never answers)."""
    try:
        if launch.health_tcp:
            with trio.fail_after(1):
                stream = await trio.open_tcp_stream(spec.host, spec.port)
            await stream.aclose()
            return True
        status, _ = await get_json(spec.host, spec.port, launch.health_path, timeout=1)
    except (OSError, trio.TooSlowError):
        return False
    return status == 200


async def wait_answers(
    spec: NodePlan,
    launch: Launch,
    log_path: Path,
    died: Callable[[], str | None],
    *,
    timeout: float | None = None,
    where: str = "",
) -> None:
    """Until the node answers its health probe (`answers`); ClusterError as soon as `died`
    says why it cannot (its log's last words added), or at the launch's health timeout."""

    def reason() -> str | None:
        said = died()
        return None if said is None else f"{said}{last_words(log_path)}; see {log_path}"

    async def healthy() -> bool:
        return await answers(spec, launch)

    await wait_ready(
        healthy,
        died=reason,
        timeout=launch.health_timeout if timeout is None else timeout,
        what=f"node {spec.name}{where} not healthy; see {log_path}",
    )


class LocalNode(Placed):
    """One node process: start it, signal it, wait for it."""

    def __init__(
        self,
        spec: NodePlan,
        log_path: Path,
        *,
        template: str = REFERENCE_COMMAND,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        launch: Launch | None = None,
    ) -> None:
        self.spec = spec
        self.log_path = log_path
        self.launch = launch or Launch(template)
        self.template = self.launch.template
        plain = placeholders(spec, quote=False)
        self.env = {**(env or {}), **{k: v.format(**plain) for k, v in self.launch.env.items()}}
        self.cwd = Path(self.launch.cwd.format(**plain)) if self.launch.cwd else cwd
        self.process: trio.Process | None = None
        self.paused = False
        self._log: IO[bytes] | None = None
        self.cgroup: Cgroup | None = None  # set by `open_local_nodes` where the machine allows
        self.mark = f"{self.launch.run}/{spec.name}"  # in its environment (`harness.infra.contain`)
        self.stopping = False  # the harness asked it to go (a fault, a restart, the teardown)
        self.notices: list[str] = []  # what containment had to do, for the run's warnings

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self, *, timeout: float | None = None) -> None:
        """Start the process and wait until it is healthy (`Launch`: an HTTP 200 on the health
        path, or with `health_tcp` a port that accepts)."""
        if self.alive:
            raise ClusterError(f"node {self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        argv = command(self.spec, self.template)
        self._log.write(f"--- start: {shlex.join(argv)}\n".encode())
        self._log.flush()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {}), MARK: self.mark}
        if self.cgroup is not None:
            argv = self.cgroup.wrap(argv)
        argv = [*self.spec.enter, *argv]  # its network namespace, under network: isolated
        try:
            self.process = await open_process_group(argv, self._log, env=env, cwd=self.cwd)
        except OSError as exc:
            raise ClusterError(f"node {self.name} cannot be started: {exc}") from exc
        self.paused = False
        self.stopping = False
        await self.wait_healthy(timeout=timeout)

    async def wait_healthy(self, *, timeout: float | None = None) -> None:
        def died() -> str | None:
            if self.alive:
                return None
            code = self.process.returncode if self.process else None
            return f"node {self.name} exited with code {code} before it became healthy"

        await wait_answers(self.spec, self.launch, self.log_path, died, timeout=timeout)

    @property
    def containment(self) -> str:
        """How what it starts is kept with it: `cgroup`, or `ports` (`harness.infra.contain`)."""
        return "cgroup" if self.cgroup is not None else "ports"

    def cpu_seconds(self) -> float:
        """CPU time its processes used (its cgroup's, all of it; else its group's, now)."""
        if self.cgroup is not None:
            used = self.cgroup.cpu_seconds()
            if used is not None:
                return used
        if self.process is None or self.process.poll() is not None:
            return 0.0
        return group_cpu_seconds(self.process.pid)

    def exited_by_itself(self) -> int | None:
        """Its exit status if its process ended and the harness had not asked it to."""
        if self.process is None or self.stopping:
            return None
        return self.process.poll()

    def _signal(self, signum: int) -> None:
        if self.process is not None:
            signal_group(self.process, signum)

    async def kill(self) -> None:
        self.stopping = True
        self._signal(signal.SIGKILL)
        if self.cgroup is not None:
            self.cgroup.kill()  # a daemon it forked too

    async def terminate(self) -> None:
        self.stopping = True
        if self.paused:
            await self.resume()
        self._signal(signal.SIGTERM)
        if self.cgroup is not None:
            self.cgroup.signal(signal.SIGTERM)

    async def pause(self) -> None:
        self._signal(signal.SIGSTOP)
        if self.cgroup is not None:
            self.cgroup.freeze(True)
        self.paused = True

    async def resume(self) -> None:
        if self.cgroup is not None:
            self.cgroup.freeze(False)
        self._signal(signal.SIGCONT)
        self.paused = False

    def sweep(self) -> None:
        """Without a cgroup: stop the processes of this node that still hold its ports after
        it was killed (a daemon it forked), and say so."""
        if self.cgroup is not None:
            return
        ports = [p for p in (self.spec.port, self.spec.pubsub_port) if p]
        for held in stop_holders(ports, self.mark):
            self.notices.append(
                f"node {self.name} left a process behind that held its port: {held};"
                " the harness stopped it (no cgroup here to contain the node)"
            )

    async def wait_exit(self, *, timeout: float = 10.0) -> int | None:
        """Wait for the process to end; its exit code (negative: killed by that signal)."""
        if self.process is None:
            return None
        with trio.move_on_after(timeout):
            code = await self.process.wait()
            self._close_log()
            if self.stopping:
                self.sweep()
            return code
        raise ClusterError(f"node {self.name} still running {timeout}s after it was stopped")

    async def stop(self, *, graceful: bool = True, timeout: float = 5.0) -> None:
        """Terminate (or kill) and wait; escalate to SIGKILL if it does not go in time."""
        self.stopping = True
        if not self.alive:
            self._close_log()
            return
        if graceful:
            await self.terminate()
            with suppress(ClusterError):
                await self.wait_exit(timeout=timeout)
                return
        if self.paused:
            await self.resume()
        await self.kill()
        await self.wait_exit(timeout=timeout)

    async def restart(self) -> None:
        """Kill if running, then start again on the same ports."""
        if self.alive:
            await self.kill()
            await self.wait_exit()
        await self.start()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


@asynccontextmanager
async def open_local_nodes(
    specs: Sequence[NodePlan],
    logs: Path,
    launch: Launch,
    notice: Callable[[str], None] = lambda _: None,
) -> AsyncIterator[dict[str, LocalNode]]:
    """Start every node (one after the other, each health-gated); at the end stop them all,
    paused ones too, shielded and bounded so a Ctrl-C still leaves no process behind."""
    nodes = {s.name: LocalNode(s, logs / f"{s.name}.log", launch=launch) for s in specs}
    run = launch.run or f"p{os.getpid()}"
    for node in nodes.values():
        node.cgroup = Cgroup.create(run, node.name)
    try:
        for node in nodes.values():
            await node.start()
        yield nodes
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(15):
            for node in nodes.values():
                with suppress(ClusterError, OSError):
                    await node.stop(graceful=False)
            for node in nodes.values():
                if node.cgroup is not None:
                    await node.cgroup.remove()
                else:
                    node.sweep()
                for text in node.notices:
                    notice(text)
