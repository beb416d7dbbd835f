"""Every checker on small hand-built histories: one valid, one or more invalid per anomaly."""

from __future__ import annotations

import pytest

from harness.checkers import CHECKERS, check_all, facts_of
from tests.support.builder import HistoryBuilder


def run(name, h, **options):
    return CHECKERS[name](facts_of(h.history()), options)


def base() -> HistoryBuilder:
    """Two clients joined to room:1, two messages published one after the other (the first
    acknowledged before the second was sent) and received by both, in order."""
    h = HistoryBuilder()
    h.at(0.0).join("c1", "room:1").join("c2", "room:1").join("p1", "room:1")
    h.at(1.0).publish("p1", "room:1", "p1-1", seq=1)
    h.at(1.02).recv("c1", "room:1", "p1-1", "1").recv("c2", "room:1", "p1-1", "1").recv(
        "p1", "room:1", "p1-1", "1"
    )
    h.at(1.5).publish("p1", "room:1", "p1-x")
    h.at(1.52).recv("c1", "room:1", "p1-x", "1").recv("c2", "room:1", "p1-x", "1").recv(
        "p1", "room:1", "p1-x", "1"
    )
    h.at(2.0).read("room:1", ["p1-1", "p1-x"])
    return h


@pytest.mark.parametrize(
    "name",
    [
        "at_most_once",
        "no_phantom",
        "order",
        "delivery",
        "rejoin",
        "durability",
        "latency",
        "availability",
    ],
)
def test_a_clean_history_is_valid_for_every_checker(name):
    assert run(name, base()).validity == "valid"


def test_at_most_once_catches_a_duplicate_across_joins():
    h = base()
    h.at(1.5).disconnect("c1").at(1.6).join("c1", "room:1", jr="5").recv(
        "c1", "room:1", "p1-1", "5"
    )
    result = run("at_most_once", h)
    assert result.validity == "invalid"
    (w,) = [x.to_json() for x in result.witnesses]
    assert (w["client"], w["id"]) == ("c1", "p1-1")
    assert w["join_refs"] == ["1", "5"]
    assert len(w["deliveries"]) == 2


def test_no_phantom_catches_unpublished_wrong_topic_and_unjoined_topic():
    h = base()
    h.at(1.1).recv("c1", "room:1", "ghost", "1")
    h.at(1.2).publish("p1", "room:2", "p1-2", seq=2).recv("c2", "room:1", "p1-2", "1")
    h.at(1.3).recv("c2", "room:2", "p1-2", "1")
    result = run("no_phantom", h)
    problems = [w["problem"] for w in (x.to_json() for x in result.witnesses)]
    assert result.validity == "invalid"
    assert any("never published" in p for p in problems)
    assert any("published on room:2, delivered on room:1" in p for p in problems)
    assert any("never joined" in p for p in problems)


def test_order_catches_an_inversion_but_not_a_gap():
    h = base()
    h.at(3.0).publish("p1", "room:1", "p1-2", seq=2).at(3.05).publish("p1", "room:1", "p1-3", seq=3)
    h.at(3.1).recv("c1", "room:1", "p1-3", "1").recv("c1", "room:1", "p1-2", "1")
    h.at(3.2).recv("c2", "room:1", "p1-3", "1")  # a gap (p1-2 lost) is not an order problem
    result = run("order", h)
    assert result.validity == "invalid"
    (w,) = [x.to_json() for x in result.witnesses]
    assert w["client"] == "c1"
    assert (w["first_published"]["id"], w["then_published"]["id"]) == ("p1-2", "p1-3")
    assert w["first_published"]["acknowledged"] < w["then_published"]["invoked"]
    assert (w["received_first"]["id"], w["received_then"]["id"]) == ("p1-3", "p1-2")


def test_order_by_happens_before_concurrent_publishes_have_no_order():
    """p1-3 was sent before p1-2 was acknowledged: they are concurrent, either order is fine."""
    h = base()
    h.at(3.0).publish("p1", "room:1", "p1-2", seq=2, took=0.2)
    h.at(3.1).publish("p1", "room:1", "p1-3", seq=3)  # invoked while p1-2 was in flight
    h.at(3.3).recv("c1", "room:1", "p1-3", "1").recv("c1", "room:1", "p1-2", "1")
    assert run("order", h).validity == "valid"


def test_order_a_publish_of_unknown_outcome_orders_nothing_after_it():
    """p1-2 timed out (its socket abandoned); p1-3 sent after: no order between them, as on a
    real Phoenix cluster where the old connection's push was applied late."""
    h = base()
    h.at(3.0).publish("p1", "room:1", "p1-2", seq=2, outcome="info", took=5.0)
    h.at(8.1).publish("p1", "room:1", "p1-3", seq=3)
    h.at(8.2).recv("c1", "room:1", "p1-3", "1").at(8.3).recv("c1", "room:1", "p1-2", "1")
    assert run("order", h).validity == "valid"


def test_order_does_not_count_a_duplicate_as_an_inversion():
    h = base()
    h.at(3.0).disconnect("c1").at(3.1).join("c1", "room:1", jr="5")
    h.at(3.2).recv("c1", "room:1", "p1-1", "5")  # a replay of p1-1 after p1-x: a duplicate
    assert run("order", h).validity == "valid"
    assert run("at_most_once", h).validity == "invalid"


def test_order_with_nothing_ordered_is_vacuous():
    h = HistoryBuilder()
    h.at(0.0).join("c1", "room:1")
    h.at(1.0).publish("p1", "room:1", "p1-1", seq=1).recv("c1", "room:1", "p1-1", "1")
    result = run("order", h)
    assert (result.validity, result.vacuous) == ("unknown", True)
    assert "nothing to judge" in (result.error or "")


def test_delivery_fails_a_loss_outside_faults_and_reports_one_inside():
    h = base()
    h.fault("f1", "partition", "n1|n2", start=5.0, stop=8.0)
    h.at(3.0).publish("p1", "room:1", "p1-2", seq=2).recv("c1", "room:1", "p1-2", "1").recv(
        "p1", "room:1", "p1-2", "1"
    )
    h.at(6.0).publish("p1", "room:1", "p1-3", seq=3).recv("p1", "room:1", "p1-3", "1")
    result = run("delivery", h, settle=1.0)
    assert result.validity == "invalid"
    (w,) = [x.to_json() for x in result.witnesses]
    assert (w["client"], w["id"]) == ("c2", "p1-2")
    assert result.summary["lost_inside_faults"] == 2  # c1 and c2 lost p1-3 during the partition


@pytest.mark.parametrize(
    ("figures", "idle"),
    [
        ({"link_bytes": 0}, True),
        ({"link_bytes": 0, "link_connections": 0}, True),
        # Toxiproxy counts a connection's bytes when it closes: open connections crossed
        ({"link_bytes": 0, "link_connections": 11}, False),
        ({"link_bytes": 812}, False),
        ({"broadcasts_taken": 0}, True),
        ({}, False),
    ],
)
def test_a_fault_that_touched_nothing_excuses_no_loss_and_says_so(figures, idle):
    """A partition whose links never carried a byte (the nodes talk around the proxies) or
    whose rules took no broadcast cut nothing: a loss inside it is a loss, and a warning says
    why; one that carried traffic excuses its window as always."""
    from harness.checkers import assess

    h = base()
    h.fault("f1", "partition", "n1|n2", start=5.0, stop=8.0, **figures)
    h.at(6.0).publish("p1", "room:1", "p1-3", seq=3).recv("p1", "room:1", "p1-3", "1")
    h.at(9.0).read("room:1", ["p1-1", "p1-x", "p1-3"])
    result = run("delivery", h, settle=1.0)
    assert result.validity == ("invalid" if idle else "valid")
    warnings = assess(h.history(), {"delivery": {"settle": 1.0}}).warnings
    said = [w for w in warnings if w.startswith("f1 `partition n1|n2`")]
    assert bool(said) == idle, warnings
    if idle and figures.get("link_bytes") == 0:
        assert "cut nothing: no byte ever crossed its links" in said[0]


def test_delivery_only_expects_clients_joined_through_the_publish():
    h = base()
    h.at(2.5).channel_error("c2", "room:1")
    h.at(3.0).publish("p1", "room:1", "p1-2", seq=2).recv("c1", "room:1", "p1-2", "1").recv(
        "p1", "room:1", "p1-2", "1"
    )
    h.at(3.5).join("c2", "room:1", jr="9")
    assert run("delivery", h).validity == "valid"


def test_rejoin_fails_a_client_that_reconnects_but_never_rejoins():
    h = base()
    h.fault("f1", "kill", "n1", start=3.0, stop=4.0)
    h.at(3.0).disconnect("c1").disconnect("c2").disconnect("p1")
    h.at(4.1).join("c2", "room:1", jr="7").join("p1", "room:1", jr="7")
    h.at(4.1).connect("c1")
    h.at(30.0).read("room:1", ["p1-1"])
    result = run("rejoin", h, within=5.0)
    assert result.validity == "invalid"
    (lost,) = [x.to_json() for x in result.witnesses]
    assert lost["problem"] == (
        "c1 lost room:1 at 3.000s and was not joined again by 9.000s"
        " though its socket was open again at 4.100s"
    )
    assert lost["reconnected_at"] == 4.1  # the socket came back; the channel did not
    assert result.summary["rejoined"] == 2


def test_rejoin_names_a_client_connected_but_deaf_at_the_end():
    h = base()
    h.at(3.0).channel_error("c1", "room:1")  # the channel crashed; the socket stayed open
    h.at(30.0).read("room:1", ["p1-1"])
    result = run("rejoin", h)
    (deaf,) = [x.to_json() for x in result.witnesses]
    assert deaf["problem"] == (
        "c1 lost room:1 at 3.000s and was not joined again by 18.000s (connected but deaf)"
    )
    assert result.summary["channel_errors"] == 1


def test_rejoin_times_a_channel_that_crashed_and_came_back():
    h = base()
    h.at(3.0).channel_error("c1", "room:1").at(3.4).join("c1", "room:1", jr="8")
    result = run("rejoin", h, within=5.0)
    assert result.validity == "valid"
    assert result.summary["losses"] == 1
    assert result.summary["time_to_rejoin"]["max"] == pytest.approx(0.4)


def test_a_socket_loss_is_one_loss_though_its_channels_error_with_it():
    """phoenix.js errors every joined channel when its socket closes (`source: transport`): that
    is the socket's loss, counted once per topic, not a second loss beside it; a channel the
    server crashed is a loss of its own."""
    h = base()
    h.fault("f1", "kill", "n1", start=3.0, stop=4.0)
    transport = {"source": "transport", "reason": "connection_closed"}
    h.at(3.0).op("c1", "info", "channel_error", topic="room:1", join_ref="1", reason=transport)
    h.disconnect("c1").at(4.2).connect("c1").join("c1", "room:1", jr="5")
    h.at(5.0).channel_error("c1", "room:1", jr="5").at(5.3).join("c1", "room:1", jr="6")
    result = run("rejoin", h, within=5.0)
    assert result.validity == "valid"
    assert result.summary["losses"] == 2
    assert result.summary["channel_errors"] == 1


def test_failed_connect_attempts_are_not_losses_of_their_own():
    h = base()
    h.fault("f1", "kill", "n1", start=3.0, stop=4.0)
    h.at(3.0).disconnect("c1")
    for attempt in (3.01, 3.06, 3.16, 3.36):  # the backoff schedule against a dead node
        h.at(attempt).connect("c1", ok=False)
    h.at(4.2).join("c1", "room:1", jr="5")
    h.at(30.0).read("room:1", ["p1-1"])
    result = run("rejoin", h, within=5.0)
    assert result.validity == "valid"
    assert result.summary["losses"] == 1
    assert result.summary["time_to_rejoin"]["max"] == pytest.approx(1.2)


def test_rejoin_deadline_counts_from_the_end_of_the_fault_window():
    h = base()
    h.fault("f1", "partition", "n1", start=3.0, stop=20.0)
    h.at(3.0).disconnect("c1").at(22.0).join("c1", "room:1", jr="2")
    h.at(30.0).read("room:1", ["p1-1"])
    assert run("rejoin", h, within=5.0).validity == "valid"  # 22 <= 20 + 5
    late = base()
    late.fault("f1", "partition", "n1", start=3.0, stop=20.0)
    late.at(3.0).disconnect("c1").at(26.0).join("c1", "room:1", jr="2")
    late.at(30.0).read("room:1", ["p1-1"])
    assert run("rejoin", late, within=5.0).validity == "invalid"


def test_rejoin_does_not_expect_a_channel_the_server_closed_for_good():
    h = base()
    h.at(3.0).channel_close("c1", "room:1")
    assert run("rejoin", h).validity == "valid"


def test_rejoin_is_unknown_when_the_run_ends_before_the_deadline():
    h = base()
    h.at(2.5).disconnect("c1")
    result = run("rejoin", h, within=15.0)
    assert result.validity == "unknown"


def test_durability_catches_an_acknowledged_write_missing_from_the_store():
    h = base()
    h.at(3.0).publish("p1", "room:1", "p1-2", seq=2).publish(
        "p1", "room:1", "p1-3", seq=3, outcome="info"
    )
    h.at(4.0).read("room:1", ["p1-1", "p1-x", "p1-3"])
    result = run("durability", h)
    assert result.validity == "invalid"
    assert [w["id"] for w in (x.to_json() for x in result.witnesses)] == ["p1-2"]
    assert result.summary["indefinite_stored"] == 1


def test_durability_does_not_judge_a_write_acknowledged_during_the_read():
    """An overloaded node acknowledged p1-2 only after the final read had begun (seen in CI on
    a correct server): concurrent with the read, it may be missing. p1-3, acknowledged before
    the read, may not."""
    h = base()
    h.at(3.0).publish("p1", "room:1", "p1-3", seq=3)
    h.at(3.5).op("p1", "invoke", "publish", topic="room:1", id="p1-2", seq=2)
    h.at(4.0).op("reader", "invoke", "read", topic="room:1")
    h.at(4.2).op("p1", "ok", "publish", topic="room:1", id="p1-2", seq=2)
    h.at(4.3).op("reader", "ok", "read", topic="room:1", ids=["p1-1", "p1-x"])
    result = run("durability", h)
    assert result.validity == "invalid"
    assert [w.to_json()["id"] for w in result.witnesses] == ["p1-3"]
    assert result.summary["acknowledged_during_read"] == 1


def test_durability_without_a_final_read_is_unknown():
    h = HistoryBuilder()
    h.join("c1", "room:1").publish("p1", "room:1", "m")
    assert run("durability", h).validity == "unknown"


def test_latency_threshold():
    assert run("latency", base(), p99=0.001).validity == "invalid"
    assert run("latency", base(), p99=1.0).validity == "valid"
    assert run("latency", base()).summary["steady"]["max"] == pytest.approx(0.02, abs=0.001)
    (limit,) = run("latency", base(), p99=0.001).limits
    assert limit.text == "p99 (steady) 20 ms > 1 ms"
    assert run("latency", base(), p99=0.05).limits[0].text == "p99 (steady) 20 ms <= 50 ms"


def test_latency_scope_steady_leaves_out_fault_windows_and_all_does_not():
    h = base()
    h.fault("f1", "latency", "clients->n1", start=5.0, stop=8.0)
    h.at(6.0).publish("p1", "room:1", "p1-2", seq=2).at(7.0).recv("c1", "room:1", "p1-2", "1")
    assert run("latency", h, max=0.5).validity == "valid"
    assert run("latency", h, max=0.5, scope="all").validity == "invalid"


def test_availability_threshold():
    h = base()
    h.at(2.1).disconnect("c1").at(10.0).join("c1", "room:1", jr="2").at(10.1).read(
        "room:1", ["p1-1"]
    )
    assert run("availability", h, min=0.99).validity == "invalid"
    assert run("availability", h, min=0.5).validity == "valid"
    # c1 was joined about 21% of the time; the mean over (c1, c2, p1) is about 74%
    assert run("availability", h, min=0.5, of="each_client").validity == "invalid"
    text = run("availability", h, min=0.99).limits[0].text
    assert text.startswith("mean joined 7")
    assert text.endswith("% < 99.0%")


def test_availability_counts_from_the_start_of_the_workload():
    late = HistoryBuilder()  # joined only at 5 s, the workload began at 5 s: fully available
    late.at(0.0).op("runner", "info", "phase", None, phase="setup")
    late.at(5.0).op("runner", "info", "phase", None, phase="workload").join("c1", "room:1")
    late.at(10.0).read("room:1", [])
    assert run("availability", late).summary["mean_joined_fraction"] == 1.0


def test_a_crashing_checker_is_unknown_not_a_crash(monkeypatch):
    def boom(facts, options):
        raise RuntimeError("bug in checker")

    monkeypatch.setitem(CHECKERS, "order", boom)
    (result,) = check_all(base().history(), {"order": {}})
    assert result.validity == "unknown"
    assert "bug in checker" in result.error


def test_unknown_check_name_is_unknown():
    (result,) = check_all(base().history(), {"nope": {}})
    assert result.validity == "unknown"


def test_the_runners_own_teardown_is_not_a_loss():
    h = base()
    h.at(3.0).op("runner", "info", "phase", None, phase="teardown")
    h.at(3.1).disconnect("c1").disconnect("c2").disconnect("p1")
    result = run("rejoin", h)
    assert result.validity == "valid"
    assert result.summary["losses"] == 0


def test_verdicts_speak_the_scenarios_clock():
    """0 is where the workload began: a loss 3 s into the workload is reported at 3 s, however
    long the set-up took (the history file keeps the run's clock)."""
    h = HistoryBuilder()
    h.at(0.0).op("runner", "info", "phase", None, phase="setup")
    h.at(1.0).join("c1", "room:1")
    h.at(5.0).op("runner", "info", "phase", None, phase="workload")
    h.fault("f1", "kill", "n1", start=8.0, stop=9.0)
    h.at(8.0).disconnect("c1")
    h.at(30.0).read("room:1", [])
    (result,) = check_all(h.history(), {"rejoin": {"within": 5.0}})
    assert result.witnesses[0].problem == (
        "c1 lost room:1 at 3.000s and was not joined again by 9.000s"
    )
    assert result.witnesses[0].evidence["faults"][0]["start"] == 3.0


def pushes_history(*, tick_again: bool) -> HistoryBuilder:
    """c1 joined to room:1 (join_ref 1), welcomed and ticked every 0.3 s; its socket dies at 2 s,
    it rejoins at 2.2 s (join_ref 5), is welcomed again, and ticks again or stays quiet."""
    h = HistoryBuilder()
    h.at(0.0).join("c1", "room:1", jr="1")
    h.at(0.05).recv("c1", "room:1", "", "1", event="welcome")
    for k in range(1, 7):
        h.at(0.3 * k).recv("c1", "room:1", "", "1", event="tick")
    h.at(2.0).disconnect("c1").at(2.2).join("c1", "room:1", jr="5")
    h.at(2.25).recv("c1", "room:1", "", "5", event="welcome")
    if tick_again:
        for k in range(1, 14):
            h.at(2.2 + 0.3 * k).recv("c1", "room:1", "", "5", event="tick")
    h.at(6.2).channel_close("c1", "room:1", jr="5")
    return h


def test_pushes_after_a_rejoin():
    options = {"after_join": "welcome", "within": 1.0, "recurring": "tick", "every": 1.0}
    assert run("pushes", pushes_history(tick_again=True), **options).validity == "valid"
    result = run("pushes", pushes_history(tick_again=False), **options)
    assert result.validity == "invalid"
    (w,) = result.witnesses
    assert (w.client, w.topic, w.evidence["join_ref"]) == ("c1", "room:1", "5")
    assert "no `tick` for 4.00 s after its join" in w.problem


def test_pushes_a_tick_of_the_old_channel_does_not_count_and_faults_excuse():
    h = pushes_history(tick_again=False)
    h.at(3.0).recv("c1", "room:1", "", "1", event="tick")  # old join_ref: not the new channel's
    assert run("pushes", h, recurring="tick", every=1.0).validity == "invalid"
    h.fault("f1", "partition", "n1|n2", 2.0, 5.5)  # the silence is inside a fault (+ settle)
    assert run("pushes", h, recurring="tick", every=1.0).validity == "valid"


def test_pushes_missing_welcome_and_nothing_to_judge():
    h = pushes_history(tick_again=True)
    h.ops = [op for op in h.ops if not (op.value.get("event") == "welcome" and op.time > 2)]
    result = run("pushes", h, after_join="welcome", within=1.0)
    assert result.validity == "invalid"
    assert "never got it: no `welcome` within 1 s" in result.witnesses[0].problem
    short = HistoryBuilder().at(0.0).join("c1", "room:1").at(0.5).channel_close("c1", "room:1")
    assert run("pushes", short, after_join="welcome", within=1.0).vacuous


def test_pushes_needs_an_event_to_watch():
    from harness.scenario import InvalidScenario, parse_scenario

    with pytest.raises(InvalidScenario, match="after_join"):
        parse_scenario("name: a\nduration: 5s\nchecks: {pushes: {every: 1s}}\n", "x.yaml")


def test_pushes_judges_the_part_of_a_silence_outside_the_faults():
    h = pushes_history(tick_again=False)
    h.fault("f1", "kill", "n2", 2.0, 3.0)  # excused up to 4.0 (settle 1 s); silent until 6.2
    result = run("pushes", h, recurring="tick", every=1.0)
    assert result.validity == "invalid"
    assert "no `tick` for 4.00 s after its join, 2.20 s of it outside faults" in (
        result.witnesses[0].problem
    )


def anomalies() -> HistoryBuilder:
    """Set-up before the workload, a duplicate across joins, a phantom, an inversion, a loss,
    a kill, pushes and the runner's teardown: a bit of everything."""
    h = HistoryBuilder()
    h.at(-2.0).op("runner", "info", "phase", None, phase="setup")
    h.at(-1.0).join("c1", "room:1").join("c2", "room:1").join("p1", "room:1")
    h.at(0.0).op("runner", "info", "phase", None, phase="workload")
    h.at(1.0).publish("p1", "room:1", "p1-1", seq=1)
    h.at(1.02).recv("c1", "room:1", "p1-1", "1").recv("c2", "room:1", "p1-1", "1")
    h.at(1.5).publish("p1", "room:1", "p1-2", seq=2)
    h.at(1.6).recv("c2", "room:1", "p1-2", "1").recv("c1", "room:1", "ghost", "1")
    h.at(1.7).recv("c1", "room:1", "", "1", event="welcome")
    h.fault("f1", "kill", "n1", start=2.0, stop=3.0)
    h.at(2.1).disconnect("c1").at(2.5).join("c1", "room:1", jr="5")
    h.at(2.6).recv("c1", "room:1", "p1-1", "5").recv("c1", "room:1", "p1-2", "5")
    h.at(4.0).publish("p1", "room:1", "p1-3", seq=3)
    h.at(4.5).publish("p1", "room:1", "p1-4", seq=4)
    h.at(4.6).recv("c2", "room:1", "p1-4", "1").at(4.7).recv("c2", "room:1", "p1-3", "1")
    h.at(5.0).read("room:1", ["p1-1", "p1-2"])
    h.at(6.0).op("runner", "info", "phase", None, phase="teardown")
    h.at(6.1).disconnect("c2")
    return h


def test_a_history_read_lean_is_judged_exactly_as_its_ops(tmp_path):
    """The runner and `harness check` read deliveries as rows (`rundir.read_lean`); every
    verdict, summary and witness must be what the same history's ops give."""
    from harness.checkers import assess, assess_facts
    from harness.run.rundir import read_lean, write_history

    checks = {name: {} for name in CHECKERS if name != "pushes"}
    checks["pushes"] = {"after_join": "welcome", "within": 1.0}
    ops = anomalies().history()
    path = tmp_path / "history.jsonl"
    write_history(path, ops)
    lean = assess_facts(facts_of(read_lean(path)), checks)
    full = assess(ops, checks)
    assert [r.to_json() for r in lean.results] == [r.to_json() for r in full.results]
    assert {r.name: r.validity for r in lean.results} == {
        "rejoin": "valid",
        "at_most_once": "invalid",
        "no_phantom": "invalid",
        "delivery": "invalid",
        "order": "invalid",
        "durability": "invalid",
        "protocol": "valid",
        "latency": "valid",
        "availability": "valid",
        "pushes": "invalid",  # no welcome after the rejoin
    }


RECV_VALUE = {
    "topic": "room:1",
    "event": "new_msg",
    "id": "p1-1",
    "join_ref": "1",
    "frame_join_ref": None,
    "state": "joined",
}


def test_compact_rows_are_judged_exactly_as_their_ops(tmp_path):
    """With every delivery a compact row (`harness.rows`: codes in the file's names table, the
    id as publisher and sequence) the facts are made from the codes as columns; every verdict,
    summary and witness must still be what the ops give, a readiness probe's deliveries left
    out as they are from ops."""
    from dataclasses import replace

    from harness.checkers import assess, assess_facts
    from harness.columns import Columns
    from harness.history import Op, parse_lean, workload_start
    from harness.rows import expand
    from harness.run.rundir import read_lean, write_history

    checks = {name: {} for name in CHECKERS if name != "pushes"}
    checks["pushes"] = {"after_join": "welcome", "within": 1.0}
    renamed = {"ghost": "ghost-7", "": None}
    ops = []
    for op in anomalies().history():
        if op.f == "recv" and op.value.get("id") in renamed:
            op = replace(op, value={**op.value, "id": renamed[op.value["id"]]})
        ops.append(op)
    probe = [
        Op(1.01, "prober", "invoke", "probe", {"id": "probe-1", "topic": "room:1"}),
        Op(1.03, "c1", "ok", "recv", {**RECV_VALUE, "id": "probe-1"}, "n1"),
    ]
    # rows the numbers cannot hold alone: a delivery after a leave (an object at its end), a
    # join_ref that is no counter, a frame's own join_ref
    late = {**RECV_VALUE, "id": "p1-1", "state": "closed"}
    probe += [
        Op(1.05, "c1", "ok", "recv", late, "n1"),
        Op(1.06, "c2", "ok", "recv", {**RECV_VALUE, "id": "p1-1", "join_ref": "x7"}, "n1"),
        Op(1.07, "c2", "ok", "recv", {**RECV_VALUE, "frame_join_ref": "3"}, None),
    ]
    ops = sorted([*ops, *probe], key=lambda op: op.time)
    ops = [replace(op, index=i) for i, op in enumerate(ops)]
    path = tmp_path / "history.jsonl"
    write_history(path, ops)
    lean_history = read_lean(path)
    assert lean_history.names is not None
    assert isinstance(lean_history.rows, Columns)  # read as columns, not a list a row
    assert all(type(row[1]) is int for row in lean_history.rows)
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    names = lean_history.names
    whole = [expand(i, names) if isinstance(i, list) else i for i in lean_history]
    assert whole == list(parse_lean(lines, shift=workload_start(data)))
    facts = facts_of(lean_history)
    assert "probe-1" not in list(facts.deliveries.ids)
    assert "ghost-7" in list(facts.deliveries.ids)
    lean = assess_facts(facts, checks)
    full = assess(ops, checks)
    assert [r.to_json() for r in lean.results] == [r.to_json() for r in full.results]
    assert lean.results[1].validity == "invalid"  # at_most_once: the duplicate is still seen
