"""Hosts over SSH (`harness.infra.ssh`), against a real OpenSSH server on loopback: one
multiplexed connection, a command's process group on the host, signals by group, output streamed
back, host keys checked unless turned off, privilege found, and nothing left on the host when
the harness is stopped, even by SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from harness.infra.ssh import SshError, SshHost, open_ssh
from tests.support.sshd import keypair, sshd
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent


def state(pid: int) -> str | None:
    """A process's state letter (R, S, T, Z...), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def group_members(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


async def test_a_command_runs_in_its_own_group_takes_signals_and_streams_its_output(tmp_path):
    with sshd(tmp_path / "sshd") as host:
        async with open_ssh(host, tmp_path / "ssh.log") as ssh:
            assert await ssh.privilege() == "root"
            log = tmp_path / "logs" / "n1.log"
            group = await ssh.start(["sh", "-c", 'echo "ready; it\'s up"; exec sleep 300'], log)
            await wait_until(lambda: "ready; it's up" in log.read_text(), what="output")
            assert log.read_text().splitlines()[0] == str(group.pgid)
            assert group.pgid in group_members(group.pgid)
            await ssh.signal(group, "STOP")
            await wait_until(lambda: state(group.pgid) == "T", what="paused")
            await ssh.signal(group, "CONT")
            await wait_until(lambda: state(group.pgid) in ("S", "R"), what="resumed")
            await ssh.stop(group)
            await wait_until(lambda: not group_members(group.pgid), what="gone")
            assert not group.alive
            with pytest.raises(SshError, match=r"127.0.0.1:\d+: `false` failed \(exit 1\)"):
                await ssh.run(["false"])
            assert (await ssh.run(["echo", "a b; c"])).strip() == "a b; c"  # quoted, not parsed


async def test_a_command_that_ends_closes_its_channel_and_says_its_status(tmp_path):
    with sshd(tmp_path / "sshd") as host:
        async with open_ssh(host, tmp_path / "ssh.log") as ssh:
            log = tmp_path / "n1.log"
            group = await ssh.start(["sh", "-c", "echo bye; exit 3"], log)
            with trio.fail_after(10):
                await group.carrier.wait()
            assert "exited with status 3" in log.read_text()


async def test_an_unknown_host_key_is_refused_unless_the_check_is_turned_off(tmp_path):
    with sshd(tmp_path / "sshd") as host:
        stranger = tmp_path / "empty_known_hosts"
        stranger.write_text("")
        unknown = SshHost(host.host, host.port, host.user, host.identity, stranger)
        with pytest.raises(SshError, match=rf"127.0.0.1:{host.port}: no SSH connection"):
            async with open_ssh(unknown, tmp_path / "ssh1.log"):
                pass
        trusting = SshHost(host.host, host.port, host.user, host.identity, stranger, False)
        async with open_ssh(trusting, tmp_path / "ssh2.log") as ssh:
            assert (await ssh.run(["echo", "in"])).strip() == "in"
        assert stranger.read_text() == ""  # nothing learnt


async def test_a_host_that_refuses_the_key_is_named(tmp_path):
    with sshd(tmp_path / "sshd") as host:
        other = tmp_path / "other_key"
        keypair(other)
        refused = SshHost(host.host, host.port, host.user, other, host.known_hosts)
        with pytest.raises(SshError, match=r"no SSH connection.*key authentication"):
            async with open_ssh(refused, tmp_path / "ssh.log"):
                pass


SCRIPT = """
import sys, trio
from pathlib import Path
from harness.infra.ssh import SshHost, open_ssh

async def main():
    host = SshHost("127.0.0.1", int(sys.argv[1]), "root", Path(sys.argv[2]), Path(sys.argv[3]))
    async with open_ssh(host, Path(sys.argv[4]) / "ssh.log") as ssh:
        group = await ssh.start(["sleep", "300"], Path(sys.argv[4]) / "node.log")
        print(group.pgid, flush=True)
        await trio.sleep_forever()

trio.run(main)
"""


def test_nothing_is_left_on_the_host_when_the_harness_is_sigkilled(tmp_path):
    """The watchdog stops the local `ssh` carrying the command; its channel's stdin ends and the
    wrapper on the host kills its own group."""
    with sshd(tmp_path / "sshd") as host:
        harness = subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(SCRIPT),
                str(host.port),
                str(host.identity),
                str(host.known_hosts),
                str(tmp_path / "ctl"),
            ],
            stdout=subprocess.PIPE,
            cwd=ROOT,
            start_new_session=True,
        )
        assert harness.stdout is not None
        pgid = int(harness.stdout.readline())
        assert group_members(pgid)
        os.kill(harness.pid, signal.SIGKILL)
        harness.wait(timeout=10)
        trio.run(lambda: wait_until(lambda: not group_members(pgid), what="the group gone"))
