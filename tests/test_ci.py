"""CI output from hand-made results: the GitHub step summary and `::error` annotations."""

from __future__ import annotations

from pathlib import Path

from harness.checkers import CheckResult, Limit
from harness.ci import error_annotations, step_summary
from harness.history import Witness

SCENARIO = """name: s
duration: 5s
checks:
  rejoin: {within: 5s}
  delivery: {settle: 1s}
"""

LOST = CheckResult("delivery", "invalid", witnesses=(Witness("c1 never received p1-3\n::x"),))
SLOW = CheckResult(
    "latency",
    "invalid",
    witnesses=(Witness("p99 (steady) 612 ms > 500 ms"),),
    limits=(Limit("p99 (steady)", 0.612, 0.5),),
)


def test_step_summary_has_the_verdict_table_limits_and_the_reproduce_command():
    text = step_summary("s", 7, "invalid", [CheckResult("rejoin", "valid"), LOST, SLOW], Path("r"))
    assert text.startswith("### ❌ s (seed 7): invalid")
    assert "| delivery | ❌ invalid |" in text
    assert "p99 (steady) 612 ms > 500 ms" in text
    assert "`harness run r/scenario.yaml --seed 7`" in text


def test_annotations_point_at_the_check_line_and_cannot_inject_commands():
    lines = error_annotations("s.yaml", SCENARIO, [CheckResult("rejoin", "valid"), LOST, SLOW])
    assert lines[0].startswith("::error file=s.yaml,line=5::delivery invalid: c1 never received")
    assert "\n" not in lines[0]
    assert "%0A::x" in lines[0]  # the newline is escaped: no second workflow command
    assert lines[1].startswith("::error file=s.yaml,line=4::latency")  # not named: its section
