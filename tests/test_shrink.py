"""`harness shrink`: the search on its own (a judge that fails scenarios by a rule, pure), then
for real: a zoo defect padded with five unrelated faults and 30 extra clients shrinks to at most
two faults and six clients that still fail the same check; a passing run is refused."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import trio
import yaml

from harness.run.runner import RunOptions, run_scenario
from harness.run.shrink import shrink
from harness.scenario import Scenario, parse_scenario

ZOO = Path(__file__).resolve().parent.parent / "scenarios" / "zoo"
PADDING = """
  - {at: 500ms, for: 1s, kind: latency, link: clients->n1, latency: 50ms}
  - {at: 3s, for: 1s, kind: latency, link: clients->n3, latency: 20ms}
  - {at: 4s, for: 1s, kind: slicer, link: clients->n1, average_size: 64, size_variation: 8, delay: 10}
  - {at: 4500ms, for: 1s, kind: bandwidth, link: clients->n3, rate: 1000}
  - {at: 5s, for: 1s, kind: latency, link: n1->n3, latency: 30ms}
"""


def padded(bugs: str = "[duplicate_after_rejoin]") -> Scenario:
    text = (ZOO / "kill.yaml").read_text()
    text = text.replace("count: 6", "count: 36")
    text = text.replace("cluster: {nodes: 3, trace: true}", f"cluster: {{nodes: 3, bugs: {bugs}}}")
    text = text.replace("restart_after: 500ms}\n", "restart_after: 500ms}" + PADDING)
    return parse_scenario(text, "padded-kill.yaml")


def test_the_cuts_include_weaker_shorter_and_earlier_faults():
    from harness.run.shrink import candidates
    from harness.scenario import resolved_data

    cuts = [c.what for c in candidates(resolved_data(padded()))]
    assert cuts[0] == "clients 36 -> 18"  # every later run is cheaper
    assert [c.split(" (")[0] for c in cuts[1:7]] == [f"removed fault {i}" for i in range(1, 7)]
    assert "fault 1 kill -> terminate" in cuts
    assert "fault 2 latency 50ms -> 25ms" in cuts
    assert "fault 6 for 1s -> 0.5s" in cuts
    assert "fault 6 at 5s -> 2.5s" in cuts
    assert "clients 36 -> 18" in cuts
    assert "dropped topic room:2" in cuts


def test_the_search_keeps_only_what_the_failure_needs():
    """A judge that fails a scenario while it has the kill and at least 3 clients: the search
    must end there, and never try a candidate it already saw pass twice."""
    seen: list[str] = []

    def attempt(s: Scenario, seed: int) -> tuple[bool, Path | None]:
        seen.append(yaml.safe_dump([f.kind_name() for f in s.faults]) + str(s.clients.count))
        fails = any(f.kind_name() == "kill" for f in s.faults) and s.clients.count >= 3
        return fails, Path(f"/runs/{len(seen)}") if fails else None

    lines: list[str] = []
    shrunk = shrink(padded(), "at_most_once", attempt, runs=2, budget=60, say=lines.append)
    assert [f.kind_name() for f in shrunk.scenario.faults] == ["kill"]
    assert shrunk.scenario.clients.count == 4  # 36 -> 18 -> 9 -> 4; 2 would pass
    assert shrunk.failed == (2, 2)
    assert shrunk.run_dir is not None
    assert any(line.startswith("no:   clients 4 -> 2") for line in lines)
    assert lines[-1] == "the shrunk scenario failed at_most_once in 2 of 2 runs"
    assert shrunk.scenario.name == "zoo-kill-shrunk"  # its runs land apart from the original's
    rejected = [x for x in lines if x.startswith("no:   ")]
    assert any("(kill" in x for x in rejected)
    assert len(rejected) == len(set(rejected))  # a candidate that passed is never tried again


def test_the_budget_bounds_the_whole_command_confirmation_runs_included(monkeypatch):
    """Every run takes 10 s on a clock of the test's own; with a budget of 100 s the search
    must leave room for the confirmation runs, so the whole command ends within it."""
    from harness.run import shrink as shrinking

    now = [0.0]
    monkeypatch.setattr(shrinking.time, "monotonic", lambda: now[0])

    def attempt(s: Scenario, seed: int) -> tuple[bool, Path | None]:
        now[0] += 10.0
        return any(f.kind_name() == "kill" for f in s.faults), Path("/runs/x")

    lines: list[str] = []
    shrunk = shrink(padded(), "at_most_once", attempt, runs=2, budget=100, say=lines.append)
    assert now[0] <= 100
    assert shrunk.failed[1] >= 1


@pytest.mark.slow
async def test_a_padded_defect_shrinks_to_its_core(tmp_path):
    result = await run_scenario(padded(), RunOptions(out=tmp_path))
    assert {r.name: r.validity for r in result.results}["at_most_once"] == "invalid"
    assert len(padded().faults) == 6
    code, out = await _shrink_cli(result.run_dir, "--budget", "6m", "--runs", "2")
    assert code == 0, out
    text = (result.run_dir / "shrunk.yaml").read_text()
    shrunk = parse_scenario(text, "shrunk.yaml")
    assert len(shrunk.faults) <= 2
    assert shrunk.clients.count <= 6
    assert re.search(r"failed at_most_once [12] of 2", text), text.splitlines()[:12]
    failing = re.search(r"# a failing run: (\S+)", text)
    assert failing is not None
    assert (Path(failing.group(1)) / "results.json").is_file()
    assert "kept: removed fault" in out
    assert re.search(r"the shrunk scenario failed at_most_once in [12] of 2 runs", out)
    assert shrunk.name == "zoo-kill-shrunk"


async def test_a_run_that_passed_is_refused(tmp_path):
    steady = parse_scenario((ZOO / "steady.yaml").read_text(), "steady.yaml")
    result = await run_scenario(steady, RunOptions(out=tmp_path))
    assert result.exit_code == 0
    code, out = await _shrink_cli(result.run_dir)
    assert code == 2
    assert "nothing to shrink" in out
    assert not (result.run_dir / "shrunk.yaml").exists()


async def _shrink_cli(run_dir: Path, *args: str) -> tuple[int, str]:
    """`harness shrink` as a user runs it: its own process."""
    done = await trio.run_process(
        [sys.executable, "-m", "harness", "shrink", str(run_dir), *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    return done.returncode, done.stdout.decode() + done.stderr.decode()
