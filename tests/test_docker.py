"""The Docker and compose backends against a real engine and real containers of the reference
node image (`make image`): every node fault kind observed from outside, the official npm client
through a kill, the zoo, signals and leftovers. (`scenarios/docker.yaml` and
`scenarios/compose.yaml`, the shipped docker-compose.yml under a partition and a kill, run in
`tests/test_library.py` like every scenario.)

Without an engine (or the image) these tests skip on a developer's machine and fail under
`CI=true`, so a green CI cannot hide a missing engine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from harness.cluster import Launch, mesh_specs
from harness.cluster._docker import OWNER, RUN, ContainerNode, open_docker_nodes
from harness.cluster._image import REFERENCE_IMAGE
from harness.cluster._local import answers
from harness.infra.watchdog import start_time
from harness.run.runner import RunOptions, run_scenario
from harness.scenario import parse_scenario
from tests.support.waiting import wait_until
from tests.test_faults import ALL, ON, SCENARIO, open_env
from tests.test_orphans import alive, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def client(docker_engine: object) -> object:
    return docker_engine


def ours(docker, pid: int | None = None, run: str | None = None) -> tuple[list, list]:
    """Containers and volumes of a harness process (by its owner label) or of a run."""
    label = f"{OWNER}={pid}:{start_time(pid)}" if pid is not None else f"{RUN}={run}"
    return (
        docker.containers.list(all=True, filters={"label": label}),
        docker.volumes.list(filters={"label": label}),
    )


DOCKER = SCENARIO.replace("cluster: {nodes: 3}", "cluster: {nodes: 3, backend: docker}")


async def test_every_node_fault_kind_on_containers(tmp_path, client):
    async with open_env(DOCKER, tmp_path) as env:
        n3 = env.nodes["n3"]
        assert isinstance(n3, ContainerNode)
        await env.all_joined()

        # pause: the cgroup freezer; the port still accepts, nothing answers; heartbeats time out
        start = await env.fault("pause", 2.5, node="n3")
        await wait_until(lambda: n3.paused)
        assert not await answers(n3.spec, n3.launch)
        assert await answers(n3.spec, Launch("", health_tcp=True))
        await env.fault_stopped(start)
        assert {o.process for o in env.of("heartbeat_timeout", start)} == ON["n3"]
        await env.all_joined()

        # kill: SIGKILL through the engine (exit 137), restarted on the same port
        start = await env.fault("kill", None, node="n3", restart_after=1.0)
        await wait_until(lambda: env.disconnected(start) == ON["n3"])
        await wait_until(lambda: not n3.alive)  # reads the container's state from the engine
        assert n3.container is not None
        assert n3.container.attrs["State"]["ExitCode"] == 137
        assert not await answers(n3.spec, n3.launch)
        await env.fault_stopped(start)
        assert await answers(n3.spec, n3.launch)
        await env.all_joined()

        # terminate: `stop` with a timeout, the server drains: clients see 1012, exit code 0
        start = await env.fault("terminate", None, node="n3", restart_after=0.5)
        await env.fault_stopped(start)
        codes = {o.value["code"] for o in env.of("disconnect", start) if o.process in ON["n3"]}
        assert 1012 in codes
        await env.all_joined()

        # restart, then rolling_restart of every node
        start = await env.fault("restart", None, node="n2")
        await env.fault_stopped(start)
        await env.all_joined()
        assert env.disconnected(start) == ON["n2"]
        rolling = await env.fault("rolling_restart", None, nodes=("n1", "n2", "n3"), interval=0.2)
        await env.fault_stopped(rolling)
        await env.all_joined()
        assert env.disconnected(rolling) == ALL
        run = n3.launch.run
        assert len(ours(client, run=run)[0]) == 3
    assert ours(client, run=run) == ([], [])
    logs = (tmp_path / "faults").glob("*/logs/n3.log")
    text = next(logs).read_text()
    assert text.startswith("--- container")
    assert text.count("serving on") >= 4  # every start of the container


@pytest.fixture
async def two_containers(tmp_path, client) -> AsyncIterator[dict[str, ContainerNode]]:
    specs = mesh_specs(("n1", "n2"), store="sqlite:///x/store.sqlite")
    launch = Launch(
        "{python} -m server_under_test --node {node} --host {host} --port {port}"
        " {pubsub_args} --store {store} --cluster-secret {cluster_secret} {bug_args}",
        run=f"t{os.getpid()}x{trio.current_time():.0f}",
    )
    async with open_docker_nodes(specs, tmp_path / "logs", launch, lambda _: None) as nodes:
        yield dict(nodes)


@pytest.mark.interop
async def test_the_official_client_rejoins_a_killed_container(two_containers):
    from tests.interop.test_official_client import connected, joined
    from tests.support.jsclient import open_js_client

    n1, n2 = two_containers["n1"], two_containers["n2"]
    async with open_js_client() as js, open_js_client() as other:
        await connected(js, n1)
        await connected(other, n2)
        first = await joined(js)
        await joined(other)
        mark = js.mark()
        await n1.kill()
        assert await n1.wait_exit() == 137
        await js.wait_ev("close", after=mark)
        await js.wait_ev("chan_error", chan="room:1", after=mark)
        await n1.start()
        await js.wait_ev("open", after=mark)
        again = await js.wait_ev("join_ok", chan="room:1", after=mark)
        assert again["join_ref"] != first["join_ref"]
        # the rejoined channel is whole again: its push reaches a client of the other container
        await js.send("push", chan="room:1", event="new_msg", payload={"id": "back"}, tag="b")
        assert (await js.wait_ev("reply", tag="b"))["status"] == "ok"
        await other.wait_for(
            lambda e: any(m["payload"].get("id") == "back" for m in other.all("message"))
        )


ZOO = ROOT / "scenarios" / "zoo"


def on_docker(name: str, **cluster: object):
    path = ZOO / f"{name}.yaml"
    s = parse_scenario(path.read_text(), str(path))
    update = {"backend": "docker", "trace": False, **cluster}
    return s.model_copy(update={"cluster": s.cluster.model_copy(update=update)})


# `duplicate_after_rejoin` on containers: the library's docker.yaml and compose.yaml catch it
@pytest.mark.parametrize(
    ("defect", "check", "symptom"),
    [("ack_before_persist", "durability", "acknowledged")],
    ids=["ack_before_persist"],
)
async def test_the_zoo_on_containers(tmp_path, client, defect, check, symptom):
    result = await run_scenario(on_docker("kill", bugs=(defect,)), RunOptions(out=tmp_path))
    assert result.error is None, result.error
    by_name = {r.name: r for r in result.results}
    assert by_name[check].validity == "invalid", (by_name[check].summary, result.run_dir)
    assert re.search(symptom, by_name[check].witnesses[0].problem)
    assert result.exit_code == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_correct_image_is_valid(tmp_path, client, seed):
    result = await run_scenario(on_docker("kill"), RunOptions(out=tmp_path, seed=seed))
    assert result.error is None, result.error
    flagged = {r.name: r.summary for r in result.results if r.validity != "valid"}
    assert not flagged, (flagged, result.run_dir)
    assert result.exit_code == 0


LONG = """
name: long
duration: 60s
settle: 1s
cluster: {nodes: 2, backend: docker}
clients:
  count: 4
  topics: ["room:1"]
  timings: {reconnect_after: [10ms, 50ms], rejoin_after: [100ms], heartbeat_interval: 1s}
workload: {publishers: 1, rate: 20/s}
faults:
  - {at: 1s, for: 50s, kind: latency, link: clients->n1, latency: 20ms}
"""


def start_run(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(LONG)
    out = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def in_workload() -> bool:
        found = list(out.glob("long/*/history.jsonl"))
        return bool(found) and '"kind":"latency"' in found[0].read_text()

    try:
        wait_for(in_workload, 90, "the run's first fault")
    except AssertionError:
        proc.kill()
        raise
    return proc, next(out.glob("long/*/history.jsonl"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_run_leaves_no_container_or_volume(tmp_path, client, signum):
    proc, history = start_run(tmp_path)
    containers, volumes = ours(client, proc.pid)
    assert len(containers) == 2
    assert len(volumes) == 1
    pids = [c.attrs["State"]["Pid"] for c in containers]
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert ours(client, proc.pid) == ([], [])  # removed by the harness itself, before it exited
    assert not any(alive(pid) for pid in pids)
    results = json.loads((history.parent / "results.json").read_text())
    assert results["validity"] == "interrupted"
    assert "--- container" in (history.parent / "logs" / "n1.log").read_text()


def test_sigkill_of_the_harness_leaves_no_container(tmp_path, client):
    proc, _ = start_run(tmp_path)
    owner = proc.pid
    label = f"{OWNER}={owner}:{start_time(owner)}"
    assert len(ours(client, owner)[0]) == 2
    proc.kill()
    proc.wait(timeout=10)
    wait_for(  # the watchdog removes them
        lambda: (
            not client.containers.list(all=True, filters={"label": label})
            and not client.volumes.list(filters={"label": label})
        ),
        30,
        "the killed harness's containers and volume removed",
    )


async def test_a_later_run_removes_what_a_dead_harness_left(tmp_path, client):
    # What a harness leaves when its watchdog died with it: labelled with an owner that is gone
    gone = {RUN: "hdead1", OWNER: "999999999:0"}
    left = client.containers.create(REFERENCE_IMAGE, ["sleep", "300"], labels=gone)
    left.start()
    client.volumes.create(name="chaos-hdead1-store", labels=gone)
    result = await run_scenario(on_docker("kill"), RunOptions(out=tmp_path))
    assert result.exit_code == 0, [(r.name, r.validity) for r in result.results]
    assert ours(client, run="hdead1") == ([], [])
    notes = [w for w in result.concluded.warnings if "left behind by a harness that is gone" in w]
    assert notes, result.concluded.warnings
    assert "run hdead1" in notes[0]
    assert "PID 999999999" in notes[0]


async def test_a_missing_image_is_one_sentence_and_exit_3(tmp_path, client):
    s = on_docker("kill", image="chaos-harness/absent:0")
    result = await run_scenario(s, RunOptions(out=tmp_path))
    assert result.exit_code == 3
    assert result.error is not None
    assert "no image chaos-harness/absent:0 on the Docker engine" in result.error
