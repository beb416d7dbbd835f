"""Worker hosts (`clients.hosts`): machines that run swarm workers, driven over SSH like the
nodes' hosts (`harness.infra.ssh`: one multiplexed connection each, keys only, host keys checked).

Before the cluster starts, `open_worker_hosts` connects every host, learns this machine's
address as the first host sees it (where the clients' proxies must listen) and makes sure the
harness that runs there is this one: it asks the host's install for its identity (version and a
digest of its code, `harness.swarm.worker.identity`) and, when it is missing or another, ships
the wheelhouse (a directory of wheels: the harness's and every dependency's, built once with
`harness wheelhouse`; nothing is downloaded at run time) and installs it offline into a virtual
environment under the host's `directory`, one per identity, then checks again. Hosts are
installed one after another: hosts that share a home directory (NFS, or the tests' namespaces)
then install once.

`CHAOS_TEST_CLOCK_SKEW` (seconds) is a test option: every worker on a host reads its clock that
far off (`--clock-skew`), for the test that the offset measurement recovers it.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import WorkerFailed
from ..foreign import clip
from ..grammar.hosts import WorkerHostSpec
from ..infra.descriptors import check_swarm
from ..infra.ssh import Ssh, SshError, SshHost, open_ssh
from ._wire import identity

WHEELHOUSE_ENV = "CHAOS_WHEELHOUSE"
SKEW_ENV = "CHAOS_TEST_CLOCK_SKEW"
DISTRIBUTION = "channel-chaos-harness"
INSTALL_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class WorkerHost:
    """A connected worker host: its connection, the harness's python there, how many workers,
    and what its set-up cost (seconds; whether this run installed the harness or found it)."""

    spec: WorkerHostSpec
    ssh: Ssh
    python: str
    setup: float
    installed: bool
    limit: int  # the hard descriptor limit there (a worker raises its soft limit to it)

    @property
    def name(self) -> str:
        return self.ssh.host.name


@dataclass(frozen=True, slots=True)
class WorkerHosts:
    """Every worker host of the run, and this machine's address as they see it."""

    hosts: tuple[WorkerHost, ...]
    address: str
    skew: float = 0.0  # the test option's clock skew, applied by every worker on a host

    def described(self) -> dict[str, dict[str, object]]:
        """What the run records of each host (a `setup` op): its workers, its set-up time,
        whether this run installed the harness there, where it reaches this machine."""
        return {
            h.name: {
                "workers": h.spec.workers,
                "setup_seconds": round(h.setup, 3),
                "installed": h.installed,
                "descriptors": h.limit,
                "sees_this_machine_as": self.address,
            }
            for h in self.hosts
        }

    def worker_args(self) -> list[str]:
        return ["--clock-skew", repr(self.skew)] if self.skew else []


def default_wheelhouse() -> Path:
    """Where `harness wheelhouse` builds by default and a run looks: `$CHAOS_WHEELHOUSE`, else
    `wheelhouse/` in the harness's own environment (`sys.prefix`)."""
    return Path(os.environ.get(WHEELHOUSE_ENV) or Path(sys.prefix) / "wheelhouse")


def _source() -> Path | None:
    """The source tree the running harness was installed from in development (editable), if
    that is how it was installed."""
    root = Path(__file__).resolve().parent.parent.parent
    return root if (root / "pyproject.toml").exists() else None


def build_wheelhouse(directory: Path) -> list[Path]:
    """The wheelhouse: this harness and every dependency as wheels in `directory` (pip, from
    the source tree in development, else from the package index: the one step that may
    download); its old wheels removed first, so it holds one harness."""
    from .. import __version__

    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.whl"):
        old.unlink()
    source = _source()
    target = str(source) if source is not None else f"{DISTRIBUTION}=={__version__}"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(directory), target],
        check=True,
    )
    return sorted(directory.glob("*.whl"))


def wheels_of(wheelhouse: Path) -> list[Path]:
    """The wheelhouse's wheels; WorkerFailed when it holds no harness or another version of it
    than this one (what a run ships, and what `harness doctor` looks for)."""
    from .. import __version__

    wheels = sorted(wheelhouse.glob("*.whl"))
    prefix = DISTRIBUTION.replace("-", "_") + "-"
    ours = [w.name for w in wheels if w.name.startswith(prefix)]
    expected = f"{prefix}{__version__}-"
    if not ours or not ours[0].startswith(expected):
        found = ", ".join(ours) or "no harness wheel"
        raise WorkerFailed(
            f"worker hosts need a wheelhouse of this harness ({__version__}) at {wheelhouse}:"
            f" found {found}; build it with `harness wheelhouse` (or set {WHEELHOUSE_ENV})"
        )
    return wheels


def _packed(wheelhouse: Path) -> bytes:
    """The wheelhouse's wheels as a tar archive (`wheels_of`)."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for wheel in wheels_of(wheelhouse):
            tar.add(wheel, arcname=wheel.name)
    return archive.getvalue()


async def _identity_there(ssh: Ssh, python: str) -> dict[str, str] | None:
    try:
        said = await ssh.run([python, "-m", "harness.swarm.worker", "--identity"])
        answer = json.loads(said.strip().splitlines()[-1])
    except (SshError, ValueError, IndexError):
        return None
    return answer if isinstance(answer, dict) else None


async def install(ssh: Ssh, spec: WorkerHostSpec, home: str, wheelhouse: Path) -> tuple[str, bool]:
    """The harness's python on the host, installed from `wheelhouse` unless an install of this
    very code is already there; and whether it was installed now."""
    mine = identity()
    directory = spec.directory
    if directory == "~" or directory.startswith("~/"):  # the user's home there, as a shell would
        directory = home + directory[1:]
    root = f"{directory.rstrip('/')}/{mine['version']}-{mine['digest']}"
    python = f"{root}/venv/bin/python"
    if await _identity_there(ssh, python) == mine:
        return python, False
    packed = _packed(wheelhouse)
    await ssh.run(["rm", "-rf", root])
    await ssh.send(packed, f"{root}/wheels")
    await ssh.run([spec.python, "-m", "venv", f"{root}/venv"], timeout=INSTALL_TIMEOUT)
    await ssh.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--find-links",
            f"{root}/wheels",
            f"{DISTRIBUTION}=={mine['version']}",
        ],
        timeout=INSTALL_TIMEOUT,
    )
    there = await _identity_there(ssh, python)
    if there != mine:
        raise WorkerFailed(
            f"{ssh.host.name}: the harness installed there from {wheelhouse} is"
            f" {clip(str(there))}, this one is {mine}: the wheelhouse holds other code;"
            " rebuild it (`harness wheelhouse`)"
        )
    return python, True


async def _limit(ssh: Ssh) -> int:
    """The host's hard limit on open files for a process started over SSH."""
    said = (await ssh.run(["sh", "-c", "ulimit -Hn"])).strip()
    return 1 << 20 if said == "unlimited" else int(said) if said.isdigit() else 1024


@asynccontextmanager
async def open_worker_hosts(
    specs: Sequence[WorkerHostSpec], logs: Path, wheelhouse: Path | None = None, clients: int = 0
) -> AsyncIterator[WorkerHosts]:
    """Every worker host connected, with this harness installed there, until the block ends
    (then every connection closed: what was started through it is stopped). Before installing,
    each host's descriptor limit is checked for its share of `clients` (exit 3 naming it)."""
    wheelhouse = wheelhouse or default_wheelhouse()
    skew = float(os.environ.get(SKEW_ENV) or 0.0)
    async with AsyncExitStack() as stack:
        hosts: list[WorkerHost] = []
        address = ""
        for k, spec in enumerate(specs):
            begun = time.monotonic()
            ssh = await stack.enter_async_context(
                open_ssh(SshHost.of(spec), logs / f"worker-host.{k}.log")
            )
            home, seen = await ssh.vantage()
            address = address or seen
            limit = await _limit(ssh)
            check_swarm(clients, sum(s.workers for s in specs), limit, ssh.host.name)
            python, installed = await install(ssh, spec, home, wheelhouse)
            setup = time.monotonic() - begun
            hosts.append(WorkerHost(spec, ssh, python, setup, installed, limit))
        yield WorkerHosts(tuple(hosts), address, skew)


__all__ = [
    "SKEW_ENV",
    "WHEELHOUSE_ENV",
    "WorkerHost",
    "WorkerHosts",
    "build_wheelhouse",
    "default_wheelhouse",
    "install",
    "open_worker_hosts",
    "wheels_of",
]
