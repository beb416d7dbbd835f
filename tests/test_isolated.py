"""`cluster.network: isolated`: every node in a network namespace of its own, node-link faults as
packet rules in the run's hub namespace (`harness.infra.netns`, `harness.cli._hub`).

End to end through `harness run` (it re-enters itself in its hub): a Redis cluster partitioned
and cut by rules whose counters say what they dropped; `packet_loss` and `down` on a mesh; the
zoo's remote-link defects caught with the mesh dialing its peers by address; a recorded fault
whose rules dropped nothing excuses no delivery. After each run the machine's own namespace has
no route to the nodes' addresses, no rule table and no process of the run. The library's
`netsplit-isolated.yaml` (valid, and its defect caught) is in `test_library`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import trio

from harness.faults.links import shape_pairs
from harness.infra.netns import SUBNET, TABLE
from harness.scenario import parse_scenario

ROOT = Path(__file__).resolve().parent.parent
needs_namespaces = pytest.mark.skipif(
    subprocess.run(["unshare", "--help"], capture_output=True, check=False).returncode != 0,
    reason="needs util-linux's unshare",
)

MESH = """\
name: mesh-rules
duration: 10s
settle: 2s
cluster: {nodes: 3, network: isolated}
clients:
  count: 12
  topics: ["room:1"]
  timings: {reconnect_after: [10ms, 50ms], rejoin_after: [100ms, 200ms], heartbeat_interval: 1s, timeout: 3s}
workload: {publishers: 3, rate: 30/s}
faults:
  - {at: 1s, for: 3s, kind: packet_loss, link: [n1->n2, n2->n1], probability: 0.3}
  - {at: 4500ms, for: 2s, kind: down, link: n2->n3}
  - {at: 7s, for: 2s, kind: partition, shape: bridge}
"""


def harness(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
        check=False,
    )


def stops(run_dir: Path) -> dict[str, dict[str, int]]:
    """Each fault's target -> the figures its stop recorded."""
    found = {}
    for line in (run_dir / "history.jsonl").read_text().splitlines():
        op = json.loads(line)  # a delivery may be a lean row (a list)
        if isinstance(op, dict) and op.get("f") == "fault" and op["type"] == "ok":
            found[f"{op['value']['kind']} {op['value']['target']}"] = op["value"].get("figures", {})
    return found


def nothing_left() -> None:
    """The machine's own namespace: no route to the nodes, no rule table, no holder left."""
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True, check=True).stdout
    assert SUBNET not in routes
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert f"inet {TABLE}" not in tables
    mine = subprocess.run(
        ["ps", "-o", "pid=,args=", "--ppid", str(os.getpid())], capture_output=True, text=True
    ).stdout
    assert "unshare" not in mine
    assert "sleep infinity" not in mine


def the_run(out: Path) -> Path:
    (run_dir,) = [p for p in out.glob("*/*") if p.is_dir()]
    return run_dir


def test_what_isolated_refuses_is_said_where_it_is_written():
    cases = {
        "latency on a node link": (
            "faults: [{at: 1s, for: 1s, kind: latency, link: n1->n2, latency: 100ms}]",
            "n1->n2 has no proxy under network: isolated",
        ),
        "a message-level fault": (
            "faults: [{at: 1s, for: 1s, kind: drop_broadcast, probability: 0.5}]",
            "drop_broadcast needs network: shared",
        ),
        "packet loss on a client link": (
            "faults: [{at: 1s, for: 1s, kind: packet_loss, link: clients->n1, probability: 0.1}]",
            "packet_loss is for node links",
        ),
    }
    base = "name: x\nduration: 5s\ncluster: {nodes: 2, network: isolated}\n"
    for what, (faults, said) in cases.items():
        with pytest.raises(Exception, match=said) as caught:
            parse_scenario(base + faults, "x.yaml")
        assert "faults[0]" in str(caught.value) or "faults.0" in str(caught.value), what
    shared = "name: x\nduration: 5s\ncluster: {nodes: 2}\n"
    loss = "faults: [{at: 1s, for: 1s, kind: packet_loss, link: n1->n2, probability: 0.1}]"
    with pytest.raises(Exception, match=r"needs cluster\.network: isolated"):
        parse_scenario(shared + loss, "x.yaml")
    docker = "name: x\nduration: 5s\ncluster: {nodes: 2, network: isolated, backend: docker}\n"
    with pytest.raises(Exception, match="network: isolated is for backend: local"):
        parse_scenario(docker, "x.yaml")


def test_an_outside_toxiproxy_is_refused_under_isolated(tmp_path):
    done = harness(
        "run", "scenarios/netsplit-isolated.yaml", "--toxiproxy", "127.0.0.1:1", "--out",
        str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "starts its own toxiproxy-server inside its namespace" in done.stderr


@pytest.mark.slow
@needs_namespaces
def test_a_redis_cluster_is_cut_by_packet_rules_that_count(tmp_path):
    done = harness(
        "run", "scenarios/redis.yaml", "--set", "cluster.network=isolated", "--out", str(tmp_path)
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    run_dir = the_run(tmp_path)
    figures = stops(run_dir)
    assert figures["down n1->redis"]["packets_dropped"] > 0, figures
    assert figures["partition n1,redis|n2,n3"]["packets_dropped"] > 0, figures
    results = json.loads((run_dir / "results.json").read_text())
    assert not [w for w in results["warnings"] if "cut nothing" in w]
    assert "namespaces" in (run_dir / "history.jsonl").read_text()  # where each node lived
    nothing_left()

    # the same history with the partition's rules having dropped nothing: its window excuses
    # no delivery and the run's warnings say why (`harness check` re-judges a run directory)
    history = run_dir / "history.jsonl"
    lines = history.read_text().splitlines()
    for i, line in enumerate(lines):
        op = json.loads(line)
        if (
            isinstance(op, dict)
            and op.get("f") == "fault"
            and op["type"] == "ok"
            and (op["value"]["kind"] == "partition")
        ):
            op["value"]["figures"]["packets_dropped"] = 0
            lines[i] = json.dumps(op, separators=(",", ":"))
    history.write_text("\n".join(lines) + "\n")
    checked = harness("check", str(run_dir))
    assert "cut nothing: its packet rules dropped no packet" in checked.stdout, checked.stdout


@pytest.mark.parametrize("n", [5, 6, 7, 9])
def test_a_majorities_ring_leaves_each_node_a_majority_of_its_own(n):
    nodes = [f"n{i}" for i in range(1, n + 1)]
    cut = {frozenset(pair) for pair in shape_pairs("majorities_ring", nodes)}
    sees = {a: frozenset({a} | {b for b in nodes if b != a and {a, b} not in cut}) for a in nodes}
    assert all(len(seen) > n / 2 for seen in sees.values())  # each a majority
    assert len(set(sees.values())) == n  # no two the same
    assert all(len(seen) < n for seen in sees.values())  # and nobody sees everyone


def test_a_bridge_cuts_the_halves_apart_but_not_the_middle():
    nodes = ["n1", "n2", "n3", "n4", "n5"]
    assert sorted(shape_pairs("bridge", nodes)) == [
        ("n1", "n4"), ("n1", "n5"), ("n2", "n4"), ("n2", "n5"),
    ]  # fmt: skip


@pytest.mark.slow
@needs_namespaces
def test_packet_loss_a_one_way_cut_and_a_bridge_on_a_mesh(tmp_path):
    scenario = tmp_path / "mesh-rules.yaml"
    scenario.write_text(MESH)
    done = harness("run", str(scenario), "--out", str(tmp_path / "r"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    figures = stops(the_run(tmp_path / "r"))
    assert figures["packet_loss n1->n2,n2->n1"]["packets_dropped"] > 0, figures
    assert figures["down n2->n3"]["packets_dropped"] > 0, figures
    assert figures["partition bridge"]["packets_dropped"] > 0, figures
    nothing_left()


@pytest.mark.slow
@needs_namespaces
async def test_the_zoos_remote_link_defects_are_caught_with_peers_dialed_by_address(tmp_path):
    """Two runs at once, each in its own hub: the same addresses and ports, no collision."""
    codes: dict[str, tuple[int, str]] = {}

    async def run(bug: str) -> None:
        argv = [sys.executable, "-m", "harness", "run", "scenarios/zoo/kill.yaml"]
        argv += ["--set", "cluster.network=isolated", "--set", f"cluster.bugs=[{bug}]"]
        argv += ["--out", str(tmp_path / bug)]
        done = await trio.run_process(argv, capture_stdout=True, check=False, cwd=ROOT)
        codes[bug] = (done.returncode, done.stdout.decode(errors="replace"))

    async with trio.open_nursery() as nursery:
        for bug in ("no_link_restore_after_kill", "forget_remote_interest_after_restart"):
            nursery.start_soon(run, bug)
    for bug, (code, out) in codes.items():
        assert code == 1, (bug, out[-3000:])
        results = json.loads((the_run(tmp_path / bug) / "results.json").read_text())
        delivery = next(c for c in results["checks"] if c["name"] == "delivery")
        assert delivery["validity"] == "invalid", (bug, delivery["summary"])
        assert "never received" in delivery["witnesses"][0]["problem"]
    nothing_left()


FORWARD = """\
name: forward
duration: 4s
settle: 1s
cluster:
  nodes: 2
  network: isolated
  pubsub: redis
  forward: ["127.0.0.1:%(port)d"]
  command: "{python} -m server_under_test --node {node} --host {host} --port {port} --pubsub redis://10.201.0.1:%(port)d --store {store} --log-level WARNING"
clients:
  count: 6
  topics: ["room:1"]
  timings: {reconnect_after: [10ms, 50ms], rejoin_after: [100ms, 200ms], heartbeat_interval: 1s, timeout: 3s}
workload: {publishers: 2, rate: 20/s}
"""


@pytest.mark.slow
@needs_namespaces
async def test_a_service_of_this_machine_is_reached_through_a_forward(tmp_path, redis_server):
    """The nodes' PubSub is a Redis of the test's own, on this machine's 127.0.0.1, which no
    namespace of the run can reach but through `cluster.forward` (relayed by both harnesses)."""
    scenario = tmp_path / "forward.yaml"
    scenario.write_text(FORWARD % {"port": redis_server.port})
    argv = [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(tmp_path / "r")]
    done = await trio.run_process(argv, capture_stdout=True, check=False, cwd=ROOT)
    out = done.stdout.decode(errors="replace")
    assert done.returncode == 0, out[-3000:]
    results = json.loads((the_run(tmp_path / "r") / "results.json").read_text())
    delivery = next(c for c in results["checks"] if c["name"] == "delivery")
    assert delivery["summary"]["expected_deliveries"] > 0, delivery
    assert delivery["summary"]["lost_outside_faults"] == 0  # broadcasts crossed nodes through it
    stream = await trio.open_tcp_stream("127.0.0.1", redis_server.port)
    async with stream:
        await stream.send_all(b"*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n")
        info = b""
        while b"pubsub_channels" not in info and b"total_commands_processed" not in info:
            info += await stream.receive_some(4096)
    assert b"total_connections_received:" in info
    assert int(info.split(b"total_connections_received:")[1].split()[0]) >= 2  # both nodes
    nothing_left()


@pytest.mark.slow
@needs_namespaces
@pytest.mark.skipif(os.geteuid() != 0, reason="drops to an unprivileged user: needs root to start")
def test_a_whole_isolated_run_works_for_an_unprivileged_user():
    """`harness run` of the library's netsplit-isolated as `nobody`: the hub and the nodes'
    namespaces in a user namespace (rootless), from a copy of the harness, the reference server,
    the packages and toxiproxy-server in a directory that user can read, with the system's
    Python (the venv's may live where `nobody` cannot go)."""
    import sysconfig

    from harness.infra.toxiproxy import find_server_binary

    python = shutil.which("python3", path="/usr/bin")
    if python is None:
        pytest.skip("needs the system's /usr/bin/python3")
    skip = shutil.ignore_patterns(
        "__pycache__", "*mypy*", "pip", "pip-*", "setuptools*", "hypothesis*", "_pytest",
        "pytest*", "ruff*", "syrupy*",
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="chaos-rootless-run-") as where:
        copy = Path(where)
        shutil.copytree(sysconfig.get_paths()["purelib"], copy / "site", ignore=skip)
        for package in ("harness", "server_under_test"):
            shutil.copytree(ROOT / package, copy / package, ignore=skip)
        shutil.copy(ROOT / "scenarios" / "netsplit-isolated.yaml", copy / "netsplit.yaml")
        shutil.copy(find_server_binary(), copy / "toxiproxy-server")
        (copy / "r").mkdir()
        shutil.chown(copy / "r", "nobody")
        copy.chmod(0o755)
        for path in copy.rglob("*"):
            if path.is_dir() or os.access(path, os.X_OK):
                path.chmod(0o755)
            else:
                path.chmod(0o644)
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(copy),
            "PYTHONPATH": f"{copy / 'site'}:{copy}",
            "TOXIPROXY_SERVER": str(copy / "toxiproxy-server"),
        }
        argv = ["runuser", "-u", "nobody", "--", python, "-m", "harness", "run"]
        argv += [str(copy / "netsplit.yaml"), "--out", str(copy / "r")]
        argv += ["--set", "duration=8s", "--set", "faults=[{at: 2s, for: 4s, kind: partition,"
                 " groups: [[n1], [n2, n3]]}]"]  # fmt: skip
        done = subprocess.run(
            argv, capture_output=True, text=True, check=False, cwd=copy, env=env, timeout=240
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        figures = stops(the_run(copy / "r"))
        assert figures["partition n1|n2,n3"]["packets_dropped"] > 0, figures
    nothing_left()
