"""A fault that did nothing is never silent. Every link fault records what crossed its links
(Toxiproxy's byte counters, `link_bytes`); one whose links never carried a byte cut nothing,
and the run says so in its warnings and lets its window excuse no delivery. End to end: the
reference server on Redis PubSub, started by a command that dials a Redis of the test's own
instead of `{pubsub}` (the mistake of an app that does not read the URL the harness gives it):
`down n1->redis` goes through a proxy nobody uses."""

from __future__ import annotations

import json
from pathlib import Path

from harness.run.runner import RunOptions, run_scenario
from harness.scenario import parse_scenario

ZOO = Path(__file__).resolve().parent.parent / "scenarios" / "zoo"
SCENARIO = """\
name: bypass
duration: 4s
settle: 1s
cluster:
  nodes: 2
  pubsub: redis
  command: "{python} -m server_under_test --node {node} --host {host} --port {port} --pubsub redis://%(redis)s --store {store} --log-level WARNING"
clients:
  count: 4
  topics: ["room:1"]
  timings: {reconnect_after: [10ms, 50ms], rejoin_after: [100ms, 200ms], heartbeat_interval: 1s, timeout: 3s}
workload: {publishers: 2, rate: 20/s}
faults:
  - {at: 1s, for: 1500ms, kind: down, link: n1->redis}
"""


async def test_a_link_fault_on_links_nobody_uses_cut_nothing_and_says_so(tmp_path, redis_server):
    text = SCENARIO % {"redis": redis_server.address}
    result = await run_scenario(parse_scenario(text, "bypass.yaml"), RunOptions(out=tmp_path))
    assert result.error is None, result.error
    stops = [
        json.loads(line)
        for line in (result.run_dir / "history.jsonl").read_text().splitlines()
        if '"f":"fault"' in line and '"type":"ok"' in line
    ]
    assert [s["value"]["figures"]["link_bytes"] for s in stops] == [0]
    said = [w for w in result.concluded.warnings if w.startswith("f1 `down n1->redis` cut nothing")]
    assert said, result.concluded.warnings
    assert "its window excuses no delivery" in said[0]
    results = json.loads((result.run_dir / "results.json").read_text())
    assert any("cut nothing" in w for w in results["warnings"])


async def test_a_link_fault_on_links_in_use_records_what_crossed_them(tmp_path):
    result = await run_scenario(
        parse_scenario((ZOO / "redis.yaml").read_text(), "redis.yaml"), RunOptions(out=tmp_path)
    )
    assert result.error is None, result.error
    stops = [
        json.loads(line)
        for line in (result.run_dir / "history.jsonl").read_text().splitlines()
        if '"f":"fault"' in line and '"type":"ok"' in line and "n1->redis" in line
    ]
    assert stops[0]["value"]["figures"]["link_bytes"] > 0
    assert not [w for w in result.concluded.warnings if "cut nothing" in w]


LATENCY = """\
name: slow-clients
duration: 4s
settle: 1s
cluster: {nodes: 2}
clients:
  count: 4
  topics: ["room:1"]
workload: {publishers: 1, rate: 20/s}
faults:
  - {at: 1s, for: 1500ms, kind: latency, link: clients->n1, latency: 50ms}
"""


async def test_a_latency_on_client_links_whose_connections_stay_open_did_something(tmp_path):
    """Toxiproxy adds a connection's bytes to its counters only when it closes: through a
    latency the clients' sockets stay open, so the counters say 0 bytes at the fault's end.
    The connections its proxy accepted (its log) say traffic crossed: no "cut nothing"."""
    result = await run_scenario(parse_scenario(LATENCY, "slow.yaml"), RunOptions(out=tmp_path))
    assert result.error is None, result.error
    (stop,) = [
        json.loads(line)
        for line in (result.run_dir / "history.jsonl").read_text().splitlines()
        if '"f":"fault"' in line and '"type":"ok"' in line
    ]
    figures = stop["value"]["figures"]
    assert figures["link_bytes"] > 0 or figures["link_connections"] >= 2, figures
    assert not [w for w in result.concluded.warnings if "cut nothing" in w]
