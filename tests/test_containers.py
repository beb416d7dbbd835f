"""The container backends' pure parts (no engine needed): what a container is created with, the
environment a compose project gets, the grammar's rules, the labels that make clean-up safe,
and the one sentence a run without an engine ends with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cluster import BACKENDS, NodePlan, describe_backends
from harness.cluster._base import Launch
from harness.cluster._compose import environment, override, variable
from harness.cluster._docker import OWNER, RUN, container_args, in_container, owner, owner_gone
from harness.cluster._image import REFERENCE_IMAGE, digest
from harness.cluster._local import REFERENCE_COMMAND
from harness.errors import InvalidScenario
from harness.scenario import parse_scenario
from harness.scenario._cluster import ClusterSpec

ROOT = Path(__file__).resolve().parent.parent
SPEC = NodePlan(
    name="n1",
    host="127.0.0.1",
    port=14001,
    pubsub_port=14101,
    peers={"n2": ("127.0.0.1", 15112)},
    store="sqlite:////runs/x/store.sqlite",
    bugs=("duplicate_after_rejoin",),
    cluster_secret="s3",
)


def test_the_reference_image_runs_the_reference_command_with_its_own_python():
    args = container_args(in_container(SPEC), Launch(REFERENCE_COMMAND, run="h1"))
    assert args["image"] == REFERENCE_IMAGE
    assert args["network_mode"] == "host"
    assert args["command"][:3] == ["python3", "-m", "server_under_test"]
    command = " ".join(args["command"])
    assert "--port 14001 --pubsub-port 14101 --peer n2=127.0.0.1:15112" in command
    assert "--store sqlite:////data/store.sqlite" in command  # the run's volume, inside
    assert "--bug duplicate_after_rejoin" in command
    assert args["labels"][RUN] == "h1"
    assert args["labels"]["chaos-harness.node"] == "n1"
    assert args["labels"][OWNER] == owner()


def test_a_users_image_keeps_its_own_command_unless_the_scenario_names_one():
    launch = Launch(REFERENCE_COMMAND, {"PORT": "{port}", "PEERS": "{peers}"}, image="team/app:1")
    args = container_args(SPEC, launch)
    assert "command" not in args
    assert args["environment"] == {"PORT": "14001", "PEERS": "n2=127.0.0.1:15112"}
    given = container_args(SPEC, Launch("bin/app --port {port}", image="team/app:1", cwd="/srv"))
    assert given["command"] == ["bin/app", "--port", "14001"]
    assert given["working_dir"] == "/srv"


def test_compose_gets_every_placeholder_per_service():
    env = environment([in_container(SPEC)], ["api-1"])
    assert variable("api-1", "pubsub_args") == "API_1_PUBSUB_ARGS"
    assert env["API_1_PORT"] == "14001"
    assert env["API_1_PUBSUB_ARGS"] == "--pubsub-port 14101 --peer n2=127.0.0.1:15112"
    assert env["API_1_STORE"] == "sqlite:////data/store.sqlite"
    assert env["API_1_BUG_ARGS"] == "--bug duplicate_after_rejoin"
    assert "API_1_PYTHON" not in env
    labels = override(["api-1"], ["n1"], "h9")
    assert '"chaos-harness.run": "h9"' in labels
    assert '"chaos-harness.node": "n1"' in labels


def test_the_shipped_compose_file_reads_what_the_harness_passes():
    text = (ROOT / "docker-compose.yml").read_text()
    for node in ("N1", "N2", "N3"):
        for key in ("PORT", "PUBSUB_ARGS", "STORE", "CLUSTER_SECRET", "BUG_ARGS"):
            assert f"${{{node}_{key}:-" in text, f"{node}_{key}"
    import yaml

    project = yaml.safe_load(text)
    assert "name" not in project  # Compose v1 refuses a top-level name
    assert all(s["network_mode"] == "host" for s in project["services"].values())
    assert set(project["services"]) >= {"n1", "n2", "n3", "toxiproxy", "redis"}


def test_an_owner_is_a_pid_and_its_start_time():
    assert not owner_gone(owner())
    assert owner_gone("999999999:0")
    pid = owner().split(":")[0]
    assert owner_gone(f"{pid}:1")  # the same pid, another process: a reused pid is not ours
    assert owner_gone(None)
    assert owner_gone("garbage")


def test_the_backends_are_the_grammar_and_say_what_they_are():
    from typing import get_args

    from harness.scenario._cluster import Backend

    assert set(BACKENDS) == set(get_args(Backend))
    assert set(describe_backends()) == set(BACKENDS)
    assert all(len(text) > 20 for text in describe_backends().values())
    listed = subprocess.run(
        [sys.executable, "-m", "harness", "list"], capture_output=True, text=True, check=True
    ).stdout
    assert "cluster backends" in listed
    assert "docker " in listed.split("cluster backends")[1]


def test_the_image_digest_follows_its_sources(tmp_path):
    assert len(digest()) == 16
    assert digest() == digest()


BASE = "name: t\nduration: 5s\n"


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        ("{backend: compose}", "needs compose_file"),
        ("{image: x/y:1}", "an image is for backend: docker"),
        ("{compose_file: c.yml}", "a compose file is for backend: compose"),
        ("{services: [a, b, c]}", "services are for backend: compose"),
        ("{backend: compose, compose_file: c.yml, services: [a]}", "one service per node (3)"),
        ("{backend: compose, compose_file: c.yml, services: [a, a, b]}", "a service of its own"),
        ("{backend: docker, image: 'Bad Image'}", "cluster.image"),
        ("{backend: dockr}", "did you mean 'docker'"),
    ],
)
def test_the_grammar_refuses_a_wrong_backend_key(cluster, message):
    with pytest.raises(InvalidScenario) as caught:
        parse_scenario(f"{BASE}cluster: {cluster}\n", "t.yaml")
    assert message in str(caught.value)
    assert "t.yaml:3:" in str(caught.value)


def test_the_grammar_takes_the_backend_keys():
    s = parse_scenario(
        f"{BASE}cluster: {{backend: compose, compose_file: c.yml, services: [a, b, c]}}\n", "t"
    )
    assert s.cluster.services == ("a", "b", "c")
    assert ClusterSpec().backend == "local"


def test_no_engine_is_one_sentence_and_exit_3(tmp_path):
    scenario = ROOT / "scenarios" / "docker.yaml"
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "no Docker engine answers" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
