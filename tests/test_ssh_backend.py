"""`cluster.backend: ssh` end to end: the zoo's kill scenario with each node on an SSH "host" (a
real OpenSSH server on loopback, three host entries, one per node), its clients through Toxiproxy
on this machine: valid on the reference server, its defect caught, nothing left behind; and the
grammar refuses what the backend cannot do yet (cut node links between hosts)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from harness.errors import InvalidScenario
from harness.run.runner import RunOptions, run_scenario
from harness.scenario import parse_scenario
from tests.support.sshd import namespaced_hosts, run_in_hub, running, sshd

ROOT = Path(__file__).resolve().parent.parent
KILL = (ROOT / "scenarios" / "zoo" / "kill.yaml").read_text()


def with_hosts(text: str, entries: list[str], bugs: str = "") -> str:
    """The scenario with its cluster on SSH hosts (`entries`: one per node)."""
    cluster = (
        f"cluster: {{nodes: {len(entries)}, backend: ssh, cwd: {ROOT},"
        f" hosts: [{', '.join(entries)}]{', bugs: [' + bugs + ']' if bugs else ''}}}"
    )
    return re.sub(r"^cluster: .*$", cluster, text, flags=re.M)


def on_hosts(text: str, host: object, *, bugs: str = "", nodes: int = 3) -> str:
    """The scenario with each node on the same loopback sshd."""
    entry = (
        f"{{host: 127.0.0.1, port: {host.port}, user: root, identity: {host.identity},"  # type: ignore[attr-defined]
        f" known_hosts: {host.known_hosts}, python: {sys.executable}}}"  # type: ignore[attr-defined]
    )
    return with_hosts(text, [entry] * nodes, bugs)


@pytest.mark.slow
async def test_the_kill_scenario_on_ssh_hosts_is_valid_and_its_defect_caught(tmp_path):
    with sshd(tmp_path / "sshd") as host:
        scenario = parse_scenario(on_hosts(KILL, host), "kill-on-hosts.yaml")
        result = await run_scenario(scenario, RunOptions(out=tmp_path / "valid"))
        assert result.error is None, result.error
        flagged = {r.name: r.summary for r in result.results if r.validity != "valid"}
        assert not flagged, flagged
        assert result.exit_code == 0
        log = (result.run_dir / "logs" / "n2.log").read_text()
        assert log.count("--- start on root@127.0.0.1") == 2  # started, killed, started again
        assert re.search(r"^\d+$", log, re.M)  # the group's id on the host, as the wrapper said

        caught = parse_scenario(on_hosts(KILL, host, bugs="no_link_restore_after_kill"), "k.yaml")
        result = await run_scenario(caught, RunOptions(out=tmp_path / "caught"))
        assert result.error is None, result.error
        by_name = {r.name: r for r in result.results}
        assert by_name["delivery"].validity == "invalid", by_name["delivery"].summary
        assert result.exit_code == 1
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _serves(p)]  # noqa: ASYNC240


def _serves(proc: Path) -> bool:
    try:
        return b"server_under_test" in (proc / "cmdline").read_bytes() and str(ROOT) in str(
            (proc / "cwd").resolve()
        )
    except OSError:
        return False


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("{at: 1s, kind: partition, groups: [[n1], [n2, n3]], for: 1s}", "cuts node-to-node"),
        ("{at: 1s, kind: down, link: n1->n2, for: 1s}", "n1->n2: a link fault cuts node-to-node"),
        ("{at: 1s, kind: drop_broadcast, for: 1s}", "cuts node-to-node"),
        ("{at: 1s, kind: random, for: 3s}", "leave it out of kinds"),
    ],
)
def test_node_links_between_hosts_are_refused_with_the_reason(tmp_path, fault, message):
    host = type("H", (), {"port": 22, "identity": "/k", "known_hosts": "/kh"})()
    text = re.sub(
        r"^faults:\n(  - .*\n)+", f"faults:\n  - {fault}\n", on_hosts(KILL, host), flags=re.M
    )
    with pytest.raises(InvalidScenario, match=re.escape(message)):
        parse_scenario(text, "x.yaml")


def test_hosts_of_their_own_take_node_link_faults_but_not_message_level_ones(tmp_path):
    text = on_namespaced_hosts(KILL, tmp_path, 3)
    cut = "faults:\n  - {at: 1s, kind: partition, shape: bridge, for: 1s}\n"
    scenario = parse_scenario(re.sub(r"^faults:\n(  - .*\n)+", cut, text, flags=re.M), "x.yaml")
    assert scenario.cluster.topology.hosts
    assert not scenario.cluster.shared_hosts
    assert "n1->n2" in scenario.cluster.links
    drop = "faults:\n  - {at: 1s, kind: drop_broadcast, for: 1s}\n"
    with pytest.raises(InvalidScenario, match="on SSH hosts the nodes talk directly"):
        parse_scenario(re.sub(r"^faults:\n(  - .*\n)+", drop, text, flags=re.M), "x.yaml")


def test_hosts_are_one_per_node_and_only_for_ssh():
    host = type("H", (), {"port": 22, "identity": "/k", "known_hosts": "/kh"})()
    two = on_hosts(KILL, host).replace("nodes: 3, backend: ssh", "nodes: 2, backend: ssh")
    with pytest.raises(InvalidScenario, match=r"one host per node \(2\), got 3"):
        parse_scenario(two, "x.yaml")
    local = on_hosts(KILL, host).replace("backend: ssh", "backend: local")
    with pytest.raises(InvalidScenario, match="hosts are for backend: ssh"):
        parse_scenario(local, "x.yaml")


LONG = """
name: long
duration: 60s
settle: 1s
cluster: {nodes: 2}
clients:
  count: 4
  topics: ["room:1"]
workload: {publishers: 1, rate: 20/s}
faults:
  - {at: 1s, for: 50s, kind: latency, link: clients->n1, latency: 20ms}
"""


def node_processes(ports: list[int]) -> list[int]:
    """The reference nodes serving any of `ports` (the node itself, not its wrapper)."""
    return sorted({pid for port in ports for pid in running("server_under_test", str(port))})


@pytest.mark.slow
def test_sigkill_of_the_harness_leaves_no_node_on_a_host(tmp_path):
    import json
    import subprocess
    import time

    from harness.run.rundir import read_history

    with sshd(tmp_path / "sshd") as host:
        text = on_hosts(LONG, host, nodes=2)
        scenario = tmp_path / "long.yaml"
        scenario.write_text(text)
        out = tmp_path / "reports"
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 60
        while not (
            list(out.glob("long/*/history.jsonl"))
            and '"kind":"latency"' in next(out.glob("long/*/history.jsonl")).read_text()
        ):
            assert time.monotonic() < deadline, "no workload within 60 s"
            assert proc.poll() is None, "the harness ended before its workload"
            time.sleep(0.05)
        ops = [
            json.loads(op.to_json()) for op in read_history(next(out.glob("long/*/history.jsonl")))
        ]
        nodes = next(o["value"]["nodes"] for o in ops if "nodes" in o["value"])
        ports = [int(url.rsplit(":", 1)[1].split("/")[0]) for url in nodes.values()]
        assert len(node_processes(ports)) == 2
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        while node_processes(ports):
            assert time.monotonic() < deadline, f"left on the host: {node_processes(ports)}"
            time.sleep(0.05)


# the zoo's partition one way (n1's packets to n2 dropped) for 6 s: a packet rule leaves the
# mesh's TCP connection open, so a link is down (and redialled) only after 4 silent 1 s ticks;
# n2's link to n1 still delivers but hears nothing back, and the defect resends on the redial
# what n1 already had (cut both ways, what it resends had been lost, and nothing is doubled)
PARTITION = (
    (ROOT / "scenarios" / "zoo" / "partition.yaml")
    .read_text()
    .replace("duration: 6s", "duration: 10s")
    .replace(
        "{at: 1500ms, for: 1500ms, kind: partition, groups: [[n1], [n2]]}",
        "{at: 1500ms, for: 6s, kind: partition, groups: [[n1], [n2]], one_way: true}",
    )
)
assert "one_way: true" in PARTITION


def on_namespaced_hosts(text: str, root: Path, count: int, *, bugs: str = "") -> str:
    """The scenario with node i on the host at 10.201.i.2 (a namespace of `open_hub`)."""
    key, known = root / "user_key", root / "known_hosts"
    entries = [
        f"{{host: 10.201.{i}.2, user: root, identity: {key}, known_hosts: {known},"
        f" python: {sys.executable}}}"
        for i in range(1, count + 1)
    ]
    return with_hosts(text, entries, bugs)


@pytest.mark.slow
async def test_a_partition_between_hosts_is_cut_by_rules_on_each_host(tmp_path):
    """Three hosts for real: network namespaces (the isolated network's hub, as root), Debian's
    sshd in each on its own address, the harness inside the hub. The zoo's partition between
    hosts is packet rules on each host: valid, packets dropped and counted, its defect
    (resend_after_reconnect) caught, and no rule table or node left on any host."""
    import json

    from harness.run.rundir import read_history

    keys = tmp_path / "keys"
    async with namespaced_hosts(keys, ["h1", "h2"]) as hub:
        for bugs, expected in (("", 0), ("resend_after_reconnect", 1)):  # exit codes
            scenario = tmp_path / f"partition{bool(bugs)}.yaml"
            scenario.write_text(on_namespaced_hosts(PARTITION, keys, 2, bugs=bugs))
            out = tmp_path / f"reports{bool(bugs)}"
            done = await run_in_hub(hub, scenario, out)
            said = done.stdout.decode()[-3000:] + done.stderr.decode()[-3000:]
            assert done.returncode == expected, said
            run_dir = next((out / "zoo-partition").iterdir())
            ops = [json.loads(op.to_json()) for op in read_history(run_dir / "history.jsonl")]
            stops = [o for o in ops if o["f"] == "fault" and o["type"] == "ok"]
            assert stops[0]["value"]["figures"]["packets_dropped"] > 0, stops
            results = json.loads((run_dir / "results.json").read_text())
            by_name = {c["name"]: c["validity"] for c in results["checks"]}
            assert by_name["at_most_once"] == ("invalid" if bugs else "valid"), by_name
        for name in ("h1", "h2"):  # the run's tables are gone from every host
            assert "chaos_" not in await hub.nodes[name].run("nft", "list", "tables")
