"""`harness init` and `harness doctor` without building anything: what init writes and keeps,
that its starter and recipe validate and its workflow parses, and that the doctor finds what a
run would (the same look-ups) or names what is missing with the command that gets it, exit 3
when no run could start. The wheel and the Action run end to end in tests/test_package.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.errors import HarnessError
from harness.infra.doctor import redis, report, toxiproxy, wheelhouse
from harness.infra.toxiproxy import find_server_binary
from harness.scenario import parse_scenario
from harness.starter import InitError, init


def harness(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_init_writes_a_valid_starter_a_workflow_and_ignores_then_keeps_them(tmp_path: Path):
    done = init(
        tmp_path,
        name="shop",
        install="channel-chaos-harness @ git+https://x/y@v1",
        build="mix release",
        examples=("phoenix",),
    )
    assert [(w.path.relative_to(tmp_path).as_posix(), w.how) for w in done] == [
        ("chaos/shop.yaml", "wrote"),
        ("chaos/scenario.schema.json", "wrote"),
        (".github/workflows/chaos.yml", "wrote"),
        ("chaos/examples/phoenix.yaml", "wrote"),
        (".gitignore", "wrote"),
    ]
    scenario = parse_scenario((tmp_path / "chaos/shop.yaml").read_text(), "shop.yaml")
    assert scenario.name == "shop"
    assert {f.kind for f in scenario.faults} == {"kill", "partition", "client_crash"}
    assert scenario.cluster.command is None  # the bundled reference server: runs as written
    workflow = yaml.safe_load((tmp_path / ".github/workflows/chaos.yml").read_text())
    steps = workflow["jobs"]["chaos"]["steps"]
    assert (
        workflow["jobs"]["chaos"]["env"]["HARNESS"] == "channel-chaos-harness @ git+https://x/y@v1"
    )
    assert {"name": "Build the app", "run": "mix release"} in steps
    (edited := tmp_path / "chaos/shop.yaml").write_text("# mine\n" + edited.read_text())
    (tmp_path / ".gitignore").write_text("node_modules/\n")
    again = {w.path.name: w.how for w in init(tmp_path, name="shop")}
    assert again["shop.yaml"] == "kept"
    assert again[".gitignore"] == "appended"
    assert edited.read_text().startswith("# mine")
    assert (
        tmp_path / ".gitignore"
    ).read_text() == "node_modules/\n# harness run directories\nchaos-runs/\nreports/\n"
    assert init(tmp_path, name="shop", force=True)[0].how == "wrote"
    assert not edited.read_text().startswith("# mine")


def test_init_refuses_what_it_cannot_do(tmp_path: Path):
    with pytest.raises(InitError, match="no example 'rails'"):
        init(tmp_path, examples=("rails",))
    with pytest.raises(InitError, match="no such directory"):
        init(tmp_path / "missing")
    done = harness("init", str(tmp_path / "missing"), cwd=tmp_path)
    assert done.returncode == 2
    assert "no such directory" in done.stderr


def test_the_doctor_finds_what_a_run_finds_and_says_how_to_get_the_rest(
    tmp_path: Path, monkeypatch
):
    here = harness("doctor", cwd=tmp_path)
    assert here.returncode == 0, here.stdout
    assert "ok   toxiproxy-server: 2.12.0" in here.stdout
    assert "ok   wheelhouse: " in here.stdout  # `make setup` built it
    version = harness("--version", cwd=tmp_path)
    assert version.stdout.splitlines()[:2] == [
        "channel-chaos-harness 0.1.0",
        "toxiproxy-server 2.12.0",
    ]
    # no toxiproxy-server anywhere a run looks (the run's own look-up, which the doctor calls)
    monkeypatch.setenv("TOXIPROXY_SERVER", str(tmp_path / "none"))
    monkeypatch.setenv("REDIS_SERVER", str(tmp_path / "none"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(HarnessError, match="harness doctor"):
        find_server_binary()
    lines, code = report([toxiproxy(), redis()])
    assert code == 3
    text = "\n".join(lines)
    assert "MISS toxiproxy-server" in text
    assert "get it: GOBIN=$PWD/bin go install" in text
    assert "MISS redis-server" in text
    assert "no run can start here: toxiproxy-server missing (exit 3)" in text
    monkeypatch.setenv("CHAOS_WHEELHOUSE", str(tmp_path / "empty"))
    (absent,) = report([wheelhouse()])[0][1:2]
    assert "MISS wheelhouse: no wheel of this harness (0.1.0)" in absent
    assert "harness wheelhouse" in "\n".join(report([wheelhouse()])[0])
