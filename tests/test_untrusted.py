"""The server under test is untrusted input: a misbehaving server of the tests' own
(`tests/support/hostile_server.py`, each behaviour a switch) run end to end through `harness run`
under `GITHUB_ACTIONS=true` with `--junit-xml`. For each: the exit code, results.json present, no
traceback, stdout and stderr free of control characters and of workflow commands other than the
harness's own annotations, junit.xml parsed by a strict XML parser, the harness's peak memory
bounded, the report under 5 MB.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import trio

from harness._clock import RunClock
from harness.checkers import assess
from harness.foreign import BadAnswer
from harness.grammar.behaviour import Endpoint
from harness.history import Op
from harness.scenario import AppSpec, parse_scenario
from harness.swarm import read_rooms
from tests.support.vocabulary import assert_vocabulary

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = "{python} -m tests.support.hostile_server --node {node} --host {host} --port {port}"
SCENARIO = """\
name: hostile
duration: %(duration)s
settle: 1s
cluster:
  nodes: 1
  command: "%(command)s"
  cwd: "%(root)s"
  health: {timeout: 5s}
  ready: {probe: off}
clients:
  count: 3
  topics: ["room:1"]
  timings: {reconnect_after: [10ms, 50ms], rejoin_after: [100ms, 200ms], heartbeat_interval: 1s, timeout: 3s}
workload: {publishers: 1, rate: 10/s}
%(extra)s
"""
WATCH = """\
import subprocess, sys, time
child = subprocess.Popen(sys.argv[1:])
peak = 0
while child.poll() is None:
    try:
        for line in open(f"/proc/{child.pid}/status"):
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    except OSError:
        pass
    time.sleep(0.05)
print(f"peak-rss-kb {peak}", file=sys.stderr)
sys.exit(child.returncode)
"""
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def run(tmp_path: Path, *misbehave: str, duration: str = "4s", extra: str = ""):
    command = HOSTILE + "".join(f" --misbehave {m}" for m in misbehave)
    text = SCENARIO % {"duration": duration, "command": command, "root": ROOT, "extra": extra}
    scenario = tmp_path / "hostile.yaml"
    scenario.write_text(text)
    summary = tmp_path / "summary.md"
    env = {**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    argv = [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(tmp_path / "runs")]
    argv += ["--junit-xml", str(tmp_path / "junit.xml")]
    done = subprocess.run(
        [sys.executable, "-c", WATCH, *argv],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    peak = int(re.search(r"peak-rss-kb (\d+)", done.stderr).group(1)) * 1024
    runs = sorted((tmp_path / "runs").glob("*/*/"))
    assert runs, done.stdout + done.stderr
    run_dir = runs[-1]
    results = json.loads((run_dir / "results.json").read_text())
    _assert_safe(done, tmp_path, run_dir, summary)
    assert_vocabulary(run_dir / "history.jsonl")  # foreign ops too: bad_frame, recv_foreign
    return done, results, run_dir, peak


def _assert_safe(done, tmp_path: Path, run_dir: Path, summary: Path) -> None:
    for stream in (done.stdout, done.stderr):
        assert "Traceback" not in stream, stream[-3000:]
        assert not CONTROL.search(stream), repr(CONTROL.search(stream))
        for line in stream.splitlines():
            if line.startswith("::"):  # only the harness's own annotations
                assert re.match(r"::(error|warning) file=[^,]*,line=\d+::", line), line
    assert len(done.stdout) < 20_000
    for junit in (tmp_path / "junit.xml", run_dir / "junit.xml"):
        ET.parse(junit)  # expat: well-formed XML 1.0, or it raises
        assert junit.stat().st_size < 1_000_000
    assert (run_dir / "report.html").stat().st_size < 5 * 2**20
    assert (run_dir / "results.json").stat().st_size < 2 * 2**20
    if summary.exists():
        text = summary.read_text()
        assert "<b>" not in text
        assert "\r" not in text
        for row in (line for line in text.splitlines() if line.startswith("| ")):
            assert row.count(" | ") - row.count("\\|") >= 3  # cells intact


def check(results: dict, name: str) -> dict:
    return next(c for c in results["checks"] if c["name"] == name)


@pytest.mark.slow
def test_deep_odd_injected_and_huge_ids_are_findings_not_crashes(tmp_path):
    done, results, run_dir, peak = run(
        tmp_path, "deep_id", "list_ids", "inject", "big_id", "deep_error"
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert check(results, "no_phantom")["validity"] == "invalid"
    problems = [w["problem"] for w in check(results, "no_phantom")["witnesses"]]
    assert any(p.startswith("[1,2]") for p in problems)
    assert any("1,048,576 characters" in p for p in problems)
    assert (run_dir / "witnesses.jsonl").stat().st_size < 2 * 2**20
    assert peak < 300 * 2**20


@pytest.mark.slow
def test_malformed_frames_fail_the_protocol_check_with_their_first_bytes(tmp_path):
    done, results, _, _ = run(tmp_path, "malformed")
    assert done.returncode == 1, done.stdout + done.stderr
    protocol = check(results, "protocol")
    assert protocol["validity"] == "invalid"
    assert protocol["summary"]["bad_frames"] >= 72
    assert {"first_bytes", "error", "node"} <= set(protocol["witnesses"][0])


@pytest.mark.slow
def test_a_phantom_flood_is_counted_in_bounded_memory(tmp_path):
    done, results, run_dir, peak = run(tmp_path, "phantom_flood", duration="6s")
    assert done.returncode == 1, done.stdout + done.stderr
    phantom = check(results, "no_phantom")
    assert phantom["summary"]["foreign_counted"] > 10_000
    assert phantom["witness_count"] == phantom["summary"]["violations"]
    assert (run_dir / "history.jsonl").stat().st_size < 20 * 2**20
    assert peak < 400 * 2**20


@pytest.mark.slow
def test_a_read_that_never_ends_is_refused_at_its_limit(tmp_path):
    http = 'app: {read: {http: {url: "http://{host}:{port}/api/messages?topic={topic}"}}}'
    done, results, _, peak = run(tmp_path, "endless_read", extra=http)
    assert done.returncode == 3, done.stdout + done.stderr
    durability = check(results, "durability")
    assert durability["validity"] == "unknown"
    assert "over 16 MB" in durability["error"]
    assert peak < 400 * 2**20


@pytest.mark.slow
def test_an_injected_refusal_is_printed_escaped(tmp_path):
    done, results, _, _ = run(tmp_path, "inject_refusal")
    assert done.returncode == 3
    assert results["validity"] == "error"
    assert "\\n::error file=x::pwned\\x1b" in done.stderr


@pytest.mark.slow
def test_a_health_answer_nested_100k_deep_is_not_healthy(tmp_path):
    done, results, _, _ = run(tmp_path, "deep_health")
    assert done.returncode == 3
    assert "not healthy" in results["error"]


@pytest.mark.slow
def test_a_node_that_exits_by_itself_is_named(tmp_path):
    done, results, _, _ = run(tmp_path, "exit_after", duration="5s")
    assert any(
        re.match(r"n1 exited by itself at -?[\d.]+ s with status 1", w) for w in results["warnings"]
    ), results["warnings"]
    assert "exited by itself" in done.stdout


@pytest.mark.slow
def test_a_daemon_the_node_forked_is_contained(tmp_path):
    kill = "faults:\n  - {at: 1s, kind: kill, node: n1, restart_after: 500ms}"
    done, results, run_dir, _ = run(tmp_path, "daemon", duration="4s", extra=kill)
    assert "Traceback" not in done.stderr
    setup = [json.loads(line) for line in (run_dir / "history.jsonl").open() if '"setup"' in line]
    (containment,) = [s["value"]["containment"] for s in setup if "containment" in s["value"]]
    mechanism = "cgroup" if os.geteuid() == 0 else "ports"
    assert containment == {"n1": mechanism}
    # the restart found its port free: the daemon holding it went with the kill
    assert results["validity"] in ("valid", "invalid"), results.get("error")
    assert not _daemons()


def _daemons() -> list[int]:
    """Live processes of the hostile server's daemon (a node's mark in their environment)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            environ = (entry / "environ").read_bytes()
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        daemon = b"hostile_server" in command and b"daemon" in command
        if state != "Z" and daemon and b"CHAOS_HARNESS_NODE=" in environ:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_the_nodes_cpu_is_measured_and_a_distress_names_the_server(tmp_path):
    """A server that burns its CPU (two spinning children, in its cgroup or process group): the
    runner's load ops carry what the nodes used, and any distress window names the server."""
    _, results, run_dir, _ = run(tmp_path, "cpu_burn", duration="4s")
    loads = [
        json.loads(line)["value"]
        for line in (run_dir / "history.jsonl").open()
        if '"f":"load"' in line and '"cpu_server"' in line
    ]
    assert max(v["cpu_server"] for v in loads) >= 1.0, loads
    for window in results["distress"]:
        assert "the server's nodes had the CPU" in window["reason"], window


def test_distress_names_the_server_when_the_nodes_had_the_cpu():
    ops = [Op(0.0, "runner", "info", "phase", {"phase": "workload"})]
    for t in range(1, 8):
        figures = {"span": 1.0, "lag": 0.9, "publish_lag": 1.5, "cpu_self": 0.1, "cpus": 2}
        ops.append(Op(float(t), "runner", "info", "load", {**figures, "cpu_server": 1.8}))
    assessment = assess(ops, {"delivery": {}})
    (window,) = assessment.distress
    assert "the server's nodes had the CPU (1.8 of 2 CPUs, the harness 0.1)" in window.reason
    assert "lower `clients.count`" not in window.reason


@pytest.mark.parametrize(
    ("misbehave", "read", "words"),
    [
        ("deep_stats", "stats", "not strict JSON"),
        ("deep_read", "http", "deeper than 64"),
        ("nan_read", "http", "not strict JSON"),
        ("slow_read", "http", "no complete answer to the HTTP GET for room:1 within 1 s"),
        ("silent_read", "push", "no complete answer to the read push for room:1 within 1 s"),
    ],
)
async def test_a_bad_read_is_a_reason_never_an_exception(tmp_path, misbehave, read, words):
    from harness.infra.http import get_json
    from harness.infra.process import free_ports

    port = free_ports(1)[0]
    argv = [sys.executable, "-m", "tests.support.hostile_server", "--node", "n1", "--port"]
    server = await trio.lowlevel.open_process(
        [*argv, str(port), "--misbehave", misbehave], cwd=ROOT
    )
    try:
        with trio.fail_after(10):
            while True:
                try:
                    if (await get_json("127.0.0.1", port, "/health"))[0] == 200:
                        break
                except OSError:
                    await trio.sleep(0.05)
        if read == "stats":  # /stats 100,000 deep: a reason, never a RecursionError
            with pytest.raises(BadAnswer, match=words):
                await get_json("127.0.0.1", port, "/stats")
            return
        how = (
            '{http: {url: "http://{host}:{port}/api/messages?topic={topic}"}, timeout: 1s}'
            if read == "http"
            else "{push: {}, timeout: 1s}"
        )
        app = parse_scenario(f"name: x\nduration: 1s\napp: {{read: {how}}}\n").app
        ops: list[Op] = []

        class Ops:
            def record(self, op: Op) -> None:
                ops.append(op)

        node = Endpoint("n1", f"ws://127.0.0.1:{port}/socket")
        await read_rooms([node], ["room:1", "room:2"], Ops(), RunClock(), app, "r1")
        failed = [op for op in ops if op.f == "read" and op.type == "fail"]
        assert failed, ops
        assert words in failed[0].value["error"], failed[0].value
        assert isinstance(app, AppSpec)
    finally:
        server.kill()
        await server.wait()
