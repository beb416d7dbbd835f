"""The compose backend: the nodes are services of the user's own compose project.

The harness brings the project up with the user's compose CLI (`docker compose`, v2, or Debian's
`docker-compose`, v1: whichever answers), then drives the containers with the SDK exactly like
the Docker backend (`ContainerNode`): compose has no verb for a SIGKILL of one container that
leaves it restartable on the same ports, and its verbs cost 1-5 s each under v1.

What the harness chose reaches the project as environment, one variable per placeholder of a
node command, named after the service: `N1_PORT`, `N1_PUBSUB_PORT`, `N1_PUBSUB_ARGS`,
`N1_PEER_ARGS`, `N1_PEERS`, `N1_PUBSUB`, `N1_STORE`, `N1_BUG_ARGS`, `N1_CLUSTER_SECRET` (a
service `api-1` gives `API_1_PORT`). The peer addresses point at the harness's proxies, so
every link still goes through Toxiproxy. The shipped `docker-compose.yml` reads them with
defaults, so `docker compose up` by hand runs the same cluster without the harness.

Containers are found by the compose labels `com.docker.compose.project` / `.service`, never by
name (v1 names them `p_n1_1`, v2 `p-n1-1`). A second compose file, written into the run
directory, adds the harness's own labels (run, owner, node) to the services, so the teardown,
the watchdog and a later run's clean-up find them like the Docker backend's containers.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import trio

from ..errors import ClusterError
from ..infra.process import watch
from ._base import Launch, NodePlan
from ._docker import (
    PROJECT,
    ContainerNode,
    call,
    in_container,
    labels,
    remove_leftovers,
    remove_run,
)
from ._image import engine
from ._local import placeholders

SERVICE = "com.docker.compose.service"
COMPOSE_TIMEOUT = 120.0


def variable(service: str, placeholder: str) -> str:
    """`n1`, `pubsub_args` -> `N1_PUBSUB_ARGS`."""
    return re.sub(r"[^A-Z0-9]", "_", f"{service}_{placeholder}".upper())


def environment(specs: Sequence[NodePlan], services: Sequence[str]) -> dict[str, str]:
    """What a node's service reads: every command placeholder but {python}, per service."""
    env: dict[str, str] = {}
    for spec, service in zip(specs, services, strict=True):
        for key, value in placeholders(spec, quote=False).items():
            if key != "python":
                env[variable(service, key)] = str(value)
    return env


def override(services: Sequence[str], nodes: Sequence[str], run: str) -> str:
    """A compose file that only adds the harness's labels to each node's service (JSON is
    YAML, and no quoting question arises)."""
    import json

    body = {
        "services": {s: {"labels": labels(run, n)} for s, n in zip(services, nodes, strict=True)}
    }
    return json.dumps(body, indent=2) + "\n"


def compose_cli() -> list[str]:
    """`docker compose` (v2 plugin) if it answers, else `docker-compose` (v1)."""
    import subprocess

    docker = shutil.which("docker")
    if docker:
        with suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(
                [docker, "compose", "version"], capture_output=True, timeout=20, check=False
            )
            if done.returncode == 0:
                return [docker, "compose"]
    v1 = shutil.which("docker-compose")
    if v1:
        return [v1]
    raise ClusterError(
        "cluster.backend: compose needs a compose CLI: `docker compose` (v2) or `docker-compose`"
        " (v1: apt-get install docker-compose)"
    )


def _files(
    launch: Launch, logs: Path, services: Sequence[str], nodes: Sequence[str], run: str
) -> tuple[Path, Path]:
    """The user's compose file (checked) and the labels file written beside the run's logs."""
    if launch.compose_file is None:
        raise ClusterError("cluster.backend: compose needs cluster.compose_file")
    compose_file = Path(launch.compose_file).resolve()
    if not compose_file.is_file():
        raise ClusterError(f"cluster.compose_file: no such file {compose_file}")
    logs.mkdir(parents=True, exist_ok=True)
    extra = logs.parent / "compose.override.json"
    extra.write_text(override(services, nodes, run))
    return compose_file, extra


@asynccontextmanager
async def open_compose_nodes(
    specs: Sequence[NodePlan], logs: Path, launch: Launch, notice: Callable[[str], None]
) -> AsyncIterator[Mapping[str, ContainerNode]]:
    """`up -d` the nodes' services, health-gate each, yield them; `down -v` at the end, then
    remove anything still labelled with the run."""
    services = launch.services or tuple(s.name for s in specs)
    run = launch.run or f"h{os.getpid()}"
    compose_file, extra = _files(launch, logs, services, [s.name for s in specs], run)
    client = await call(engine)
    for note in await call(remove_leftovers, client):
        notice(note)
    project = re.sub(r"[^a-z0-9_-]", "-", f"chaos-{run}".lower())
    inside = [in_container(s) for s in specs]
    base = [*compose_cli(), "-p", project, "-f", str(compose_file), "-f", str(extra)]
    env = {**os.environ, **environment(inside, services)}
    log = logs / "compose.log"

    async def compose(*args: str) -> None:
        with log.open("ab") as out:
            out.write(f"--- {' '.join(args)}\n".encode())
            out.flush()
            with trio.move_on_after(COMPOSE_TIMEOUT) as scope:
                done = await trio.run_process(
                    [*base, *args],
                    env=env,
                    stdout=out,
                    stderr=out,
                    check=False,
                    cwd=compose_file.parent,
                )
        if scope.cancelled_caught or done.returncode != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise ClusterError(f"compose {args[0]} failed: {tail[0]}; see {log}")

    watch(f"docker {run}")
    nodes: dict[str, ContainerNode] = {}
    try:
        await compose("up", "-d", "--no-build", *services)
        for spec, service in zip(inside, services, strict=True):
            found = await call(
                client.containers.list,
                all=True,
                filters={"label": [f"{PROJECT}={project}", f"{SERVICE}={service}"]},
            )
            if len(found) != 1:
                raise ClusterError(
                    f"compose project {project}: {len(found)} containers for service {service}"
                )
            nodes[spec.name] = ContainerNode(
                spec, logs / f"{spec.name}.log", launch, client, container=found[0]
            )
        for node in nodes.values():
            await node.wait_healthy()
        yield nodes
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(60):
            for node in nodes.values():
                await node.collect_log()
            with suppress(ClusterError):
                await compose("down", "-v", "--remove-orphans", "--timeout", "5")
            with suppress(ClusterError):
                await call(remove_run, client, run)
            watch(f"drop docker {run}")
            with suppress(Exception):
                client.close()
