"""Judging any server right: the cluster is ready when the app says so (`harness.run.probe`).

A server whose PubSub links come up after it answers health (the reference server's
`--link-delay`, with its `/stats` off, like a real Phoenix endpoint clustered by libcluster):
valid with the readiness probe; the same run without it judges the first messages lost (the
false alarm the probe prevents). A server that never forms its cluster: exit 3 naming the pair,
fast. A node that re-forms slowly after a restart: the re-formation time is measured and named
in `delivery`'s sentence.
"""

from __future__ import annotations

import json
import time

import pytest

from harness.checkers import headline
from harness.run.probe import Formation, probe_topic
from harness.run.runner import RunOptions, run_scenario
from harness.scenario import parse_scenario
from tests.support.vocabulary import assert_vocabulary

# the reference server as "your own" server: no /stats, links dialled late
LATE = (
    "{python} -m server_under_test --node {node} --host {host} --port {port} {pubsub_args}"
    " --store {store} --cluster-secret {cluster_secret} {bug_args} --no-stats --link-delay %s"
)
SCENARIO = """\
name: late-links
duration: 7s
settle: %(settle)s
cluster:
  nodes: 3
  command: "%(command)s"
  ready: %(ready)s
clients:
  count: 6
  topics: ["room:1"]
  timings:
    reconnect_after: [10ms, 50ms, 100ms, 200ms]
    rejoin_after: [100ms, 200ms, 500ms]
    heartbeat_interval: 1s
    timeout: 3s
workload: {publishers: 3, rate: 30/s}
faults:
  - {at: 2s, kind: kill, node: n2, restart_after: 500ms}
checks:
  delivery: {settle: %(settle)s}
"""


def scenario(delay: float, ready: str = "{}", settle: str = "3s"):
    text = SCENARIO % {"command": LATE % delay, "ready": ready, "settle": settle}
    return parse_scenario(text, "late-links.yaml")


def by_name(result):
    return {r.name: r for r in result.results}


@pytest.mark.slow
async def test_links_that_come_up_late_are_waited_for_and_without_the_probe_are_a_false_alarm(
    tmp_path,
):
    late = 1.5
    probed = await run_scenario(scenario(late), RunOptions(out=tmp_path / "probe", seed=1))
    assert probed.outcome == "valid", probed.explain()
    assert_vocabulary(probed.run_dir / "history.jsonl")
    results = (probed.run_dir / "results.json").read_text()
    assert '"formation"' in results
    blind = await run_scenario(
        scenario(late, "{probe: off}"), RunOptions(out=tmp_path / "blind", seed=1)
    )
    assert blind.outcome == "invalid", blind.explain()
    delivery = by_name(blind)["delivery"]
    assert delivery.validity == "invalid"
    assert "formation" not in (blind.run_dir / "results.json").read_text().replace(
        '"formation": null', ""
    )
    # the first messages were lost: published before the links were up, before the kill
    first = min(w.time for w in delivery.witnesses)
    assert first < late, [w.problem for w in delivery.witnesses[:3]]


@pytest.mark.slow
async def test_a_cluster_that_never_forms_is_exit_3_naming_the_pair(tmp_path):
    started = time.monotonic()
    result = await run_scenario(scenario(600, "{timeout: 3s}"), RunOptions(out=tmp_path, seed=1))
    assert result.exit_code == 3
    assert result.error is not None
    assert "the cluster did not form" in result.error
    assert "never received n" in result.error
    assert "acknowledged it" in result.error
    assert time.monotonic() - started < 40


@pytest.mark.slow
async def test_a_slow_reformation_is_measured_and_named(tmp_path):
    result = await run_scenario(scenario(1.5, settle="500ms"), RunOptions(out=tmp_path, seed=1))
    delivery = by_name(result)["delivery"]
    assert delivery.validity == "invalid", result.explain()
    sentence = headline(delivery)
    assert "the cluster took to re-form after `kill n2` (settle is 0.5 s)" in sentence, sentence
    assert "published in the 1." in sentence, sentence
    formation = json.loads((result.run_dir / "results.json").read_text())["formation"]
    (reformed,) = formation["reformations"]
    assert reformed["after"] == "kill n2"
    assert reformed["seconds"] >= 1.4
    assert formation["formed"]["seconds"] >= 1.4  # the first formation waited for the links too


def test_the_probe_topic_is_the_run_s_own_beside_the_first_topic():
    assert probe_topic(None, ("room:1", "room:2"), "r1a2b3c") == "room:probe-r1a2b3c"
    assert probe_topic(None, ("chat:lobby:1",), "r9") == "chat:lobby:probe-r9"
    assert probe_topic(None, ("lobby",), "r9") == "probe-r9"
    assert probe_topic("room:ready-{run}", ("room:1",), "r9") == "room:ready-r9"


def test_a_formation_names_the_pairs_that_never_got_through():
    pairs = {"n1->n1": 0.01, "n1->n2": None, "n2->n1": 0.02, "n2->n2": 0.01}
    formation = Formation(
        "formed",
        0.0,
        30.0,
        pairs,
        acknowledged={"n1": True, "n2": True},
        joined={"n1": True, "n2": True},
    )
    assert not formation.complete
    assert formation.missing == ["n1->n2"]
    assert formation.explain() == "n2 never received n1's probe within 30 s; n1 acknowledged it"
    unjoined = Formation("formed", 0.0, 5.0, pairs, joined={"n1": True, "n2": False})
    assert unjoined.explain() == "n2's probe client never joined within 5 s"
    whole = Formation("reformed", 1.0, 5.0, {"n1->n2": 0.3, "n2->n1": 0.5})
    assert whole.complete
    assert whole.seconds == 0.5


@pytest.mark.parametrize(
    ("ready", "probing"),
    [("{}", True), ("{probe: off}", False), ("{probe: false}", False), ("{probe: on}", True)],
)
def test_the_probe_is_on_unless_turned_off(ready, probing):
    text = f"name: x\nduration: 3s\ncluster: {{ready: {ready}}}\n"
    assert (parse_scenario(text).cluster.ready.probing is not None) == probing
