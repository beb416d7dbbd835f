"""`harness doctor`: what each feature needs, found or not, with the command that installs it.

Every look-up is the one `harness run` makes (`find_server_binary` for Toxiproxy,
`find_redis_binary`, `cluster._image.engine` and `check_image`, `cluster._compose.compose_cli`,
`netns.refused` for `network: isolated`, `default_wheelhouse` for worker hosts),
so the doctor cannot say "found" where a run would not find it. A part the core needs (Toxiproxy:
every run puts it on every link) decides the exit code (0 found, 3 missing); the others say which
keys of a scenario will not work without them. `versions()` is what `harness --version` prints.

The reference node image for the container backends is built from a clone (`make image`: it
bootstraps a Debian base with debootstrap and copies the sources of the tree): the package does
not carry the image build, and the doctor says so when the image is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from .. import __version__
from ..errors import HarnessError

TOXIPROXY_VERSION = "2.12.0"  # the version the harness is tested with (the Makefile's)
GO_INSTALL = (
    f"GOBIN=$PWD/bin go install -ldflags='-X github.com/Shopify/toxiproxy/v2.Version="
    f"{TOXIPROXY_VERSION}' github.com/Shopify/toxiproxy/v2/cmd/server@v{TOXIPROXY_VERSION}"
    " && mv bin/server bin/toxiproxy-server && export TOXIPROXY_SERVER=$PWD/bin/toxiproxy-server"
)


@dataclass(frozen=True, slots=True)
class Part:
    """One thing a feature needs: whether it was found, what it is, what needs it."""

    name: str
    found: bool
    detail: str  # version and path, or why not
    needed_by: str
    install: str = ""  # the command (or step) that gets it
    core: bool = False  # every run needs it
    stale: bool = False  # found, but not what this harness would use (an old image)


def _version(argv: list[str], pattern: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"? ({exc})"
    found = re.search(pattern, done.stdout + done.stderr)
    return found.group(1) if found else "?"


def toxiproxy() -> Part:
    from .toxiproxy import find_server_binary

    needed = "every run (a proxy on every client and node link); or pass --toxiproxy HOST:PORT"
    try:
        binary = find_server_binary()
    except HarnessError as exc:
        return Part("toxiproxy-server", False, str(exc).split(";")[0], needed, GO_INSTALL, True)
    version = _version([str(binary), "-version"], r"version (\S+)")
    return Part("toxiproxy-server", True, f"{version} {binary}", needed, core=True)


def redis() -> Part:
    from .redis import find_redis_binary

    needed = "cluster.pubsub: redis"
    try:
        binary = find_redis_binary()
    except HarnessError:
        return Part("redis-server", False, "not found", needed, "apt-get install redis-server")
    version = _version([str(binary), "--version"], r"v=(\S+)")
    return Part("redis-server", True, f"{version} {binary}", needed)


def docker_engine() -> list[Part]:
    from ..cluster._image import REFERENCE_IMAGE, check_image, engine

    needed = "cluster.backend: docker and compose"
    try:
        client = engine()
    except HarnessError as exc:
        install = "apt-get install docker.io, then start dockerd (the README's Docker section)"
        return [Part("Docker engine", False, str(exc).split(";")[0], needed, install)]
    try:
        version = str(client.version().get("Version", "?"))
        parts = [Part("Docker engine", True, version, needed)]
        try:
            stale = check_image(client, REFERENCE_IMAGE)
        except HarnessError:
            parts.append(
                Part(
                    f"node image {REFERENCE_IMAGE}",
                    False,
                    "not on the engine",
                    "cluster.backend: docker with the reference server",
                    "from a clone of the harness: make image (the package does not carry the"
                    " image build)",
                )
            )
        else:
            detail = stale or "present, built from these sources"
            parts.append(
                Part(
                    f"node image {REFERENCE_IMAGE}",
                    True,
                    detail,
                    needed,
                    "from a clone of the harness: make image",
                    stale=stale is not None,
                )
            )
        return parts
    finally:
        client.close()


def compose() -> Part:
    from ..cluster._compose import compose_cli

    needed = "cluster.backend: compose"
    try:
        cli = compose_cli()
    except HarnessError:
        return Part("compose CLI", False, "not found", needed, "apt-get install docker-compose")
    version = _version([*cli, "version"], r"(v?\d+\.\d+\.\d+)")
    return Part("compose CLI", True, f"{' '.join(cli)} {version}", needed)


def chromium() -> Part:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    needed = "nothing at run time (the report needs no browser; this suite opens one in a test)"
    return Part("chromium", bool(found), found or "not found", needed, "apt-get install chromium")


def namespaces() -> Part:
    from . import netns

    needed = "cluster.network: isolated (a network namespace per node, packet rules)"
    why = netns.refused()  # the run's own test: the namespaces, a veth pair in them
    nft = shutil.which("nft")
    if why is None and nft is None:
        why = "nft not found (the packet rules)"
    install = "apt-get install util-linux iproute2 nftables; without root: user namespaces on"
    how = "rootless (a user namespace)" if netns.rootless() else "as root"
    return Part("network namespaces", why is None, why or f"{how}, nft {nft}", needed, install)


def ssh() -> Part:
    found = shutil.which("ssh")
    needed = "cluster.backend: ssh and clients.hosts (the system's OpenSSH client)"
    detail = f"{_version([found, '-V'], r'(OpenSSH_[^ ,]+)')} {found}" if found else "not found"
    return Part("ssh", bool(found), detail, needed, "apt-get install openssh-client")


def wheelhouse() -> Part:
    from ..errors import WorkerFailed
    from ..swarm._hosts import WHEELHOUSE_ENV, default_wheelhouse, wheels_of

    where = default_wheelhouse()
    try:
        found, detail = True, f"{len(wheels_of(where))} wheels in {where}"
    except WorkerFailed:  # the run's own look-up
        found, detail = False, f"no wheel of this harness ({__version__}) in {where}"
    needed = f"clients.hosts (what a worker host installs; --wheelhouse or {WHEELHOUSE_ENV})"
    return Part("wheelhouse", found, detail, needed, "harness wheelhouse")


CHECKS: tuple[Callable[[], Part | list[Part]], ...] = (
    toxiproxy,
    redis,
    docker_engine,
    compose,
    namespaces,
    ssh,
    wheelhouse,
    chromium,
)


def examine() -> list[Part]:
    parts: list[Part] = []
    for check in CHECKS:
        found = check()
        parts.extend(found if isinstance(found, list) else [found])
    return parts


def report(parts: list[Part]) -> tuple[list[str], int]:
    """The doctor's lines and its exit code (3 when a part every run needs is missing)."""
    lines = [f"channel-chaos-harness {__version__} (Python {sys.version.split()[0]}, {sys.prefix})"]
    for part in parts:
        mark = "MISS" if not part.found else "old " if part.stale else "ok  "
        lines.append(f"  {mark} {part.name}: {part.detail}")
        lines.append(f"       for {part.needed_by}")
        if (not part.found or part.stale) and part.install:
            lines.append(f"       get it: {part.install}")
    missing_core = [p.name for p in parts if p.core and not p.found]
    if missing_core:
        lines.append(f"no run can start here: {', '.join(missing_core)} missing (exit 3)")
        return lines, 3
    missing = [p.name for p in parts if not p.found and p.name != "chromium"]
    if missing:
        lines.append(f"runs can start here; without {', '.join(missing)} the features above cannot")
    else:
        lines.append("everything the harness can use is here")
    return lines, 0


def versions() -> list[str]:
    """`harness --version`: the package's, and the versions of what it found."""
    said = [f"channel-chaos-harness {__version__}"]
    for part in (toxiproxy(), redis(), *docker_engine()):
        if part.name.startswith("node image"):
            continue
        said.append(f"{part.name} {part.detail.split()[0] if part.found else 'not found'}")
    return said
