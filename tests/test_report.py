"""The HTML report from hand-built histories: what a reader must find on the first screen."""

from __future__ import annotations

import re
from pathlib import Path

from harness.checkers import assess
from harness.report import _timeline, render
from tests.support.builder import HistoryBuilder


def results_of(h: HistoryBuilder, checks: dict[str, dict[str, object]]) -> dict[str, object]:
    assessment = assess(h.history(), checks)
    return {
        "scenario": "hand-built",
        "seed": 42,
        "validity": assessment.validity,
        "exit_code": 1,
        "warnings": list(assessment.warnings),
        "checks": [r.to_json() for r in assessment.results],
    }


def deaf_client_history() -> HistoryBuilder:
    """c2 reconnects after a kill of n1 but never joins room:1 again."""
    h = HistoryBuilder()
    h.at(0.0).join("c1", "room:1").join("c2", "room:1").join("p1", "room:1")
    h.at(1.0).publish("p1", "room:1", "p1-1", seq=1)
    h.at(1.02).recv("c1", "room:1", "p1-1", "1").recv("c2", "room:1", "p1-1", "1")
    h.recv("p1", "room:1", "p1-1", "1")
    h.fault("f1", "kill", "n1", start=2.0, stop=3.0)
    h.at(2.0).disconnect("c1").disconnect("c2").disconnect("p1")
    h.at(3.2).join("c1", "room:1", jr="5").join("p1", "room:1", jr="5").connect("c2")
    h.at(12.0).read("room:1", ["p1-1"])
    return h


def lanes(html: str) -> list[str]:
    """The lane labels in the order drawn: `client @node`."""
    return re.findall(r'class="lbl">(\w+) @(\w+)</text>', html)


def test_the_first_screen_has_verdict_reproduce_line_and_the_deaf_client_lane(tmp_path: Path):
    h = deaf_client_history()
    results = results_of(h, {"rejoin": {"within": 5.0}})
    html = render(results, h.history(), tmp_path)
    assert results["validity"] == "invalid"
    assert f"harness run {tmp_path / 'scenario.yaml'} --seed 42" in html
    assert lanes(html) == [("c1", "n1"), ("c2", "n1"), ("p1", "n1")]
    # c2's lane: connected (grey) from the reconnect to the end, never green again
    assert re.search(r'fill="#d0d7de"><title>connected, no channel: 3\.20s to 12\.00s', html)
    assert "rejoin: c2 lost room:1 at 2.000s" in html  # its witness marker
    assert "(top 20 ms)" in html  # p1-1 took 20 ms from publish to the clients
    assert "<script" not in html
    assert "http://" not in html.replace("http://www.w3.org", "")


def test_lanes_are_capped_and_say_how_many_are_hidden(monkeypatch):
    monkeypatch.setattr(_timeline, "MAX_LANES", 2)
    h = deaf_client_history()
    results = results_of(h, {"rejoin": {"within": 5.0}})
    html = render(results, h.history())
    assert "2 of 3 clients shown" in html
    assert [client for client, _ in lanes(html)] == ["c1", "c2"]  # the witness's, then a loss


def test_a_run_that_exercised_nothing_is_not_a_pass_and_says_why():
    h = HistoryBuilder()
    h.at(0.0).join("c1", "room:1")
    h.at(1.0).publish("p1", "room:1", "p1-1", seq=1, outcome="fail")
    h.at(2.0).read("room:1", [])
    results = results_of(h, {"rejoin": {}, "at_most_once": {}, "durability": {}})
    html = render(results, h.history())
    assert results["validity"] == "unknown"
    assert "nothing to judge: no message was delivered to any client" in html
    assert "nothing to judge: no publish was acknowledged" in html
    assert "no fault was injected" in html
    assert ">vacuous<" in html


def test_faults_that_disconnected_nobody_are_flagged():
    h = HistoryBuilder()
    h.at(0.0).join("c1", "room:1")
    h.fault("f1", "down", "clients->n2", start=1.0, stop=2.0)  # nobody was on n2
    h.at(1.5).publish("p1", "room:1", "p1-1", seq=1).recv("c1", "room:1", "p1-1", "1")
    h.at(3.0).read("room:1", ["p1-1"])
    html = render(results_of(h, {"rejoin": {}}), h.history())
    assert "faults ran (down) but no client lost its connection" in html
    assert "no fault was injected" not in html


def test_a_clean_run_with_faults_and_losses_has_no_warnings():
    h = deaf_client_history()
    h.at(3.3).join("c2", "room:1", jr="6")
    h.at(4.0).publish("p1", "room:1", "p1-2", seq=2)
    h.at(4.02).recv("c1", "room:1", "p1-2", "5").recv("c2", "room:1", "p1-2", "6")
    h.recv("p1", "room:1", "p1-2", "5")
    h.at(12.0).read("room:1", ["p1-1", "p1-2"])
    results = results_of(h, {"rejoin": {"within": 5.0}, "delivery": {}, "durability": {}})
    html = render(results, h.history())
    assert results["validity"] == "valid", results
    assert 'class="warn"' not in html
