"""Harness distress on hand-built histories: when the load generator (or the box) fell behind,
timing verdicts become unknown with the reason, never invalid; safety verdicts stand; a server
that fails on an idle, keeping-up harness is still invalid."""

from __future__ import annotations

from harness.checkers import assess, facts_of
from harness.checkers._distress import LAG_LIMIT, distress_of, explain
from harness.history import Op
from tests.support.builder import HistoryBuilder


def lossy(lag: float, machine: dict[str, float] | None = None) -> HistoryBuilder:
    """c2 misses p1-2 (published at 5 s, no fault); the gauge reports `lag` over 4-6 s."""
    h = HistoryBuilder()
    h.at(0.0).join("c1", "room:1").join("c2", "room:1").join("p1", "room:1")
    h.op("runner", "info", "phase", None, phase="workload")  # the scenario's clock starts here
    for t in range(1, 21):
        behind = lag if t in (5, 6) else 0.004
        h.at(float(t)).load("swarm0", lag=behind, **(machine or {}))
    h.at(1.0).publish("p1", "room:1", "p1-1", seq=1).recv("c1", "room:1", "p1-1", "1")
    h.recv("c2", "room:1", "p1-1", "1").recv("p1", "room:1", "p1-1", "1")
    h.at(5.0).publish("p1", "room:1", "p1-2", seq=2).recv("c1", "room:1", "p1-2", "1")
    h.recv("p1", "room:1", "p1-2", "1")
    h.at(10.0).publish("p1", "room:1", "p1-3", seq=3).recv("c1", "room:1", "p1-3", "1")
    h.recv("c2", "room:1", "p1-3", "1").recv("p1", "room:1", "p1-3", "1")
    h.at(20.0).read("room:1", ["p1-1", "p1-2", "p1-3"])
    return h


CHECKS = {"delivery": {"settle": 1.0}, "at_most_once": {}, "durability": {}}


def by_name(h: HistoryBuilder, checks=CHECKS):
    assessment = assess(h.history(), checks)
    return assessment, {r.name: r for r in assessment.results}


def test_a_loss_while_the_harness_kept_up_is_invalid():
    assessment, results = by_name(lossy(lag=0.01))
    assert assessment.distress == ()
    assert results["delivery"].validity == "invalid"


def test_a_loss_inside_loop_lag_is_unknown_with_the_reason():
    assessment, results = by_name(lossy(lag=2.3))
    (window,) = assessment.distress
    assert (window.start, window.end) == (4.0, 6.0)
    assert "fell 2.3 s behind between 4.0 s and 6.0 s" in window.reason
    assert "raise `clients.workers`" in window.reason
    delivery = results["delivery"]
    assert delivery.validity == "unknown"
    assert not delivery.vacuous
    assert "every violation (1) fell where the harness could not judge" in (delivery.error or "")
    assert results["at_most_once"].validity == "valid"  # safety does not depend on timing
    assert any("harness distress 4.0-6.0 s" in w for w in assessment.warnings)


def test_a_loss_outside_the_distress_window_stays_invalid():
    h = lossy(lag=2.3)
    h.at(15.0).publish("p1", "room:1", "p1-4", seq=4).recv("c1", "room:1", "p1-4", "1")
    h.recv("p1", "room:1", "p1-4", "1")
    h.at(20.0).read("room:1", ["p1-1", "p1-2", "p1-3", "p1-4"])
    _, results = by_name(h)
    delivery = results["delivery"]
    assert delivery.validity == "invalid"
    assert delivery.summary["violations_in_distress"] == 1
    assert delivery.witnesses[0].evidence["id"] == "p1-4"  # the one that counts comes first


def test_lag_just_under_the_limit_is_not_distress():
    _, results = by_name(lossy(lag=LAG_LIMIT * 0.9))
    assert results["delivery"].validity == "invalid"


def test_cpu_pressure_alone_is_not_distress_but_with_timeouts_outside_faults_it_is():
    busy = {"cpu_busy": 1.0, "cpu_stall": 0.9}
    assessment, results = by_name(lossy(lag=0.01, machine=busy))
    assert assessment.distress == ()  # a saturated box where nothing timed out: judge normally
    assert results["delivery"].validity == "invalid"
    h = lossy(lag=0.01, machine=busy)
    h.at(5.5).op("c2", "info", "heartbeat_timeout", "n1", ref="7")
    assessment, results = by_name(h)
    assert assessment.distress, "a heartbeat timeout on a saturated box, no fault active"
    assert "1 heartbeats timed out with no fault active" in assessment.distress[0].reason
    assert results["delivery"].validity == "unknown"


def test_timeouts_during_a_fault_are_not_symptoms_of_distress():
    h = lossy(lag=0.01, machine={"cpu_busy": 1.0, "cpu_stall": 0.9})
    h.fault("f1", "partition", "n1", start=12.0, stop=14.0)
    h.at(13.0).op("c2", "info", "heartbeat_timeout", "n1", ref="7")
    assert distress_of(facts_of(h.history())) == ()


def test_a_pass_over_a_workload_mostly_in_distress_is_unknown():
    h = HistoryBuilder()
    h.at(0.0).join("c1", "room:1").join("p1", "room:1")
    h.at(0.5).op("runner", "info", "phase", None, phase="workload")
    for t in range(1, 11):
        h.at(float(t)).load("swarm0", lag=1.5)
    h.at(2.0).publish("p1", "room:1", "p1-1", seq=1).recv("c1", "room:1", "p1-1", "1")
    h.recv("p1", "room:1", "p1-1", "1")
    h.at(10.0).read("room:1", ["p1-1"])
    _, results = by_name(h)
    delivery = results["delivery"]
    assert delivery.validity == "unknown"
    assert "so a pass means little" in (delivery.error or "")
    assert results["at_most_once"].validity == "valid"


def test_a_run_that_failed_in_set_up_is_explained_by_its_distress():
    """Clients that did not all join in time while the load generator lagged: the error says so."""
    h = HistoryBuilder()
    h.at(0.0).op("runner", "info", "phase", None, phase="setup")
    for t in range(1, 6):
        h.at(float(t)).load("swarm0", lag=1.2)
    assert "meanwhile the harness was in distress: the load generator (swarm0) fell 1.2 s" in (
        explain(h.history()) or ""
    )
    calm = HistoryBuilder()
    calm.at(1.0).load("swarm0", lag=0.01)
    assert explain(calm.history()) is None


def test_a_toxiproxy_out_of_descriptors_makes_timing_unknown_and_a_node_only_a_warning():
    """Read from the logs after the run (`exhausted`, recorded after teardown): the harness's own
    Toxiproxy running out is distress over the whole run, with its cause as the advice; a node
    (the server under test) running out is the server's, a warning only."""
    h = lossy(lag=0.01)
    h.at(21.0).op("runner", "info", "phase", None, phase="teardown")
    h.ops.append(
        Op(
            21.0,
            "runner",
            "info",
            "exhausted",
            {"process": "n1", "log": "logs/n1.log", "errors": 3},
        )
    )
    assessment, results = by_name(h)
    assert assessment.distress == ()
    assert results["delivery"].validity == "invalid"
    assert "n1 ran out of file descriptors: logs/n1.log says so 3 times" in assessment.warnings
    mine = {"process": "toxiproxy.n2", "log": "logs/x.log", "errors": 7}
    h.ops.append(Op(21.0, "runner", "info", "exhausted", mine))
    assessment, results = by_name(h)
    (window,) = assessment.distress
    assert window.reason.startswith("toxiproxy.n2 ran out of file descriptors (7 times in logs/")
    assert "lower `clients.count` or `workload.rate`" not in window.reason
    assert results["delivery"].validity == "unknown"
    assert results["at_most_once"].validity == "valid"
