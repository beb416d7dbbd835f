"""Hosts the harness drives over SSH (Jepsen's control-node model): the system's OpenSSH client,
one multiplexed connection per host, no agent and no daemon on the host.

    async with open_ssh(SshHost("10.0.0.7", user="chaos", identity=key), log) as ssh:
        await ssh.privilege()                     # "root" or "sudo", else SshError naming the host
        group = await ssh.start(["serve", "--port", "4000"], log)   # its process group there
        await ssh.signal(group, "STOP")           # pause; CONT, TERM, KILL likewise
        out = await ssh.run(["nft", "list", "ruleset"], privileged=True)

`open_ssh` starts the host's control master (`ssh -M -N`, a process group of its own that the
watchdog kills with the harness) and every later call goes through its socket: one TCP connection
and one authentication per host (measured on loopback: ~180 ms to connect, then ~90 ms a command
or a group started: a local `ssh` process and a session on the host, no new handshake).

A command started with `start` runs on the host under a small `sh` wrapper in a session of its
own (`setsid -w`), so the remote process group is the wrapper's pid: the wrapper prints it first
(the log's first line), runs the command, and keeps the SSH channel's stdin open on a descriptor
of its own; when that stdin reaches end of file (the local `ssh` was stopped, or the harness was
killed and the watchdog stopped it), the wrapper SIGKILLs its whole group. So nothing started on
a host outlives the harness even after a SIGKILL, and teardown needs no second connection. The
command's output streams back through the channel into the local log.

Host keys are checked by default (`StrictHostKeyChecking=yes` against the host's `known_hosts`,
or the user's); `check_host_key=False` is the explicit opt-out (`StrictHostKeyChecking=no` and
no file: every key accepted, nothing learnt). `BatchMode=yes`: never a password prompt.

Hand-written over the `ssh` binary rather than a Python SSH library (asyncssh, paramiko): the
issue asks for the system's OpenSSH client, its `known_hosts`, keys, agent and `~/.ssh/config`
all apply as an operator expects, and multiplexing is OpenSSH's own (`ControlMaster`).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

import trio

from ..errors import HarnessError
from ..foreign import clip
from .process import last_words, open_process_group, stop_process_group

if TYPE_CHECKING:
    from ..grammar.hosts import HostSpec

SSH = "ssh"
CONNECT_TIMEOUT = 10.0
ALIVE_INTERVAL, ALIVE_COUNT = 2, 3
SIGNALS = frozenset({"TERM", "KILL", "STOP", "CONT", "INT", "HUP"})
# On the host: print the group's id (the wrapper's pid: `setsid -w` made it a session leader),
# keep the channel's stdin on fd 3, run the command; when the command ends or the channel's stdin
# reaches end of file (a background job's stdin is /dev/null, hence fd 3), run the cleanup (a
# command line, "" for none) and kill the group.
WRAPPER = (
    'exec 3<&0; done=$1; shift; echo "$$"; "$@" </dev/null & child=$!; '
    '(read _ <&3; eval "$done"; kill -KILL 0) & '
    'wait "$child"; echo "exited with status $?" >&2; eval "$done"; kill -KILL 0'
)
# The same for a command that talks over the channel (`start(piped=True)`: a swarm worker): the
# group's id goes to stderr (the log), the command reads the channel's stdin itself (a background
# job's stdin would be /dev/null, hence fd 3) and stops at its end of file; stdout is the
# command's own, back to the harness.
PIPED = (
    'exec 3<&0; done=$1; shift; echo "$$" >&2; "$@" <&3 3<&- & child=$!; exec 3<&-; '
    'wait "$child"; echo "exited with status $?" >&2; eval "$done"; kill -KILL 0'
)


class SshError(HarnessError):
    """A host could not be reached, refused us, lacked the privilege asked for, or a command on it
    failed; the message names the host."""


@dataclass(frozen=True, slots=True)
class SshHost:
    """Where and as whom: `user@host:port`, a key (`identity`), the host keys to trust."""

    host: str
    port: int = 22
    user: str | None = None
    identity: Path | None = None
    known_hosts: Path | None = None  # None: the user's own (~/.ssh/known_hosts)
    check_host_key: bool = True  # False: the explicit opt-out, every host key accepted

    @classmethod
    def of(cls, spec: HostSpec) -> SshHost:
        """The host a scenario names (`cluster.hosts`, `clients.hosts`), its paths expanded."""
        identity = Path(spec.identity).expanduser() if spec.identity else None
        known = Path(spec.known_hosts).expanduser() if spec.known_hosts else None
        return cls(spec.host, spec.port, spec.user, identity, known, spec.check_host_key)

    @property
    def name(self) -> str:
        who = f"{self.user}@" if self.user else ""
        return f"{who}{self.host}:{self.port}"

    def options(self) -> list[str]:
        options = ["-p", str(self.port), "-o", "BatchMode=yes"]
        options += ["-o", f"ConnectTimeout={CONNECT_TIMEOUT:g}"]
        # a host that stops answering (network gone, machine down) ends the connection, and so
        # every command on it, after ALIVE_INTERVAL * ALIVE_COUNT seconds instead of never
        options += ["-o", f"ServerAliveInterval={ALIVE_INTERVAL}"]
        options += ["-o", f"ServerAliveCountMax={ALIVE_COUNT}"]
        if self.identity is not None:
            options += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        if not self.check_host_key:
            options += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        else:
            options += ["-o", "StrictHostKeyChecking=yes"]
            if self.known_hosts is not None:
                options += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.user:
            options += ["-l", self.user]
        return options


@dataclass(eq=False, slots=True)
class RemoteGroup:
    """A command started on a host: its process group there, and the local `ssh` carrying it."""

    host: SshHost
    pgid: int
    carrier: trio.Process
    log: Path

    @property
    def alive(self) -> bool:
        """Whether the command still runs (its channel closes when it ends)."""
        return self.carrier.poll() is None


@dataclass(eq=False)
class Ssh:
    """One host's multiplexed connection (`open_ssh`)."""

    host: SshHost
    control: Path  # the control master's socket
    groups: list[RemoteGroup] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)
    sudo: bool = False  # privileged commands go through `sudo -n` (`privilege` found no root)

    def argv(self, command: Sequence[str] = (), *options: str) -> list[str]:
        """The local `ssh` command line for `command` on the host, through the master."""
        base = [SSH, "-S", str(self.control), *self.host.options(), *options, self.host.host]
        return [*base, "--", shlex.join(command)] if command else base

    def privileged(self, command: Sequence[str]) -> list[str]:
        """`command` as it runs with privilege on the host: itself as root, else through
        passwordless sudo (`privilege` found which)."""
        return ["sudo", "-n", *command] if self.sudo else list(command)

    async def local(self, argv: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
        """The local `ssh` (a command through the master, or an operation on it: `-O check`),
        its output captured, its exit status not checked."""
        return await trio.run_process(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )

    async def run(
        self, command: Sequence[str], *, privileged: bool = False, timeout: float = 30.0
    ) -> str:
        """Run `command` on the host and return its output; SshError naming the host and the
        command's last words if it fails or takes longer than `timeout`."""
        command = self.privileged(command) if privileged else list(command)
        with trio.move_on_after(timeout) as scope:
            done = await self.local(self.argv(command))
        if scope.cancelled_caught:
            raise SshError(f"{self.host.name}: `{shlex.join(command)}` took over {timeout:g}s")
        if done.returncode != 0:
            said = clip((done.stderr or done.stdout).decode(errors="replace").strip())
            raise SshError(
                f"{self.host.name}: `{clip(shlex.join(command))}` failed"
                f" (exit {done.returncode}){': ' + said if said else ''}"
            )
        return done.stdout.decode(errors="replace")

    async def vantage(self) -> tuple[str, str]:
        """The user's home directory there, and this machine's address as the host sees it
        (the client end of the SSH connection: where the host reaches the control node)."""
        said = await self.run(["sh", "-c", 'echo "$HOME"; echo "$SSH_CONNECTION"'])
        home, _, connection = said.partition("\n")
        if not home.startswith("/") or not connection.split():
            raise SshError(f"{self.host.name}: no home or SSH_CONNECTION there ({clip(said)})")
        return home, connection.split()[0]

    async def send(self, files: bytes, directory: str, *, timeout: float = 120.0) -> None:
        """Unpack `files` (a tar archive) into `directory` on the host (made if missing)."""
        unpack = f"mkdir -p {shlex.quote(directory)} && tar -xf - -C {shlex.quote(directory)}"
        with trio.move_on_after(timeout) as scope:
            done = await trio.run_process(
                self.argv(["sh", "-c", unpack]),
                stdin=files,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        if scope.cancelled_caught or done.returncode != 0:
            said = "" if scope.cancelled_caught else clip(done.stderr.decode(errors="replace"))
            raise SshError(
                f"{self.host.name}: could not copy {len(files):,} bytes into {directory}"
                f" ({'over ' + format(timeout, 'g') + 's' if scope.cancelled_caught else said})"
            )

    async def privilege(self) -> Literal["root", "sudo"]:
        """How privileged commands (packet rules) will run on the host: as root, or through
        passwordless sudo; SshError naming the host when neither is there."""
        if (await self.run(["id", "-u"])).strip() == "0":
            return "root"
        try:
            await self.run(["sudo", "-n", "true"])
        except SshError:
            raise SshError(
                f"{self.host.name}: packet rules need root or passwordless sudo there, and"
                f" {self.host.user or 'this user'} has neither (`sudo -n true` failed)"
            ) from None
        self.sudo = True
        return "sudo"

    async def start(
        self,
        command: Sequence[str],
        log: Path,
        *,
        cleanup: Sequence[str] = (),
        timeout: float = 10.0,
        piped: bool = False,
    ) -> RemoteGroup:
        """Start `command` on the host in a process group of its own, its output streamed into
        `log` (whose first line is the group's id there); `cleanup` runs there when it ends or
        its channel closes (the harness stopped it, or died). `piped`: the command's stdin and
        stdout are the carrier's pipes (`group.carrier.stdin`, `.stdout`), only its errors go to
        `log`, and it must stop by itself at its stdin's end of file."""
        log.parent.mkdir(parents=True, exist_ok=True)
        sink = log.open("ab")
        self._logs.append(sink)
        begin = sink.tell()
        done = shlex.join(cleanup) if cleanup else ""
        wrapper = PIPED if piped else WRAPPER
        remote = ["setsid", "-w", "sh", "-c", wrapper, "sh", done, *command]
        carrier = await open_process_group(
            self.argv(remote),
            subprocess.PIPE if piped else sink,
            stdin=subprocess.PIPE,
            stderr=sink,
        )
        with trio.move_on_after(timeout):
            while True:
                first = _first_line(log, begin)
                if first is not None or carrier.poll() is not None:
                    break
                await trio.sleep(0.01)
        first = _first_line(log, begin)
        if first is None or not first.isdigit():
            with trio.CancelScope(shield=True):
                await stop_process_group(carrier, grace=1.0)
            said = clip(_tail(log, begin))
            raise SshError(
                f"{self.host.name}: `{clip(shlex.join(command))}` did not start"
                f"{': ' + said if said else ''}"
            )
        group = RemoteGroup(self.host, int(first), carrier, log)
        self.groups.append(group)
        return group

    async def signal(self, group: RemoteGroup, name: str) -> None:
        """Send signal `name` (TERM, KILL, STOP, CONT, INT, HUP) to the group on its host."""
        if name not in SIGNALS:
            raise ValueError(f"not a signal the harness sends: {name}")
        with suppress(SshError):  # a group that already ended has nothing to signal
            await self.run(["kill", f"-{name}", "--", f"-{group.pgid}"])

    async def stop(self, group: RemoteGroup, *, grace: float = 3.0) -> None:
        """TERM the group, KILL it after `grace`, and wait for its channel to close."""
        if group.alive:
            await self.signal(group, "TERM")
            with trio.move_on_after(grace):
                await group.carrier.wait()
        if group.alive:
            await self.signal(group, "KILL")
        await stop_process_group(group.carrier, grace=grace)


def _tail(log: Path, begin: int) -> str:
    with log.open("rb") as f:
        f.seek(max(begin, log.stat().st_size - 4096))
        return f.read().decode(errors="replace").strip()


def _first_line(log: Path, begin: int) -> str | None:
    with log.open("rb") as f:
        f.seek(begin)
        data = f.read(64)
    line, newline, _ = data.partition(b"\n")
    return line.decode(errors="replace").strip() if newline else None


@asynccontextmanager
async def open_ssh(host: SshHost, log: Path) -> AsyncIterator[Ssh]:
    """The host's control master (its own output into `log`), up until the block ends; then
    every group started through it is stopped and the master closed. SshError naming the host
    when it cannot be reached. The control socket lives in a short directory of its own under
    the temporary directory (a Unix socket's path is at most 107 bytes)."""
    await trio.Path(log.parent).mkdir(parents=True, exist_ok=True)
    control_dir = Path(tempfile.mkdtemp(prefix="chaos-ssh-"))
    ssh = Ssh(host, control_dir / "master")
    with log.open("ab") as sink:
        master = await open_process_group(
            ssh.argv((), "-M", "-N", "-o", "ControlPersist=no"), sink, stdin=subprocess.DEVNULL
        )
    try:
        await _wait_master(ssh, master, log)
        yield ssh
    finally:
        with trio.CancelScope(shield=True):
            for group in ssh.groups:
                with trio.move_on_after(10):
                    await ssh.stop(group)
            for opened in ssh._logs:
                opened.close()
            with trio.move_on_after(5):
                await ssh.local(ssh.argv((), "-O", "exit"))
            await stop_process_group(master, grace=2.0)
            shutil.rmtree(control_dir, ignore_errors=True)


async def _wait_master(ssh: Ssh, master: trio.Process, log: Path) -> None:
    with trio.move_on_after(CONNECT_TIMEOUT + 5):
        while master.poll() is None:
            if (await ssh.local(ssh.argv((), "-O", "check"))).returncode == 0:
                return
            await trio.sleep(0.05)
    raise SshError(
        f"{ssh.host.name}: no SSH connection{clip(last_words(log))}; the harness needs key"
        " authentication"
        " (BatchMode) and, unless the host key check is turned off, the host's key in known_hosts"
    )
