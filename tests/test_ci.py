"""CI output from hand-made results: the GitHub step summary and `::error` annotations."""

from __future__ import annotations

import re
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


def _commands(text: str) -> list[list[str]]:
    """Every `run:` of the example workflow, split into words, GitHub expressions dropped."""
    workflow = yaml.safe_load(text)
    runs = [s["run"] for job in workflow["jobs"].values() for s in job["steps"] if "run" in s]
    return [shlex.split(re.sub(r"\$\{\{.*?\}\}", "", run)) for run in runs]


def test_the_example_workflow_runs_commands_that_exist():
    text = WORKFLOW.read_text()
    workflow = yaml.safe_load(text)
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    uses = {s["uses"].split("@")[0] for s in steps if "uses" in s}
    assert {"actions/checkout", "actions/cache", "actions/upload-artifact"} <= uses
    assert any("junit" in u for u in uses), "publishes the JUnit file"
    makefile = (ROOT / "Makefile").read_text()
    commands = _commands(text)
    assert commands, "the workflow runs something"
    for words in commands:
        if words[0] == "make":
            for target in words[1:]:
                assert re.search(rf"^{re.escape(target)}:", makefile, re.M), target
            continue
        assert words[0] == ".venv/bin/harness", words
        subcommand, rest = words[1], words[2:]
        options = [w for w in rest if w.startswith("--")]
        files = [w for w in rest if w.endswith(".yaml")]
        help_text = subprocess.run(
            [sys.executable, "-m", "harness", subcommand, "--help"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for option in options:
            assert option in help_text, f"harness {subcommand} has no {option}"
        for name in files:
            assert (ROOT / name).is_file(), name
            subprocess.run(
                [sys.executable, "-m", "harness", "validate", str(ROOT / name)],
                check=True,
                capture_output=True,
            )
    # what the JUnit step publishes and the artefact uploads are what `harness run` writes
    run = next(w for w in commands if w[:2] == [".venv/bin/harness", "run"])
    junit = next(s for s in steps if "junit" in s.get("uses", ""))
    assert run[run.index("--junit-xml") + 1] == junit["with"]["report_paths"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"].rstrip("/") == run[run.index("--out") + 1]
