"""A real OpenSSH server for a test: Debian's `sshd` on a loopback port, its host key and the
client's key made for the test, the client's `known_hosts` written from the host key. Started as
the test's user (root in CI: sshd's privilege separation wants root and `/run/sshd`); stopped by
its pid at the end. Skipped without sshd or root on a developer's machine, failed under
`CI=true`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from harness.infra.process import free_ports
from harness.infra.ssh import SshHost

SSHD = "/usr/sbin/sshd"
ROOT = Path(__file__).resolve().parent.parent.parent  # the repository (where `harness` runs)


def keypair(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path), "-C", path.name],
        check=True,
    )
    return path


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def server_files(root: Path, listen: str, port: int) -> tuple[Path, Path, Path]:
    """An sshd's config for `listen`:`port` with a host key and the client key it lets in;
    returns (config, client key, the client's known_hosts line file)."""
    root.mkdir(parents=True, exist_ok=True)
    host_key = root / "host_key"
    if not host_key.exists():
        keypair(host_key)
    user_key = root / "user_key"
    if not user_key.exists():
        keypair(user_key)
    authorized = root / "authorized_keys"
    authorized.write_text((root / "user_key.pub").read_text())
    config = root / f"sshd_config.{listen}"
    config.write_text(
        f"Port {port}\nListenAddress {listen}\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {authorized}\nPidFile {root / f'sshd.{listen}.pid'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nLogLevel VERBOSE\n"
        "MaxSessions 64\nMaxStartups 64\n"
    )
    known = root / "known_hosts"
    public = (root / "host_key.pub").read_text().split()
    entry = f"[{listen}]:{port}" if port != 22 else listen
    with known.open("a") as f:
        f.write(f"{entry} {public[0]} {public[1]}\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation's chroot (Debian's package)
    return config, user_key, known


def require_sshd() -> None:
    """Skip without sshd or root on a developer's machine; fail under CI=true."""
    reason = None
    if not (Path(SSHD).exists() and shutil.which("ssh")):
        reason = "openssh-server is not installed (`apt-get install openssh-server`)"
    elif os.geteuid() != 0:
        reason = "sshd's privilege separation needs root"
    if reason is not None:
        if os.environ.get("CI") == "true":  # a green CI cannot hide an SSH test that never ran
            pytest.fail(f"CI=true but the SSH tests cannot run: {reason}")
        pytest.skip(reason)


@contextmanager
def sshd(root: Path) -> Iterator[SshHost]:
    """An sshd on 127.0.0.1 that lets in the key it made (as the test's user), and the `SshHost`
    that reaches it with host key checking on."""
    require_sshd()
    (port,) = free_ports(1)
    config, user_key, known = server_files(root, "127.0.0.1", port)
    log = (root / "sshd.log").open("wb")
    server = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 10
        while not listening(port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"sshd did not listen: {(root / 'sshd.log').read_text()}")
            time.sleep(0.01)
        yield SshHost("127.0.0.1", port, "root", user_key, known)
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


@asynccontextmanager
async def namespaced_hosts(
    keys: Path, names: list[str], *, soft_limit: int | None = None
) -> AsyncIterator[object]:
    """Hosts that are network namespaces of a hub (`open_hub`: host i at 10.201.i.2, as root),
    Debian's sshd in each letting in the key made under `keys`; yields the hub. `soft_limit`:
    the sshds' sessions start with that soft limit of open files (1,024 on a stock host)."""
    limited = ["prlimit", f"--nofile={soft_limit}:"] if soft_limit else []
    import trio

    from harness.infra.netns import open_hub

    require_sshd()
    async with open_hub(names) as hub:
        servers = []
        for i, name in enumerate(names, start=1):
            config, _, _ = server_files(keys, f"10.201.{i}.2", 22)
            servers.append(
                await trio.lowlevel.open_process(
                    hub.nodes[name].argv([*limited, SSHD, "-D", "-e", "-f", str(config)]),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        try:
            yield hub
        finally:
            for server in servers:
                server.terminate()
                await server.wait()


async def run_in_hub(
    hub: Any, scenario: Path, out: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """`harness run SCENARIO --out OUT` inside the hub's namespace, its output captured."""
    import trio

    return await trio.run_process(
        hub.namespace.argv(
            [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(out)]
        ),
        cwd=ROOT,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def running(module: str, *words: str) -> list[int]:
    """The live processes that run `python -m module` with every one of `words` in their
    arguments (what a test looks for on its hosts after the harness is gone)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        ours = argv[1:3] == [b"-m", module.encode()] and state != "Z"
        if ours and all(any(w.encode() in a for a in argv) for w in words):
            found.append(int(proc.name))
    return found
