"""The harness outside this repository, as a team adopts it.

1. The wheel: built from this tree (`pip wheel .`), installed into a new venv, used from an empty
   directory that is not this repository: `harness --version`, `harness init`, `harness doctor`
   (everything a run needs found), `harness run` on the generated starter scenario (the bundled
   reference server): valid. The generated workflow parses, has the permissions its JUnit step
   needs, and names only files that exist there.
2. The GitHub Action: the commands of `action.yml`'s steps (read from the file, expressions
   evaluated as the runner does, `$GITHUB_ENV` carried from step to step; the `uses:` steps,
   setup-python/setup-go/upload-artifact, are what a runner provides) run in a temporary
   repository: toxiproxy-server built with `go install` at the pinned version, the harness
   installed from the action's own directory, the doctor, a run; the run directories and the
   JUnit file are where the upload step looks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import __version__
from harness.infra.toxiproxy import find_server_binary

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def sh(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (argv, done.stdout[-3000:], done.stderr[-3000:])
    return done.stdout + done.stderr


def clean_env(path: str, **extra: str) -> dict[str, str]:
    """No PYTHONPATH, no venv of this repository: only what a user's shell would have."""
    keep = {
        k: os.environ[k]
        for k in ("HOME", "LANG", "GOPATH", "GOMODCACHE", "GOCACHE")
        if k in os.environ
    }
    return {**keep, "PATH": path, **extra}


def test_the_wheel_installed_elsewhere_inits_checks_and_runs(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    sh(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(wheels)],
        tmp_path,
        dict(os.environ),
    )
    (wheel,) = wheels.glob("channel_chaos_harness-*.whl")
    assert wheel.name.startswith(f"channel_chaos_harness-{__version__}-")
    venv = tmp_path / "venv"
    sh([sys.executable, "-m", "venv", str(venv)], tmp_path, dict(os.environ))
    env = clean_env(f"{venv / 'bin'}:/usr/bin:/bin", TOXIPROXY_SERVER=str(find_server_binary()))
    sh([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], tmp_path, env)
    repo = tmp_path / "team-repo"
    repo.mkdir()
    where = sh(
        ["python", "-c", "import harness, server_under_test; print(harness.__file__)"], repo, env
    )
    assert where.strip().startswith(str(venv))  # the installed package, not this tree
    assert f"channel-chaos-harness {__version__}" in sh(["harness", "--version"], repo, env)
    said = sh(["harness", "init", "--example", "phoenix"], repo, env)
    assert "wrote    chaos/my-app.yaml" in said
    doctor = sh(["harness", "doctor"], repo, env)
    assert "ok   toxiproxy-server: 2.12.0" in doctor
    out = sh(["harness", "run", "chaos/my-app.yaml", "--out", "chaos-runs"], repo, env)
    assert "my-app seed 1: valid (exit 0)" in out
    # the workflow: parses, may publish checks, and every path it names exists here
    workflow = yaml.safe_load((repo / ".github/workflows/chaos.yml").read_text())
    assert workflow["permissions"]["checks"] == "write"
    runs = " ".join(step.get("run", "") for step in workflow["jobs"]["chaos"]["steps"])
    named = set(re.findall(r"\b(?:chaos|\.github)/[\w./*-]+", runs))
    assert named == {"chaos/*.yaml"}
    assert list(repo.glob("chaos/*.yaml")) == [repo / "chaos/my-app.yaml"]
    text = (repo / ".github/workflows/chaos.yml").read_text()
    for absent in ("pyproject.toml", "Makefile", "hashFiles"):  # files a team's repo may lack
        assert absent not in text
    assert (repo / ".gitignore").read_text().splitlines()[1:] == ["chaos-runs/", "reports/"]
    sh(["harness", "validate", "chaos/examples/phoenix.yaml"], repo, env)


def _evaluate(text: str, inputs: dict[str, str], action_path: Path) -> str:
    """The runner's `${{ }}`: `inputs.NAME`, `github.action_path`, and `a || b`."""

    def value(term: str) -> str:
        term = term.strip()
        if term.startswith("inputs."):
            return inputs[term.removeprefix("inputs.")]
        if term == "github.action_path":
            return str(action_path)
        raise AssertionError(f"an expression this test does not know: {term}")

    def expression(match: re.Match[str]) -> str:
        for term in match.group(1).split("||"):
            if found := value(term):
                return found
        return ""

    return re.sub(r"\$\{\{(.*?)\}\}", expression, text)


def test_the_actions_steps_install_check_and_run_in_a_repository(tmp_path: Path) -> None:
    if shutil.which("go") is None:
        pytest.skip("go is needed to build toxiproxy-server")
    action: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text())
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    inputs.update(scenarios="chaos/*.yaml", seed="3")
    repo = tmp_path / "team-repo"
    (repo / "chaos").mkdir(parents=True)
    steady = (ROOT / "scenarios/zoo/steady.yaml").read_text().replace("../scenario", "scenario")
    (repo / "chaos/steady.yaml").write_text(steady)
    python = tmp_path / "python"  # what setup-python puts on PATH
    sh([sys.executable, "-m", "venv", str(python)], tmp_path, dict(os.environ))
    runner = tmp_path / "runner"
    runner.mkdir()
    github_env = runner / "env"
    github_env.touch()
    go = Path(shutil.which("go") or "go").parent
    base = clean_env(
        f"{python / 'bin'}:{go}:/usr/bin:/bin",
        RUNNER_TEMP=str(runner),
        GITHUB_ENV=str(github_env),
        GOFLAGS="-mod=mod",
    )
    ran = []
    for step in action["runs"]["steps"]:
        if "uses" in step:
            continue
        env = {
            **base,
            **{k: _evaluate(str(v), inputs, ROOT) for k, v in step.get("env", {}).items()},
        }
        for line in github_env.read_text().splitlines():
            key, _, value = line.partition("=")
            env[key] = value
        script = _evaluate(step["run"], inputs, ROOT)
        sh([step.get("shell", "bash"), "-e", "-c", script], repo, env, timeout=900)
        ran.append(step["name"])
    assert ran == [
        "Install toxiproxy-server",
        "Install the harness",
        "Check the set-up",
        "Run the scenarios",
    ]
    assert "TOXIPROXY_SERVER=" in github_env.read_text()
    out = repo / inputs["out"]
    (run_dir,) = (out / "zoo-steady").iterdir()
    assert run_dir.name.endswith("-seed3")
    assert '"validity": "valid"' in (run_dir / "results.json").read_text()
    assert (repo / inputs["junit"]).is_file()
    upload = next(
        s
        for s in action["runs"]["steps"]
        if s.get("uses", "").startswith("actions/upload-artifact")
    )
    assert _evaluate(upload["with"]["path"], inputs, ROOT) == inputs["out"]
