"""The report from hand-built histories: the view model holds what a reader must find (tested
here, mark by mark), and the page prints it escaped, with no script and within its size bound."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from harness.checkers import assess
from harness.report import _timeline, render, view
from harness.report._svg import Chart
from harness.run.rundir import write_history, write_report
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
        "distress": [d.to_json() for d in assessment.distress],
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


def texts(chart: Chart) -> list[str]:
    return [m.text for m in chart.marks if m.text]


def titles(chart: Chart) -> list[str]:
    return [m.title for m in chart.marks if m.title]


def lanes(chart: Chart) -> list[str]:
    return [t for t in texts(chart) if " @" in t]


def by_key(report, key: str) -> Chart:
    return next(c for c in (*report.charts, report.timeline, report.messages) if c.key == key)


def test_the_first_screen_has_verdict_reproduce_line_and_the_deaf_client_lane(tmp_path: Path):
    h = deaf_client_history()
    results = results_of(h, {"rejoin": {"within": 5.0}})
    report = view(results, h.history(), tmp_path)
    assert results["validity"] == "invalid"
    assert report.reproduce == f"harness run {tmp_path / 'scenario.yaml'} --seed 42"
    assert report.headlines
    assert report.headlines[0].check == "rejoin"
    assert report.headlines[0].anchor == "w-rejoin"
    assert lanes(report.timeline) == ["c1 @n1", "c2 @n1", "p1 @n1"]
    # c2's lane: connected (grey) from the reconnect to the end, never green again
    assert "connected, no channel: 3.20 s to 12.00 s" in titles(report.timeline)
    assert any(t.startswith("rejoin: c2 lost room:1 at 2.000s") for t in titles(report.timeline))
    assert "(top 20 ms)" in texts(report.timeline)  # p1-1 took 20 ms from publish to clients
    html = render(results, h.history(), tmp_path)
    assert "<script" not in html
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert "rejoin: c2 lost room:1" in html


def test_lanes_are_capped_and_say_how_many_are_hidden(monkeypatch):
    monkeypatch.setattr(_timeline, "MAX_LANES", 2)
    h = deaf_client_history()
    report = view(results_of(h, {"rejoin": {"within": 5.0}}), h.history())
    assert any("2 of 3 clients shown" in t for t in texts(report.timeline))
    assert [lane.split()[0] for lane in lanes(report.timeline)] == ["c1", "c2"]


def test_a_reconnect_to_another_node_shows_on_the_lane():
    h = HistoryBuilder()
    h.at(0.0).join("c1", "room:1", node="n1")
    h.fault("f1", "kill", "n1", start=1.0, stop=2.0)
    h.at(1.0).disconnect("c1")
    h.at(1.5).join("c1", "room:1", jr="3", node="n2")
    h.at(4.0).read("room:1", [])
    report = view(results_of(h, {"rejoin": {}}), h.history())
    assert lanes(report.timeline) == ["c1 @n1→n2"]
    assert "c1 reconnected to n2 at 1.50 s" in titles(report.timeline)


def test_phase_labels_never_overlap():
    h = HistoryBuilder()
    for i, phase in enumerate(["setup", "connect", "workload", "heal", "settle", "read"]):
        h.at(0.01 * i).op("runner", "info", "phase", None, phase=phase)
    h.at(10.0).join("c1", "room:1")
    chart = view(results_of(h, {}), h.history()).timeline
    labels = [m for m in chart.marks if m.shape == "text" and dict(m.attrs).get("class") == "ph"]
    spots = [(float(dict(m.attrs)["x"]), float(dict(m.attrs)["y"]), len(m.text)) for m in labels]
    assert len(spots) == 6
    for i, (x1, y1, n1) in enumerate(spots):
        for x2, y2, _ in spots[i + 1 :]:
            assert y1 != y2 or abs(x2 - x1) > n1 * _timeline.CHAR, (spots, i)


def chart_history() -> HistoryBuilder:
    """Steady deliveries, a kill with slow deliveries and rejoins, a timed-out publish."""
    h = HistoryBuilder()
    h.at(0.0).join("c1", "room:1", node="n1").join("c2", "room:1", node="n2")
    for i in range(10):
        h.at(0.1 * i).publish("p1", "room:1", f"s{i}", seq=i, took=0.005)
        h.recv("c1", "room:1", f"s{i}", "1", node="n1").recv("c2", "room:1", f"s{i}", "1", "n2")
    h.fault("f1", "kill", "n2", start=2.0, stop=3.0)
    h.at(2.0).disconnect("c2")
    h.at(2.1).publish("p1", "room:1", "late", seq=10, took=0.4)
    h.at(2.9).recv("c1", "room:1", "late", "1", node="n1")
    h.at(3.5).join("c2", "room:1", jr="4", node="n2")
    h.at(4.0).publish("p1", "room:1", "lost", seq=11, outcome="info", took=1.0)
    h.at(4.5).load("swarm0", lag=0.01).at(5.5).load("swarm0", lag=0.02)
    h.at(8.0).read("room:1", [f"s{i}" for i in range(10)] + ["late"])
    return h


def test_the_charts_have_axes_units_tooltips_and_their_figures():
    h = chart_history()
    report = view(results_of(h, {"rejoin": {}}), h.history())
    latency = by_key(report, "latency")
    assert not latency.empty
    legend = [item.text for item in latency.legend]
    assert legend[0].startswith("steady: 20 deliveries")
    assert legend[1].startswith("faults: 1 deliveries, p50 800.0 ms")  # "late": 0.8 s
    assert "latency, publish to delivery (ms, log)" in texts(latency)
    rejoin = by_key(report, "rejoin")
    assert rejoin.caption.startswith("1 rejoins: p50 1.50 s")
    publishes = by_key(report, "publishes")
    assert [item.text for item in publishes.legend] == ["acknowledged (11)", "timed out (1)"]
    nodes = by_key(report, "nodes")
    assert [t for t in texts(nodes) if t in ("n1", "n2")] == ["n1", "n2"]  # a panel each
    assert any(t.startswith("n2: channels joined (max 1)") for t in titles(nodes))
    # small multiples: each node's lines in a band of their own (two nodes carrying the same
    # clients drew one line over the other on a single plot)
    bands = {}
    for m in nodes.marks:
        if m.shape == "polyline":
            ys = [float(p.split(",")[1]) for p in dict(m.attrs)["points"].split()]
            node = m.title.split(":")[0]
            low, high = bands.get(node, (min(ys), max(ys)))
            bands[node] = (min(low, *ys), max(high, *ys))
    (a_low, a_high), (b_low, b_high) = bands["n1"], bands["n2"]
    assert a_high < b_low or b_high < a_low, bands
    distress = by_key(report, "distress")
    assert "no distress: the load generator kept up" in distress.caption
    for chart in (latency, rejoin, publishes, nodes, distress):
        assert chart.marks
        assert all(m.title for m in chart.marks if m.shape in ("rect", "circle", "polyline"))


def test_charts_with_nothing_to_draw_say_why():
    h = HistoryBuilder()
    h.at(0.0).join("c1", "room:1")
    report = view(results_of(h, {}), h.history())
    assert by_key(report, "latency").empty == "no delivery to draw"
    assert by_key(report, "publishes").empty == "nothing was published"
    assert by_key(report, "rejoin").empty.startswith("no channel was lost")
    assert "no trace" in by_key(report, "messages").empty
    assert "no trace: the server was not run with `--trace`" in render(
        results_of(h, {}), h.history()
    ).replace("&#39;", "'").replace("&lt;", "<")


def test_the_drill_down_shows_a_witnessed_clients_own_events():
    h = deaf_client_history()
    report = view(results_of(h, {"rejoin": {"within": 5.0}}), h.history())
    (c2,) = report.drill
    assert c2.client == "c2"
    assert (c2.check, c2.anchor) == ("rejoin", "w-rejoin")
    assert c2.witness.startswith("c2 lost room:1")
    ops = [(row.type, row.f) for row in c2.rows]
    assert ("info", "disconnect") in ops
    assert ("ok", "connect") in ops
    assert sum(row.at_witness for row in c2.rows) == 1


def test_the_drill_down_of_a_duplicate_spans_both_deliveries_and_names_the_sentences_clients():
    """c10 is witnessed first, but the sentence names c2, c3, c10 in that order, and so does the
    drill-down; each table spans the first delivery (long before) and the second, marks both,
    and says a reconnect loop of 12 failed attempts in one row."""
    h = HistoryBuilder()
    h.at(0.0)
    for c in ("c2", "c3", "c10", "p1"):
        h.join(c, "room:1")
    h.at(0.1).publish("p1", "room:1", "m1", seq=1)
    for c in ("c2", "c3", "c10", "p1"):
        h.recv(c, "room:1", "m1", "1")
    for i in range(2, 60):  # traffic between the two deliveries
        h.at(0.1 + i * 0.05).publish("p1", "room:1", f"m{i}", seq=i)
        for c in ("c2", "c3", "c10", "p1"):
            h.recv(c, "room:1", f"m{i}", "1")
    h.at(3.2).disconnect("c2").disconnect("c3").disconnect("c10")
    for i in range(12):
        h.at(3.3 + i * 0.1).connect("c2", ok=False).connect("c3", ok=False)
    h.at(4.6).join("c10", "room:1", jr="2").recv("c10", "room:1", "m1", "2")
    h.at(4.7).join("c2", "room:1", jr="2").join("c3", "room:1", jr="2")
    h.recv("c2", "room:1", "m1", "2").recv("c3", "room:1", "m1", "2")
    h.at(9.0).read("room:1", ["m1", *(f"m{i}" for i in range(2, 60))])
    results = results_of(h, {"at_most_once": {}})
    (check,) = results["checks"]
    assert next(w["client"] for w in check["witnesses"]) == "c10"  # witnessed first
    report = view(results, h.history())
    assert "(c2, c3, c10)" in report.headlines[0].sentence
    assert [d.client for d in report.drill] == ["c2", "c3", "c10"]
    c2 = report.drill[0]
    assert c2.start < 0.11 < 4.7 < c2.end
    marked = [row for row in c2.rows if row.at_witness]
    assert [(row.time, "id=m1" in row.detail) for row in marked] == [(0.11, True), (4.7, True)]
    (loop,) = [row for row in c2.rows if row.repeats > 1]
    assert loop.repeats == 12
    assert loop.detail.startswith("12 attempts failed until 4.400 s")
    assert not any(
        row.f == "connect" and row.type == "fail" and row.repeats == 1 for row in c2.rows
    )
    gaps = [row for row in c2.rows if row.gap]
    assert gaps
    assert sum(row.gap for row in gaps) == c2.hidden
    assert [(d.open, d.anchor) for d in report.drill] == [(True, "w-at_most_once")] * 3


def traced(lines: list[tuple[float, str, str, str, str]]) -> dict[str, list[dict[str, object]]]:
    """Trace lines (t, node, dir, peer, id) on a clock whose origin is 1000 s."""
    return {
        "t.trace.jsonl": [
            {"t": 1000.0 + t, "node": node, "dir": d, "peer": peer, "topic": "room:1", "id": mid}
            | ({"from": peer} if d == "recv" else {})
            for t, node, d, peer, mid in lines
        ]
    }


def test_the_message_diagram_shows_a_lost_and_a_doubled_broadcast():
    h = HistoryBuilder()
    h.at(0.0).op("runner", "info", "setup", None, clock_origin=1000.0)
    h.join("c1", "room:1", node="n1").join("c2", "room:1", node="n2")
    h.at(1.0).publish("p1", "room:1", "m1", seq=1).recv("c1", "room:1", "m1", "1")
    h.recv("c2", "room:1", "m1", "1", node="n2").at(1.1).recv("c2", "room:1", "m1", "1", "n2")
    h.at(1.2).publish("p1", "room:1", "m2", seq=2).recv("c1", "room:1", "m2", "1")
    h.at(3.0).read("room:1", ["m1", "m2"])
    traces = traced(
        [
            (1.0, "n1", "send", "n2", "m1"),
            (1.01, "n2", "recv", "n1", "m1"),
            (1.09, "n1", "send", "n2", "m1"),  # a resend
            (1.1, "n2", "recv", "n1", "m1"),
            (1.2, "n1", "send", "n2", "m2"),  # never arrives
            (1.3, "n1", "drop", "n2", "m3"),
        ]
    )
    results = results_of(h, {"at_most_once": {}})
    assert results["validity"] == "invalid"
    chart = view(results, h.history(), None, traces).messages
    assert not chart.empty
    shown = titles(chart)
    assert sum("m1 on room:1: n1→n2" in t for t in shown) == 2  # the send and the resend
    assert any("m1" in t and "one of 2 receipts" in t for t in shown)
    assert any(t.startswith("m2 on room:1: n1→n2 at 1.200 s: never received") for t in shown)
    assert any("m3" in t and "dropped at the sender" in t for t in shown)
    assert "m1 in red" in chart.caption


def test_a_rendered_run_directory_places_trace_lines_on_the_scenario_clock(tmp_path: Path):
    """The history file is on the run's clock (set-up first) and the trace lines on the
    monotonic clock: m1, sent 0.5 s into the workload, is drawn at 0.5 s, not 0.5 s plus the
    set-up (a report once drew the traffic of a fault window as if it were the violation's)."""
    h = HistoryBuilder()
    h.at(0.0).op("runner", "info", "setup", None, clock_origin=1000.0)
    h.at(1.27).op("runner", "info", "phase", None, phase="workload")
    h.join("c1", "room:1", node="n1").join("c2", "room:1", node="n2")
    h.at(1.77).publish("p1", "room:1", "m1", seq=1).recv("c1", "room:1", "m1", "1")
    h.recv("c2", "room:1", "m1", "1", node="n2").at(1.8).recv("c2", "room:1", "m1", "1", "n2")
    h.at(3.0).read("room:1", ["m1"])
    write_history(tmp_path / "history.jsonl", h.history())
    results = results_of(h, {"at_most_once": {}})
    (tmp_path / "results.json").write_text(json.dumps(results))
    (tmp_path / "logs").mkdir()
    lines = traced([(1.77, "n1", "send", "n2", "m1"), (1.771, "n2", "recv", "n1", "m1")])
    (tmp_path / "logs" / "n1.trace.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines["t.trace.jsonl"])
    )
    page = write_report(tmp_path).read_text()
    assert "m1 on room:1: n1→n2 at 0.500 s, received at 0.501 s" in page


def test_a_run_that_exercised_nothing_is_not_a_pass_and_says_why():
    h = HistoryBuilder()
    h.at(0.0).join("c1", "room:1")
    h.at(1.0).publish("p1", "room:1", "p1-1", seq=1, outcome="fail")
    h.at(2.0).read("room:1", [])
    results = results_of(h, {"rejoin": {}, "at_most_once": {}, "durability": {}})
    report = view(results, h.history())
    assert results["validity"] == "unknown"
    errors = [c.error for c in report.checks]
    assert "nothing to judge: no message was delivered to any client" in errors
    assert "nothing to judge: no publish was acknowledged" in errors
    assert any("no fault was injected" in w for w in report.warnings)
    assert "vacuous" in [c.label for c in report.checks]


def test_faults_that_disconnected_nobody_are_flagged():
    h = HistoryBuilder()
    h.at(0.0).join("c1", "room:1")
    h.fault("f1", "down", "clients->n2", start=1.0, stop=2.0)  # nobody was on n2
    h.at(1.5).publish("p1", "room:1", "p1-1", seq=1).recv("c1", "room:1", "p1-1", "1")
    h.at(3.0).read("room:1", ["p1-1"])
    report = view(results_of(h, {"rejoin": {}}), h.history())
    assert any("faults ran (down) but no client lost its connection" in w for w in report.warnings)
    assert not any("no fault was injected" in w for w in report.warnings)


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


def test_everything_a_run_says_is_escaped():
    h = deaf_client_history()
    results = results_of(h, {"rejoin": {"within": 5.0}})
    results["scenario"] = "<script>alert(1)</script>"
    results["checks"][0]["witnesses"][0]["problem"] = '<img src=x onerror="alert(1)">'
    html = render(results, h.history())
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html


@pytest.mark.slow
def test_a_60s_run_of_1000_clients_stays_under_5_mb():
    h = HistoryBuilder()
    clients = [f"c{i}" for i in range(1000)]
    for i, c in enumerate(clients):
        h.at(0.001 * i).join(c, "room:1", node=f"n{i % 3 + 1}")
    h.fault("f1", "kill", "n2", start=20.0, stop=22.0)
    for k in range(600):  # 10 messages a second for 60 s, each to every client
        t = 1.0 + k * 0.1
        h.at(t).publish("p1", "room:1", f"m{k}", seq=k, took=0.002)
        for i, c in enumerate(clients):
            h.at(t + 0.003 + 0.00001 * i).recv(c, "room:1", f"m{k}", "1", node=f"n{i % 3 + 1}")
    for c in clients[1::3]:
        h.at(20.0).disconnect(c)
        h.at(23.0).join(c, "room:1", jr="9", node="n2")
    h.at(62.0).read("room:1", [f"m{k}" for k in range(600)])
    ops = h.history()
    results = results_of(h, {"rejoin": {}, "at_most_once": {}, "delivery": {}})
    started = time.monotonic()
    html = render(results, ops)
    took = time.monotonic() - started
    assert len(ops) > 600_000
    assert len(html.encode()) < 5_000_000, len(html)
    assert took < 120  # a sanity bound for a hang, not a performance goal (see bench/)


def test_an_overloaded_run_points_at_the_load_generator_not_the_server():
    h = HistoryBuilder()
    h.at(0.0).join("c1", "room:1").join("c2", "room:1")
    for i in range(40):  # c2 misses every message while the harness's loop is 1.5 s behind
        h.at(1.0 + 0.1 * i).publish("p1", "room:1", f"m{i}", seq=i, took=0.5)
        h.recv("c1", "room:1", f"m{i}", "1")
    for t in range(1, 8):
        h.at(float(t)).load("swarm0", lag=1.5, publish_lag=2.0)
    h.at(9.0).read("room:1", [f"m{i}" for i in range(40)])
    results = results_of(h, {"rejoin": {}, "delivery": {}, "availability": {}})
    report = view(results, h.history())
    assert results["validity"] == "unknown"
    assert len(report.headlines) == 3, report.headlines
    assert all("load generator" in h.sentence for h in report.headlines), report.headlines
    assert "swarm0" in by_key(report, "distress").caption + " ".join(
        item.text for item in by_key(report, "distress").legend
    )
    assert "distress window(s) shaded" in by_key(report, "distress").caption
