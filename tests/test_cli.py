"""`harness` end to end: a real run, its run directory, exit codes, offline re-check."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import trio

from harness.checkers import DEFAULT_CHECKS
from harness.run.rundir import read_history
from tests.support.vocabulary import assert_vocabulary

SHORT = """
name: short
seed: 4
duration: 4s
settle: 1s
cluster: {nodes: 2}
clients:
  count: 6
  topics: ["room:1", "room:2"]
  timings:
    reconnect_after: [10ms, 50ms, 100ms]
    rejoin_after: [100ms, 200ms]
    heartbeat_interval: 1s
workload: {publishers: 2, rate: 40/s}
faults:
  - {at: 1s, kind: kill, node: n2, restart_after: 500ms}
checks:
  rejoin: {within: 3s}
  at_most_once: {}
  no_phantom: {}
  delivery: {settle: 1s}
  order: {}
  durability: {}
"""


def harness(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def test_run_writes_a_complete_run_directory_and_check_reproduces_it(tmp_path):
    scenario = tmp_path / "short.yaml"
    scenario.write_text(SHORT)
    junit = tmp_path / "ci" / "junit.xml"
    result = harness(
        "run",
        str(scenario),
        "--out",
        str(tmp_path / "reports"),
        "--seed",
        "9",
        "--junit-xml",
        str(junit),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "seed 9" in result.stdout
    (run_dir,) = (tmp_path / "reports" / "short").iterdir()
    assert run_dir.name.endswith("-seed9")
    for name in (
        "scenario.yaml",
        "history.jsonl",
        "results.json",
        "junit.xml",
        "logs/n1.log",
        "logs/n2.log",
        "logs/toxiproxy.log",
    ):
        assert (run_dir / name).is_file(), name
    results = json.loads((run_dir / "results.json").read_text())
    assert results["validity"] == "valid"
    assert results["seed"] == 9
    assert {c["name"] for c in results["checks"]} == set(DEFAULT_CHECKS)
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("failures") == "0"
    assert len(suite.findall("testcase")) == len(DEFAULT_CHECKS)
    # the fault is in the history with its scheduled and actual times
    ops = [json.loads(op.to_json()) for op in read_history(run_dir / "history.jsonl")]
    starts = [o for o in ops if o["f"] == "fault" and o["type"] == "invoke"]
    assert starts[0]["value"]["kind"] == "kill"
    assert abs(starts[0]["value"]["scheduled"] - starts[0]["time"]) < 0.5
    # offline re-check from history.jsonl alone gives the same answer
    before = results["checks"]
    check = harness("check", str(run_dir))
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads((run_dir / "results.json").read_text())["checks"] == before
    (run_dir / "report.html").unlink()
    assert harness("report", str(run_dir)).returncode == 0
    assert (run_dir / "report.html").is_file()


def test_run_with_an_invalid_scenario_exits_2_without_a_traceback(tmp_path):
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(SHORT.replace("node: n2", "node: n9"))
    result = harness("run", str(scenario), "--out", str(tmp_path))
    assert result.returncode == 2
    assert f"{scenario}:16:32:" in result.stderr
    assert "faults[0].node" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "short").exists()


def test_validate_schema_and_list(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(SHORT)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nduration: 5s\nclients: {count: -1}\n")
    result = harness("validate", str(good), str(bad))
    assert result.returncode == 2
    assert "good.yaml: ok" in result.stdout
    assert "bad.yaml:3:18: clients.count: must be at least 1, got -1" in result.stderr
    schema = json.loads(harness("schema").stdout)
    assert schema["$schema"].startswith("http://json-schema.org/draft-07")
    assert "faults" in schema["properties"]
    listing = harness("list", "--scenarios", str(Path(__file__).parent.parent / "scenarios"))
    assert "quickstart.yaml" in listing.stdout
    assert "partition" in listing.stdout
    assert "at_most_once" in listing.stdout


def test_the_committed_schema_matches_the_code():
    committed = json.loads(
        (Path(__file__).parent.parent / "scenarios" / "scenario.schema.json").read_text()
    )
    assert committed == json.loads(harness("schema").stdout)


def test_every_committed_scenario_validates():
    scenarios = sorted((Path(__file__).parent.parent / "scenarios").glob("*.yaml"))
    assert scenarios
    result = harness("validate", *map(str, scenarios))
    assert result.returncode == 0, result.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(
    ("signum", "pubsub"),
    [(signal.SIGINT, "mesh"), (signal.SIGTERM, "mesh"), (signal.SIGINT, "redis")],
)
def test_interrupt_stops_everything_and_keeps_the_history(tmp_path, signum, pubsub):
    scenario = tmp_path / "long.yaml"
    scenario.write_text(
        SHORT.replace("duration: 4s", "duration: 60s")
        .replace("at: 1s, kind: kill", "at: 30s, kind: kill")
        .replace("cluster: {nodes: 2}", f"cluster: {{nodes: 2, pubsub: {pubsub}}}")
    )
    out = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        history = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the workload runs: a condition, not a sleep
            found = list(out.glob("short/*/history.jsonl"))
            if found and '"phase":"workload"' in found[0].read_text():
                history = found[0]
                break
            time.sleep(0.05)
        assert history is not None, "the run never reached its workload phase"
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    ops = [json.loads(op.to_json()) for op in read_history(history)]
    assert any(o["f"] == "interrupted" for o in ops)
    setup = {k: v for o in ops if o["f"] == "setup" for k, v in o["value"].items()}
    pids = [setup["toxiproxy_pid"], *setup["pids"].values()]
    if pubsub == "redis":
        pids.append(setup["redis_pid"])
    assert len(pids) == (4 if pubsub == "redis" else 3)
    assert not [pid for pid in pids if _alive(pid)]
    results = json.loads((history.parent / "results.json").read_text())
    assert results["validity"] == "interrupted"
    assert results["exit_code"] == 130


async def test_own_command_template_user_toxiproxy_and_repeat(tmp_path, toxiproxy):
    """`cluster.command` runs any server from a template; with `--toxiproxy` the run uses the
    user's server and removes every proxy it made; `--repeat` runs seeds N.., keeps every
    seed's testcases in one JUnit file and prints each check's failure rate."""
    template = (
        "{python} -m server_under_test --node {node} --host {host} --port {port}"
        " --pubsub-port {pubsub_port} {peer_args} --store {store} {bug_args} --log-level WARNING"
    )
    scenario = tmp_path / "own.yaml"
    scenario.write_text(
        SHORT.replace(
            "cluster: {nodes: 2}", f'cluster:\n  nodes: 2\n  command: "{template}"'
        ).replace("duration: 4s", "duration: 3s")
    )
    address = f"127.0.0.1:{toxiproxy.port}"
    result = await trio.to_thread.run_sync(
        lambda: harness(
            "run",
            str(scenario),
            "--out",
            str(tmp_path / "r"),
            "--repeat",
            "3",
            "--toxiproxy",
            address,
            "--junit-xml",
            str(tmp_path / "junit.xml"),
            timeout=180,
        )
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "short, by check over 3 runs:" in result.stdout
    assert result.stdout.rstrip().endswith("3 runs: 3 valid (exit 0)")
    assert "at_most_once  failed 0/3  (95% interval 0%-56%)" in result.stdout
    (suite,) = ET.parse(tmp_path / "junit.xml").getroot().findall("testsuite")
    names = [case.get("name") for case in suite.findall("testcase")]
    assert len(names) == 3 * len(DEFAULT_CHECKS)  # one testcase per seed and check, every seed kept
    assert "short[seed=4] rejoin" in names
    assert "short[seed=6] durability" in names
    runs = sorted((tmp_path / "r" / "short").iterdir())
    assert [r.name.rsplit("-seed", 1)[1] for r in runs] == ["4", "5", "6"]
    assert not (runs[0] / "logs" / "toxiproxy.log").exists()  # the user's server, not ours
    assert "--log-level WARNING" in (runs[0] / "logs" / "n1.log").read_text()
    assert await toxiproxy.client.proxies() == {}


async def test_worker_processes_and_random_faults_through_the_runner(tmp_path):
    from harness.run.runner import RunOptions, run_scenario
    from harness.scenario import parse_scenario

    text = (
        SHORT.replace("count: 6", "count: 6\n  workers: 2")
        .replace("duration: 4s", "duration: 5s")
        .replace(
            "  - {at: 1s, kind: kill, node: n2, restart_after: 500ms}",
            "  - {at: 1s, for: 3s, kind: random, count: 2, kinds: [latency, down], min_for: 500ms, max_for: 1s}",
        )
    )
    result = await run_scenario(
        parse_scenario(text, "workers.yaml"), RunOptions(out=tmp_path, seed=11)
    )
    assert result.error is None, result.error
    assert result.exit_code == 0, [r.to_json() for r in result.results if r.validity != "valid"]
    history = result.run_dir / "history.jsonl"
    assert_vocabulary(history)  # workers, the probe, random faults: every op as OP_NAMES says
    ops = [json.loads(op.to_json()) for op in read_history(history)]
    assert [o["index"] for o in ops] == list(range(len(ops)))  # the worker parts merged into one
    assert not list((result.run_dir / "swarm").glob("history.*"))  # and removed: one copy
    assert {o["process"] for o in ops} >= {f"c{i}" for i in range(1, 7)} | {"p1", "p2"}
    publishes = [o for o in ops if o["f"] == "publish" and o["type"] == "invoke"]
    assert len(publishes) <= 5 * 40 + 2  # the scenario's total rate, not per worker
    kinds = [o["value"]["kind"] for o in ops if o["f"] == "fault" and o["type"] == "invoke"]
    assert len(kinds) == 2
    assert set(kinds) <= {"latency", "down"}
    resolved = (result.run_dir / "scenario.yaml").read_text()
    assert "random" not in resolved  # the resolved scenario lists the concrete faults it ran
    assert (
        parse_scenario(resolved, "resolved.yaml").faults
        == parse_scenario(resolved, "again.yaml").faults
    )


def test_a_node_that_cannot_start_is_an_infrastructure_error(tmp_path):
    scenario = tmp_path / "broken.yaml"
    scenario.write_text(
        SHORT.replace(
            "cluster: {nodes: 2}",
            'cluster:\n  nodes: 2\n  command: "{python} -c \'raise SystemExit(\\"no luck today\\")\'"',
        )
    )
    result = harness("run", str(scenario), "--out", str(tmp_path / "r"))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "node n1 exited with code 1 before it became healthy (no luck today)" in result.stderr
    assert "Traceback" not in result.stderr
    (run_dir,) = (tmp_path / "r" / "short").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert (results["validity"], results["exit_code"]) == ("error", 3)
    assert (run_dir / "history.jsonl").exists()


def test_small_usage_defects(tmp_path):
    """A negative seed is refused, a missing run directory is named as such, and a reader that
    goes away early (`harness list | head`) ends nothing in a traceback."""
    scenario = tmp_path / "short.yaml"
    scenario.write_text(SHORT)
    negative = harness("run", str(scenario), "--seed", "-1", "--out", str(tmp_path))
    assert negative.returncode == 2
    assert "a seed is 0 or more" in negative.stderr
    missing = harness("report", str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert "no such run directory" in missing.stderr
    assert harness("check", str(tmp_path / "nope")).returncode == 2
    listing = subprocess.Popen(
        [sys.executable, "-m", "harness", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )
    assert listing.stdout is not None
    assert listing.stderr is not None
    listing.stdout.close()  # like `| true`: the reader is gone before the first line is written
    assert listing.wait(timeout=60) == 0
    assert b"Traceback" not in listing.stderr.read()


def test_an_unknown_reference_bug_is_a_validation_error(tmp_path):
    scenario = tmp_path / "bug.yaml"
    scenario.write_text(
        SHORT.replace("cluster: {nodes: 2}", "cluster: {nodes: 2, bugs: [redis_eco]}")
    )
    result = harness("validate", str(scenario))
    assert result.returncode == 2
    assert "cluster.bugs: the reference server has no bug 'redis_eco'" in result.stderr
    scenario.write_text(
        SHORT.replace("cluster: {nodes: 2}", "cluster: {nodes: 2, bugs: [redis_echo]}")
    )
    assert "needs pubsub: redis" in harness("validate", str(scenario)).stderr


def test_several_scenarios_json_step_summary_annotations_set_and_dry_run(tmp_path):
    """Two scenarios in one call (one with a defect, switched on by --set), one JUnit file, a
    JSON document on stdout, a GitHub step summary and an annotation at the failed check."""
    good = tmp_path / "good.yaml"
    good.write_text(SHORT)
    bad = tmp_path / "bad.yaml"
    bad.write_text(SHORT.replace("name: short", "name: broken"))
    plan = harness("run", str(good), "--dry-run", "--set", "clients.count=3", "--seed", "2")
    assert plan.returncode == 0, plan.stderr
    assert "count: 3" in plan.stdout
    assert "seed: 2" in plan.stdout
    assert not (tmp_path / "reports").exists()  # nothing ran
    summary = tmp_path / "summary.md"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            str(good),
            str(bad),
            "--out",
            str(tmp_path / "reports"),
            "--json",
            "--junit-xml",
            str(tmp_path / "junit.xml"),
            "--set",
            "cluster.bugs=[duplicate_after_rejoin]",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    document = json.loads(result.stdout)  # stdout is the JSON document and nothing else
    assert result.returncode == document["exit_code"] == 1, result.stderr
    assert [run["scenario"] for run in document["runs"]] == ["short", "broken"]
    assert {run["validity"] for run in document["runs"]} == {"invalid"}
    suites = ET.parse(tmp_path / "junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["short", "broken"]
    text = summary.read_text()
    assert "### ❌ short (seed 4): invalid" in text
    assert "| at_most_once | ❌ invalid |" in text
    line = SHORT.splitlines().index("  at_most_once: {}") + 1
    assert f"::error file={good},line={line}::at_most_once invalid:" in result.stderr
