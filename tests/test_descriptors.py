"""File descriptors (issue 31): Toxiproxy sized and spread so it does not run out, a refusal with
the arithmetic when it cannot fit, and a run whose toxiproxy-server did run out says so instead
of blaming the load generator.

The arithmetic is pure (`harness.infra.descriptors`). End to end, each run gets a hard limit of
its own through `prlimit` (util-linux) on the harness process, so a few hundred clients play the
part of ten thousand: one toxiproxy-server would not fit, so the run spreads its proxies over one
per node (faults on client and node links still land), and a run too big even for that is
refused before anything starts. The exhaustion test gives a real toxiproxy-server a lower limit
than the harness's (a wrapper in `TOXIPROXY_SERVER`), so it really runs out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from harness.errors import ToxiproxyError
from harness.infra.descriptors import (
    ONE,
    SPARE,
    check_swarm,
    clients_per_node,
    exhausted,
    place,
)
from harness.infra.toxiproxy import find_server_binary
from harness.run.runner import RunOptions, run_scenario
from harness.scenario import parse_scenario

ROOT = Path(__file__).resolve().parent.parent
NODES = ("n1", "n2", "n3")


def mesh_links() -> list[tuple[str, str, str]]:
    links = [(f"clients->{n}", "clients", n) for n in NODES]
    return links + [(f"{a}->{b}", "node", a) for a in NODES for b in NODES if a != b]


def test_one_server_while_it_fits_and_one_per_node_when_not():
    small = place(mesh_links(), {**dict.fromkeys(NODES, 100), ONE: 300}, 20_000)
    assert [load.server for load in small.servers] == [ONE]
    assert small.servers[0].descriptors == 2 * (300 + 6 * 2) + 9 + SPARE
    big = place(
        mesh_links(), {**dict.fromkeys(NODES, 3_334), ONE: 10_001}, 20_000
    )  # the 10,001-client run
    assert [load.server for load in big.servers] == list(NODES)
    assert all(load.descriptors < 20_000 for load in big.servers)
    assert big.home["clients->n2"] == big.home["n2->n1"] == "n2"


def test_a_run_that_cannot_fit_is_refused_with_the_arithmetic():
    first = [i % 3 for i in range(10_001)]
    clients = clients_per_node(first, NODES, failover=True)  # next_node: any client anywhere
    assert clients == {**dict.fromkeys(NODES, 10_001), ONE: 10_001}
    with pytest.raises(ToxiproxyError) as refused:
        place(mesh_links(), clients, 20_000)
    text = str(refused.value)
    assert "10,001 client connections need ~20,2" in text  # the figure, in one server
    assert "the proxies of n1 need ~20,2" in text  # each node's proxy may get every client
    assert "the limit is 20,000" in text
    assert "same_node" in text
    assert "at most ~9,8" in text  # what one server can take here
    same = clients_per_node(first, NODES, failover=False)
    assert same == {"n1": 3_334, "n2": 3_334, "n3": 3_333, ONE: 10_001}
    place(mesh_links(), same, 20_000)  # fits once spread


def test_the_swarm_workers_are_sized_too():
    check_swarm(20_000, 2, 20_000)
    with pytest.raises(ToxiproxyError, match=r"raise clients\.workers to 2"):
        check_swarm(20_000, 1, 20_000)


def test_the_errors_are_counted_in_a_log_across_its_chunks(tmp_path):
    log = tmp_path / "toxiproxy.log"
    line = b"accept tcp 127.0.0.1:4000: accept4: too many open files; retrying in 5ms\n"
    filler = b"x" * ((1 << 20) - 40) + b"\n"
    log.write_bytes(line * 3 + filler + b"Too Many Open Files\n" + b"{error, emfile}\n" + line)
    assert exhausted(log) == 6
    assert exhausted(tmp_path / "missing.log") == 0


def harness(
    *args: str, limit: int, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["prlimit", f"--nofile={limit}:{limit}", sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        check=False,
        env={**os.environ, **(env or {})},
    )


SCENARIO = """\
name: spread
duration: 6s
settle: 2s
cluster: {{nodes: 3}}
clients:
  count: {count}
  topics: ["room:1", "room:2", "room:3"]
  topics_per_client: 1
workload: {{publishers: 3, rate: 6/s}}
faults:
  - {{at: 1s, kind: kill, node: n2, restart_after: 500ms}}
  - {{at: 2500ms, for: 1s, kind: down, link: clients->n3}}
  - {{at: 4s, for: 1s, kind: partition, groups: [[n1], [n2, n3]]}}
checks: {{rejoin: {{within: 8s}}, at_most_once: {{}}, no_phantom: {{}}, delivery: {{settle: 2s}}}}
"""


def setup_of(run_dir: Path) -> dict[str, object]:
    found: dict[str, object] = {}
    for line in (run_dir / "history.jsonl").read_text().splitlines():
        op = json.loads(line)
        if isinstance(op, dict) and op.get("f") == "setup":
            found.update(op["value"])
    return found


needs_prlimit = pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit")


@pytest.mark.slow
@needs_prlimit
def test_a_run_too_big_for_one_toxiproxy_spreads_its_proxies(tmp_path):
    """450 clients under a limit of 1,100: ~1,100 descriptors in one server, ~500 in each of
    three; the kill, the client-link fault and the partition all land on their servers."""
    scenario = tmp_path / "spread.yaml"
    scenario.write_text(SCENARIO.format(count=450))
    done = harness("run", str(scenario), "--out", str(tmp_path / "runs"), limit=1_100)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = next((tmp_path / "runs" / "spread").iterdir())
    setup = setup_of(run_dir)
    servers = setup["descriptors"]["servers"]  # type: ignore[index]
    assert sorted(servers) == list(NODES), servers
    assert setup["descriptors"]["limit"] == 1_100  # type: ignore[index]
    assert all(s["descriptors"] <= 1_100 and s["pid"] for s in servers.values())
    assert {p.name for p in (run_dir / "logs").glob("toxiproxy*.log")} == {
        "toxiproxy.log",
        "toxiproxy.n2.log",
        "toxiproxy.n3.log",
    }
    results = json.loads((run_dir / "results.json").read_text())
    assert not any("cut nothing" in w for w in results.get("warnings", [])), results["warnings"]


@pytest.mark.slow
@needs_prlimit
def test_a_run_too_big_even_spread_is_refused_before_it_starts(tmp_path):
    """1,500 clients (and 3 publishers) under a limit of 1,100: one swarm worker cannot hold
    them, and with four, each node's proxy would still need ~1,250 (with next_node any client
    may come to any node: ~3,200)."""
    scenario = tmp_path / "spread.yaml"
    scenario.write_text(SCENARIO.format(count=1_500))
    out = ["--out", str(tmp_path / "runs")]
    one_worker = harness("run", str(scenario), *out, limit=1_100)
    assert one_worker.returncode == 3, one_worker.stdout + one_worker.stderr
    assert "raise clients.workers to 2 or more" in one_worker.stderr
    four = harness("run", str(scenario), *out, "--set", "clients.workers=4", limit=1_100)
    assert four.returncode == 3, four.stdout + four.stderr
    assert "1,503 client connections need ~3,2" in four.stderr  # all on one server
    assert "the proxies of n1 need ~1,2" in four.stderr  # 501 clients: even spread, too many
    assert "the limit is 1,100 descriptors per process" in four.stderr
    for run_dir in (tmp_path / "runs" / "spread").iterdir():
        assert not (run_dir / "logs" / "toxiproxy.log").exists()  # nothing was started


@pytest.mark.slow
@needs_prlimit
def test_a_toxiproxy_that_runs_out_is_named_as_the_cause(tmp_path, monkeypatch):
    """A real toxiproxy-server with a limit of 150 behind 120 clients: it refuses connections
    with `too many open files`; the run fails at set-up (not every client joined) and says that
    toxiproxy ran out, not "lower clients.count" alone."""
    wrapper = tmp_path / "toxiproxy-server"
    wrapper.write_text(f'#!/bin/sh\nexec prlimit --nofile=150:150 {find_server_binary()} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("TOXIPROXY_SERVER", str(wrapper))
    scenario = parse_scenario(SCENARIO.format(count=120).split("faults:")[0])
    options = RunOptions(out=tmp_path / "runs", join_timeout=8.0)
    result = trio.run(run_scenario, scenario, options)
    assert result.exit_code == 3
    error = result.error or ""
    assert "clients joined within 8s" in error, error
    assert "toxiproxy ran out of file descriptors" in error, error
    assert "logs/toxiproxy.log" in error
    assert "lower `clients.count` or `workload.rate`" not in error
    found = [
        op["value"]
        for op in map(json.loads, (result.run_dir / "history.jsonl").read_text().splitlines())
        if isinstance(op, dict) and op.get("f") == "exhausted"
    ]
    assert [(v["process"], v["log"]) for v in found] == [("toxiproxy", "logs/toxiproxy.log")]
    assert found[0]["errors"] > 0


def test_a_worker_hosts_limit_is_named_when_its_share_does_not_fit():
    from harness.infra.descriptors import check_swarm
    from harness.infra.toxiproxy import ToxiproxyError

    check_swarm(4_000, 2, 2_200, "root@h1:22")  # 2,000 sockets a worker + spare: fits
    with pytest.raises(ToxiproxyError, match=r"the limit on root@h1:22 is 1,024 .* the hosts'"):
        check_swarm(4_000, 2, 1_024, "root@h1:22")
