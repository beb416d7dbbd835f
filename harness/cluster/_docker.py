"""The Docker backend: each node of the cluster under test is a container, driven through the
engine with the `docker` SDK.

Why the engine and not `docker run` as a node command: a signal sent to a `docker run` client
never reaches the container, and a teardown that kills the client leaves the container running
and holding its ports (research/docker.md). So every fault is an engine call: `kill` is SIGKILL,
`terminate` is `stop` with a timeout (SIGTERM, the server drains, SIGKILL after the timeout),
`pause` is the cgroup freezer, a restart starts the same container again on the same ports.

Containers use host networking and bind the loopback ports the harness picked, like local
processes; Toxiproxy and Redis stay on the host, so every client and PubSub link still goes
through a proxy. The store is one named volume per run, shared by the run's nodes (SQLite WAL).

Every container and volume carries three labels: the run's id, the node, and the owner (the
harness's PID and its start time). Teardown removes exactly the run's own, shielded from Ctrl-C;
the watchdog does the same if the harness is killed (`docker RUN` line); and a later run removes
whatever an owner that is gone left behind (the watchdog killed too, a reboot), and says so.

The SDK is blocking: every call runs in a worker thread, abandoned on cancellation (the
teardown removes the container anyway). `alive` (read by the final heal only) is the one
synchronous call, a few milliseconds on the engine's unix socket.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from ..errors import ClusterError
from ..infra.process import POLL_INTERVAL, watch
from ..infra.watchdog import start_time
from ._base import Launch, NodePlan, Placed
from ._image import REFERENCE_IMAGE, check_image, engine
from ._local import REFERENCE_COMMAND, answers, command, placeholders

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

RUN = "chaos-harness.run"
OWNER = "chaos-harness.owner"
NODE = "chaos-harness.node"
PROJECT = "com.docker.compose.project"  # a compose project's volumes go with its containers
DATA = "/data"  # where the run's store volume is mounted in every node
STOP_TIMEOUT = 10  # seconds a terminated node has to drain before the engine kills it
T = TypeVar("T")


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """One blocking SDK call in a worker thread; engine errors become ClusterError."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    try:
        return await trio.to_thread.run_sync(partial(fn, *args, **kwargs), abandon_on_cancel=True)
    except (DockerException, RequestException) as exc:
        raise ClusterError(f"Docker engine: {exc}") from exc


def owner() -> str:
    """This process as a label value: `PID:START`, unique even when the PID is reused."""
    return f"{os.getpid()}:{start_time(os.getpid())}"


def owner_gone(label: str | None) -> bool:
    pid, _, started = (label or "").partition(":")
    return not pid.isdigit() or start_time(int(pid)) != started


def labels(run: str, node: str | None = None) -> dict[str, str]:
    values = {RUN: run, OWNER: owner()}
    return values | ({NODE: node} if node else {})


def remove_run(client: docker.DockerClient, run: str) -> int:
    """Remove every container (running or not) labelled with `run`, then its volumes (labelled
    with `run`, or of the compose project of those containers); how many containers."""
    found = client.containers.list(all=True, filters={"label": f"{RUN}={run}"})
    projects = {p for c in found if (p := (c.labels or {}).get(PROJECT))}
    for container in found:
        with suppress(Exception):
            container.remove(force=True, v=True)
    selections = [f"{RUN}={run}", *(f"{PROJECT}={p}" for p in sorted(projects))]
    for selection in selections:
        for volume in client.volumes.list(filters={"label": selection}):
            with suppress(Exception):
                volume.remove(force=True)
    return len(found)


def remove_leftovers(client: docker.DockerClient) -> list[str]:
    """Remove what runs whose harness is gone left behind; a sentence per such run."""
    runs: dict[str, tuple[str, int]] = {}
    for container in client.containers.list(all=True, filters={"label": RUN}):
        tags = container.labels or {}
        if owner_gone(tags.get(OWNER)):
            run = tags.get(RUN, "")
            runs[run] = (tags.get(OWNER, "?"), runs.get(run, ("", 0))[1] + 1)
    for volume in client.volumes.list(filters={"label": RUN}):
        tags = volume.attrs.get("Labels") or {}
        if owner_gone(tags.get(OWNER)):
            runs.setdefault(tags.get(RUN, ""), (tags.get(OWNER, "?"), 0))
    notes = []
    for run, (who, count) in sorted(runs.items()):
        remove_run(client, run)
        pid = who.partition(":")[0]
        notes.append(
            f"removed {count} container(s) and the volumes of run {run}, left behind by a"
            f" harness that is gone (PID {pid})"
        )
    return notes


class ContainerNode(Placed):
    """One node as a container: the `harness.cluster.Node` operations as engine calls. The
    container is made by `create` on first start (the Docker backend) or given (compose)."""

    def __init__(
        self,
        spec: NodePlan,
        log_path: Path,
        launch: Launch,
        client: docker.DockerClient,
        *,
        create: Callable[[], Container] | None = None,
        container: Container | None = None,
    ) -> None:
        self.spec = spec
        self.log_path = log_path
        self.launch = launch
        self.client = client
        self.container = container
        self._create = create
        self.paused = False

    @property
    def pid(self) -> int | None:
        state = self.container.attrs.get("State", {}) if self.container else {}
        return int(state["Pid"]) if state.get("Pid") else None

    @property
    def containment(self) -> str:
        return "container"

    def cpu_seconds(self) -> float:
        """Not read from the engine (a stats call takes a second): the distress advice then
        cannot name the server."""
        return 0.0

    def exited_by_itself(self) -> int | None:
        """Not known without an engine call; a container that exits is seen by its health."""
        return None

    @property
    def alive(self) -> bool:
        if self.container is None:
            return False
        with suppress(Exception):
            self.container.reload()
        return bool(self.container.attrs.get("State", {}).get("Running"))

    async def _status(self) -> dict[str, Any]:
        assert self.container is not None
        await call(self.container.reload)
        state: dict[str, Any] = self.container.attrs.get("State", {})
        return state

    async def start(self, *, timeout: float | None = None) -> None:
        if self.container is None:
            assert self._create is not None
            self.container = await call(self._create)
        await call(self.container.start)
        self.paused = False
        await self._status()  # its PID
        await self.wait_healthy(timeout=timeout)

    async def wait_healthy(self, *, timeout: float | None = None) -> None:
        timeout = self.launch.health_timeout if timeout is None else timeout
        with trio.move_on_after(timeout):
            polls = 0
            while True:
                if await answers(self.spec, self.launch):
                    return
                polls += 1
                if polls % 10 == 0 and not (state := await self._status()).get("Running"):
                    await self.collect_log()
                    short = self.container.short_id if self.container else "?"
                    raise ClusterError(
                        f"node {self.name} (container {short})"
                        f" exited with code {state.get('ExitCode')} before it became healthy"
                        f"{_last_line(self.log_path)}; see {self.log_path}"
                    )
                await trio.sleep(POLL_INTERVAL)
        await self.collect_log()
        raise ClusterError(f"node {self.name} not healthy after {timeout:g}s; see {self.log_path}")

    async def kill(self) -> None:
        if self.container is not None:
            await call(self.container.kill)

    async def terminate(self) -> None:
        if self.container is None:
            return
        if self.paused:
            await self.resume()
        await call(self.container.stop, timeout=STOP_TIMEOUT)

    async def pause(self) -> None:
        if self.container is not None:
            await call(self.container.pause)
            self.paused = True

    async def resume(self) -> None:
        if self.container is not None:
            await call(self.container.unpause)
            self.paused = False

    async def wait_exit(self, *, timeout: float = 10.0) -> int | None:
        if self.container is None:
            return None
        try:
            done = await call(self.container.wait, timeout=timeout)
        except ClusterError:
            raise ClusterError(
                f"node {self.name} still running {timeout}s after it was stopped"
            ) from None
        await self._status()
        return int(done.get("StatusCode", 0))

    async def stop(self, *, graceful: bool = True, timeout: float = 5.0) -> None:
        if self.container is None or not (await self._status()).get("Running"):
            return
        if graceful:
            await self.terminate()
        else:
            if self.paused:
                await self.resume()
            await self.kill()
        await self.wait_exit(timeout=timeout)

    async def restart(self) -> None:
        if self.container is not None and (await self._status()).get("Running"):
            await self.kill()
            await self.wait_exit()
        await self.start()

    async def collect_log(self) -> None:
        """The container's output (every start of it) into the run's `logs/NODE.log`."""
        if self.container is None:
            return
        with suppress(ClusterError):
            output = await call(self.container.logs, stdout=True, stderr=True)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            image = self.container.attrs.get("Config", {}).get("Image", "?")
            head = f"--- container {self.container.short_id} ({image})\n".encode()
            self.log_path.write_bytes(head + (output if isinstance(output, bytes) else b""))


def _last_line(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return f" ({lines[-1].strip()})" if len(lines) > 1 else ""


def container_args(spec: NodePlan, launch: Launch) -> dict[str, Any]:
    """What `containers.create` gets for a node (pure, so it is tested without an engine): the
    command (the reference one unless the scenario names another, or none for a user's image
    that starts itself), env and working directory filled like the local backend's, labels."""
    image = launch.image or REFERENCE_IMAGE
    template = launch.template if launch.template != REFERENCE_COMMAND else None
    if template is None and image == REFERENCE_IMAGE:
        template = REFERENCE_COMMAND
    plain = placeholders(spec, quote=False, python="python3")
    args: dict[str, Any] = {
        "image": image,
        "network_mode": "host",
        "labels": labels(launch.run, spec.name),
        "environment": {k: v.format(**plain) for k, v in launch.env.items()},
        "stop_signal": "SIGTERM",
        "detach": True,
    }
    if template is not None:
        args["command"] = command(spec, template, python="python3")
    if launch.cwd:
        args["working_dir"] = launch.cwd.format(**plain)
    return args


def in_container(spec: NodePlan) -> NodePlan:
    """The node's store seen from inside its container: the run's volume at /data."""
    if spec.store.startswith("sqlite:///") and ":memory:" not in spec.store:
        return replace(spec, store=f"sqlite:///{DATA}/{Path(spec.store[10:]).name}")
    return spec


@asynccontextmanager
async def open_docker_nodes(
    specs: Sequence[NodePlan], logs: Path, launch: Launch, notice: Callable[[str], None]
) -> AsyncIterator[Mapping[str, ContainerNode]]:
    """A container per node, started one after the other (each health-gated); at the end every
    container and volume with the run's label is removed, however the block ends."""
    client = await call(engine)
    run = launch.run or f"h{os.getpid()}"
    image = launch.image or REFERENCE_IMAGE
    stale = await call(check_image, client, image)
    if stale:
        notice(stale)
    for note in await call(remove_leftovers, client):
        notice(note)
    watch(f"docker {run}")
    nodes: dict[str, ContainerNode] = {}
    try:
        volume = await call(
            client.volumes.create, name=f"chaos-{run}-store", labels=labels(launch.run or run)
        )
        for spec in specs:
            inside = in_container(spec)
            args = container_args(inside, replace(launch, run=run))
            args["volumes"] = {volume.name: {"bind": DATA, "mode": "rw"}}
            create = partial(client.containers.create, **args)
            nodes[spec.name] = ContainerNode(
                inside, logs / f"{spec.name}.log", launch, client, create=create
            )
        for node in nodes.values():
            await node.start()
        yield nodes
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(30):
            for node in nodes.values():
                await node.collect_log()
            with suppress(ClusterError):
                await call(remove_run, client, run)
            watch(f"drop docker {run}")
            with suppress(Exception):
                client.close()
