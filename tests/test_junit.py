"""JUnit XML, flake rates and the exit code of repeated runs: pure, from hand-made outcomes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from harness.checkers import Assessment, CheckResult, Limit
from harness.exits import worst
from harness.outputs.flake import flake_rates, wilson
from harness.outputs.junit import render
from harness.run.rundir import RunOutcome
from harness.witness import Witness


def outcome(seed: int, *results: CheckResult, warnings: tuple[str, ...] = ()) -> RunOutcome:
    return RunOutcome(
        "kill", "scenarios/zoo/kill.yaml", seed, Assessment(results, (), warnings), 1.5
    )


VALID = CheckResult("delivery", "valid")
FAILED = CheckResult("delivery", "invalid", witnesses=(Witness("c1 never received p1-3"),))
VACUOUS = CheckResult("order", "unknown", error="nothing to judge: x", vacuous=True)
UNDECIDED = CheckResult("rejoin", "unknown", error="the harness fell behind")


def test_one_testcase_per_seed_and_check_in_one_suite_per_scenario():
    runs = [outcome(1, VALID, VACUOUS), outcome(2, FAILED, VACUOUS), outcome(3, UNDECIDED)]
    root = ET.fromstring(render(runs))
    (suite,) = root.findall("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == [
        "kill[seed=1] delivery",
        "kill[seed=1] order",
        "kill[seed=2] delivery",
        "kill[seed=2] order",
        "kill[seed=3] rejoin",
    ]
    assert (
        suite.get("tests"),
        suite.get("failures"),
        suite.get("errors"),
        suite.get("skipped"),
    ) == (
        "5",
        "1",
        "1",
        "2",
    )
    assert cases["kill[seed=2] delivery"].find("failure").get("message") == "c1 never received p1-3"
    assert cases["kill[seed=1] order"].find("skipped").get("message") == "nothing to judge: x"
    assert cases["kill[seed=3] rejoin"].find("error") is not None


def test_limits_and_warnings_reach_each_testcase():
    limit = Limit("p99 (steady)", 0.612, 0.5)
    breach = CheckResult("latency", "invalid", witnesses=(Witness(limit.text),), limits=(limit,))
    root = ET.fromstring(render([outcome(1, breach, warnings=("no fault was injected",))]))
    case = root.find("testsuite/testcase")
    assert case.find("failure").get("message") == "p99 (steady) 612 ms > 500 ms"
    out = case.find("system-out").text
    assert "p99 (steady) 612 ms > 500 ms" in out
    assert "warning: no fault was injected" in out


def test_wilson_interval():
    assert wilson(0, 5) == pytest.approx((0.0, 0.4345), abs=1e-3)
    assert wilson(5, 5) == pytest.approx((0.5655, 1.0), abs=1e-3)
    low, high = wilson(1, 5)
    assert low < 0.2 < high
    assert wilson(0, 0) == (0.0, 1.0)


def test_flake_rates_per_check():
    rates = {r.check: r for r in flake_rates([[VALID, VACUOUS], [FAILED, VACUOUS], [VALID]])}
    assert (rates["delivery"].failed, rates["delivery"].runs) == (1, 3)
    assert (rates["order"].unknown, rates["order"].runs) == (2, 2)
    assert "failed 1/3" in rates["delivery"].text


def test_the_worst_exit_code_of_several_runs():
    assert worst([0, 0]) == 0
    assert worst([0, 3, 1]) == 1  # a violation outranks an unknown
    assert worst([0, 3]) == 3
    assert worst([1, 130]) == 130
