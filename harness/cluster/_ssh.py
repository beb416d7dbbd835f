"""The SSH backend: each node of the cluster under test runs on a machine of its own, driven over
SSH from this one (Jepsen's control node).

One multiplexed OpenSSH connection per host (`harness.infra.ssh`); the node's command runs there
in a process group of its own, its output streamed back into `logs/NODE.log`; kill, terminate,
pause and resume are signals to that group over the same connection, and a restart starts the
command again on the same ports. Clients reach the nodes through Toxiproxy on this machine (the
client links); the nodes dial each other directly. A node whose host address is loopback keeps
the free ports the harness picked (several "hosts" on one machine, as the tests have them);
on a machine of its own it listens on 4000 (websockets) and 4001 (the reference mesh), as in
production.

Node links are cut by packet rules on each host (`harness.infra.hostrules`, opened by
`open_cluster` when a fault will cut one). What is started on a host dies with the run, and with
the harness even after a SIGKILL: the watchdog stops the local `ssh` carrying the command, and
the wrapper on the host kills its group (and removes the run's rules) when the channel closes.
The node's command must already run on its host (the harness installs itself only where swarm
workers run: `harness.swarm._hosts`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path

import trio

from ..errors import ClusterError
from ..infra.ssh import RemoteGroup, Ssh, SshError, SshHost, open_ssh
from ._base import Host, Launch, NodePlan, Placed
from ._local import command, placeholders, wait_answers

EXITED = re.compile(rb"exited with status (\d+)")


class SshNode(Placed):
    """One node on its host: start it, signal it, wait for it."""

    def __init__(
        self, spec: NodePlan, log_path: Path, host: Host, ssh: Ssh, launch: Launch
    ) -> None:
        self.spec = spec
        self.log_path = log_path
        self.host = host
        self.ssh = ssh
        self.launch = launch
        self.group: RemoteGroup | None = None
        self.paused = False
        self.stopping = False

    @property
    def alive(self) -> bool:
        return self.group is not None and self.group.alive

    @property
    def pid(self) -> int | None:
        return None  # its process group is on another machine (`group.pgid` there)

    @property
    def containment(self) -> str:
        return "ssh"

    def cpu_seconds(self) -> float:
        return 0.0  # on another machine: not measured

    def argv(self) -> list[str]:
        """The command on the host: the template filled, with the launch's environment and
        working directory."""
        argv = command(self.spec, self.launch.template, python=self.host.python)
        plain = placeholders(self.spec, quote=False, python=self.host.python)
        env = {
            "PYTHONUNBUFFERED": "1",
            **{k: v.format(**plain) for k, v in self.launch.env.items()},
        }
        wrapped = ["env", *(f"{k}={v}" for k, v in env.items())]
        if self.launch.cwd:
            cwd = self.launch.cwd.format(**plain)
            wrapped += ["sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", cwd]
        return [*wrapped, *argv]

    async def start(self, *, timeout: float | None = None) -> None:
        if self.alive:
            raise ClusterError(f"node {self.name} is already running")
        argv = self.argv()
        await trio.Path(self.log_path.parent).mkdir(parents=True, exist_ok=True)
        async with await trio.open_file(self.log_path, "ab") as log:
            await log.write(f"--- start on {self.host.ssh.name}: {shlex.join(argv)}\n".encode())
        try:
            self.group = await self.ssh.start(argv, self.log_path)
        except SshError as exc:
            raise ClusterError(f"node {self.name}: {exc}") from None
        self.paused = False
        self.stopping = False
        await self.wait_healthy(timeout=timeout)

    async def wait_healthy(self, *, timeout: float | None = None) -> None:
        where = f" on {self.host.ssh.name}"

        def died() -> str | None:
            return None if self.alive else f"node {self.name}{where} exited before it was healthy"

        await wait_answers(
            self.spec, self.launch, self.log_path, died, timeout=timeout, where=where
        )

    def exited_by_itself(self) -> int | None:
        if self.group is None or self.stopping or self.group.alive:
            return None
        return self._status()

    def _status(self) -> int:
        """The command's exit status, as the wrapper on the host wrote it (1 if it did not)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(0, self.log_path.stat().st_size - 4096))
                found = EXITED.findall(log.read())
        except OSError:
            found = []
        return int(found[-1]) if found else 1

    async def _signal(self, name: str) -> None:
        if self.group is not None and self.group.alive:
            await self.ssh.signal(self.group, name)

    async def kill(self) -> None:
        self.stopping = True
        await self._signal("KILL")

    async def terminate(self) -> None:
        self.stopping = True
        if self.paused:
            await self.resume()
        await self._signal("TERM")

    async def pause(self) -> None:
        await self._signal("STOP")
        self.paused = True

    async def resume(self) -> None:
        await self._signal("CONT")
        self.paused = False

    async def wait_exit(self, *, timeout: float = 10.0) -> int | None:
        """Wait until its channel closes (the group on the host ended); its exit status as the
        wrapper there wrote it, 1 when the group was killed before it could write one."""
        if self.group is None:
            return None
        with trio.move_on_after(timeout):
            await self.group.carrier.wait()
            return self._status()
        raise ClusterError(f"node {self.name} still running {timeout}s after it was stopped")

    async def stop(self, *, graceful: bool = True, timeout: float = 5.0) -> None:
        self.stopping = True
        if self.group is None:
            return
        if graceful and self.alive:
            await self.terminate()
            with suppress(ClusterError):
                await self.wait_exit(timeout=timeout)
        if self.paused:
            await self.resume()
        with trio.move_on_after(timeout + 5):
            await self.ssh.stop(self.group, grace=0.0 if not graceful else timeout)

    async def restart(self) -> None:
        if self.alive:
            await self.kill()
            await self.wait_exit()
        await self.start()


@asynccontextmanager
async def open_ssh_nodes(
    specs: Sequence[NodePlan],
    logs: Path,
    launch: Launch,
    notice: Callable[[str], None] = lambda _: None,
) -> AsyncIterator[dict[str, SshNode]]:
    """One connection per distinct host, every node started on its own (each health-gated); at
    the end every node stopped and every connection closed, shielded and bounded."""
    if len(launch.hosts) != len(specs):
        raise ClusterError(f"backend ssh needs one host per node, got {len(launch.hosts)}")
    async with AsyncExitStack() as stack:
        connections: dict[SshHost, Ssh] = {}
        nodes: dict[str, SshNode] = {}
        for spec, host in zip(specs, launch.hosts, strict=True):
            if host.ssh not in connections:
                try:
                    connections[host.ssh] = await stack.enter_async_context(
                        open_ssh(host.ssh, logs / f"ssh.{host.ssh.host}.{host.ssh.port}.log")
                    )
                except SshError as exc:
                    raise ClusterError(str(exc)) from None
            nodes[spec.name] = SshNode(
                spec, logs / f"{spec.name}.log", host, connections[host.ssh], launch
            )
        try:
            for node in nodes.values():
                await node.start()
            yield nodes
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(15):
                for node in nodes.values():
                    with suppress(ClusterError, SshError, OSError):
                        await node.stop(graceful=False)
