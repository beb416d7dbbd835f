"""CI output from hand-made results: the GitHub step summary and `::error` annotations."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from harness.checkers import CheckResult, Limit
from harness.outputs.ci import error_annotations, step_summary
from harness.witness import Witness

ROOT = Path(__file__).resolve().parent.parent
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
    assert "\\n::x" in lines[0]  # the newline is escaped: no second workflow command
    assert lines[1].startswith("::error file=s.yaml,line=4::latency")  # not named: its section


WORKFLOW = ROOT / ".github" / "workflows" / "chaos.yml"


def test_the_example_workflow_runs_the_action_on_scenarios_that_exist():
    """This repository's workflow is the Action (`uses: ./`, whose steps tests/test_package.py
    runs) on scenarios that validate, publishing the JUnit file the Action writes, with the
    permission that publishing needs."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow["permissions"]["checks"] == "write"
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    uses = {s["uses"].split("@")[0] for s in steps if "uses" in s}
    assert {"actions/checkout", "./"} <= uses
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    (ours,) = [s for s in steps if s.get("uses") == "./"]
    assert set(ours["with"]) <= set(action["inputs"])
    for name in shlex.split(ours["with"]["scenarios"]):
        assert (ROOT / name).is_file(), name
        subprocess.run(
            [sys.executable, "-m", "harness", "validate", str(ROOT / name)],
            check=True,
            capture_output=True,
        )
    junit = next(s for s in steps if "junit" in s.get("uses", ""))
    assert junit["with"]["report_paths"] == ours["with"]["junit"]
