"""At-least-once catch-up, from the pure parts: `delivery` under `guarantee: at_least_once` on
hand-built histories (a rejoin that catches up, a gap, a late arrival, a loss while joined, the
vacuous cases), `no_phantom` accepting a message caught up after it was published while the
client was away, the phoenix.js params closure in the client model, and the grammar's rules.
The reference server's catch-up mode and its five defects run end to end in `tests/test_zoo.py`.
"""

from __future__ import annotations

import pytest

from harness.checkers import CHECKERS, CHECKS, facts_of, headline
from harness.errors import HarnessError
from harness.phoenix import ClientSocket, Join
from harness.scenario import parse_scenario
from tests.support.builder import HistoryBuilder

AT_LEAST_ONCE = {"guarantee": "at_least_once", "within": 2.0}


def run(name, h, **options):
    return CHECKERS[name](facts_of(h.history()), options)


def away_and_back(*, caught_up: bool, late: bool = False) -> HistoryBuilder:
    """c1 stays joined; c2 is away from 2.0 s to 3.0 s while p1-2 and p1-3 are published, and
    rejoins with the last position it saw (1); a catch-up sends it both (late: 4 s after)."""
    h = HistoryBuilder()
    h.at(0.0).join("c1", "room:1").join("p1", "room:1")
    h.op("c2", "invoke", "join", topic="room:1", join_ref="1", cursor=None)
    h.op("c2", "invoke", "connect", url="ws://n1").op("c2", "ok", "connect", url="ws://n1")
    h.op("c2", "ok", "join", topic="room:1", join_ref="1")
    for n, t in ((1, 1.0), (2, 2.2), (3, 2.6), (4, 3.5)):
        h.at(t).publish("p1", "room:1", f"p1-{n}", seq=n)
        h.recv("c1", "room:1", f"p1-{n}", "1").recv("p1", "room:1", f"p1-{n}", "1")
        if n in (1, 4):
            h.recv("c2", "room:1", f"p1-{n}", "1" if n == 1 else "2")
    h.at(2.0).disconnect("c2")
    h.at(3.0).op("c2", "invoke", "join", topic="room:1", join_ref="2", cursor=1)
    h.connect("c2").op("c2", "ok", "join", topic="room:1", join_ref="2")
    if caught_up:
        h.at(7.5 if late else 3.05).recv("c2", "room:1", "p1-2", "2").recv(
            "c2", "room:1", "p1-3", "2"
        )
    h.at(9.0).read("room:1", ["p1-1", "p1-2", "p1-3", "p1-4"])
    return h


def test_a_rejoin_that_catches_up_is_valid_with_its_figures():
    result = run("delivery", away_and_back(caught_up=True), **AT_LEAST_ONCE)
    assert result.validity == "valid", result.witnesses
    s = result.summary
    assert (s["expected_deliveries"], s["delivered"], s["caught_up"]) == (12, 12, 2)
    assert s["time_to_catch_up"]["max"] == pytest.approx(0.05)
    says = CHECKS["delivery"].says
    assert says is not None
    assert "(2 caught up after a rejoin, 10 live)" in says(s)


def test_a_gap_in_the_catch_up_is_one_witness_naming_the_rejoin_and_its_cursor():
    result = run("delivery", away_and_back(caught_up=False), **AT_LEAST_ONCE)
    assert result.validity == "invalid"
    (w,) = result.witnesses
    assert w.problem == "c2 rejoined room:1 on n1 at 3.0 s with cursor 1 and never got p1-2, p1-3"
    assert w.evidence["messages"] == 2
    assert result.summary["missing"] == 2
    assert headline(result) == "1 gap in the catch-up, to c2 of n1, outside every fault window"


def test_the_same_history_is_valid_at_most_once():
    """What PubSub lost while c2 was away is allowed at most once (no fault window here, so
    the client's own absence is what excuses it): the default guarantee is today's."""
    assert run("delivery", away_and_back(caught_up=False)).validity == "valid"


def test_a_catch_up_after_the_deadline_is_late():
    result = run("delivery", away_and_back(caught_up=True, late=True), **AT_LEAST_ONCE)
    assert result.validity == "invalid"
    (w,) = result.witnesses
    assert "only 2.5 s after its 2 s deadline" in w.problem
    assert result.summary["late"] == 2


def test_a_loss_while_joined_throughout_is_a_gap_too():
    h = away_and_back(caught_up=True)
    h.at(4.0).publish("p1", "room:1", "p1-5", seq=5).recv("p1", "room:1", "p1-5", "1")
    h.at(9.0).read("room:1", ["p1-5"])
    result = run("delivery", h, **AT_LEAST_ONCE)
    assert result.validity == "invalid"
    problems = sorted(w.problem for w in result.witnesses)
    assert problems == [
        "c1 stayed joined to room:1 on n1 and never got p1-5",
        "c2 stayed joined to room:1 on n1 and never got p1-5",
    ]


def test_with_nobody_rejoining_the_catch_up_was_not_exercised():
    h = HistoryBuilder()
    h.at(0.0).join("c1", "room:1").join("p1", "room:1")
    h.at(1.0).publish("p1", "room:1", "p1-1", seq=1).recv("c1", "room:1", "p1-1", "1")
    h.at(9.0).read("room:1", ["p1-1"])
    result = run("delivery", h, **AT_LEAST_ONCE)
    assert result.validity == "unknown"
    assert "catch-up was not exercised" in (result.error or "")


def test_no_phantom_accepts_a_message_caught_up_after_it_was_published_while_away():
    assert run("no_phantom", away_and_back(caught_up=True)).validity == "valid"


def test_the_params_closure_is_evaluated_on_every_join_and_rejoin():
    """phoenix.js `socket.channel(topic, () => ({since: last}))`: the payload of each join is
    made when the join is sent, so a rejoin carries the position seen last."""
    last = {"seen": None}
    model = ClientSocket()
    model.join("room:1", lambda: {"since": last["seen"]}, 0.0)
    model.connect()
    model.opened(0.0)

    def joins() -> list[object]:
        return [e.payload for e in model.take_outgoing() if isinstance(e, Join)]

    assert joins() == [{"since": None}]
    last["seen"] = 41
    model.closed(1.0, 1006, "gone")
    model.advance(5.0)
    model.opened(5.0)
    assert joins() == [{"since": 41}]


def test_cursor_in_a_join_needs_a_place_in_the_delivery():
    text = """
name: x
duration: 2s
app:
  join: {payload: {since: "{cursor}"}}
"""
    with pytest.raises(HarnessError, match=r"deliver: \{cursor: seq\}"):
        parse_scenario(text, "x.yaml")


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ("{guarantee: at_least_once, settle: 2s}", "under at_least_once `within` is the deadline"),
        ("{within: 2s}", "within applies to guarantee: at_least_once"),
        ("{guarantee: exactly_once}", "exactly_once"),
    ],
)
def test_delivery_options_say_what_belongs_to_which_guarantee(options, says):
    text = f"name: x\nduration: 2s\nchecks:\n  delivery: {options}\n"
    with pytest.raises(HarnessError, match=says):
        parse_scenario(text, "x.yaml")


def test_the_report_draws_the_time_each_rejoin_took_to_catch_up():
    from harness.checkers import assess
    from harness.report import view

    h = away_and_back(caught_up=True)
    assessment = assess(h.history(), {"delivery": AT_LEAST_ONCE})
    results = {"checks": [r.to_json() for r in assessment.results], "validity": "valid"}
    (chart,) = [c for c in view(results, h.history()).charts if c.key == "catch_up"]
    assert chart.caption.startswith("2 deliveries caught up after 1 rejoin, 10 live, 0 late")
    assert any("1 rejoins caught up in" in m.title for m in chart.marks)
    plain = assess(h.history(), {"delivery": {}})
    results = {"checks": [r.to_json() for r in plain.results], "validity": "valid"}
    assert not [c for c in view(results, h.history()).charts if c.key == "catch_up"]
