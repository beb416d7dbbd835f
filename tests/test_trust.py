"""Verdicts a CI can trust, end to end through `harness run`: a scenario far beyond the machine
ends `unknown` (exit 3) with the distress reason, never `invalid` and never `valid`, on an idle
box and with a core hogged; a run that publishes nothing exits 3 and says why."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BEYOND = """
name: beyond
description: far beyond a 2-core box, so the harness itself falls behind
seed: 1
duration: 8s
settle: 1s
cluster: {nodes: 2}
clients:
  count: 600
  workers: 2
  topics: ["room:1"]
  timings:
    heartbeat_interval: 2s
    timeout: 4s
workload: {publishers: 4, rate: 400/s}
"""

NOTHING = """
name: nothing
seed: 1
duration: 2s
settle: 500ms
cluster: {nodes: 2}
clients: {count: 4, topics: ["room:1"]}
workload: {publishers: 0}
"""


def harness(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=timeout
    )


@contextmanager
def hogged_cores(count: int) -> Iterator[None]:
    """`count` busy loops (each bounded to 3 minutes), stopped by PID afterwards."""
    code = "import time\nend = time.monotonic() + 180\nwhile time.monotonic() < end: pass"
    hogs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


@pytest.mark.parametrize("hogs", [0, 1], ids=["idle", "one-core-hogged"])
def test_a_scenario_beyond_the_machine_is_unknown_with_the_reason(tmp_path: Path, hogs: int):
    scenario = tmp_path / "beyond.yaml"
    scenario.write_text(BEYOND)
    with hogged_cores(hogs):
        result = harness("run", str(scenario), "--out", str(tmp_path / "r"))
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    (run_dir,) = (tmp_path / "r" / "beyond").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["validity"] == "unknown"
    assert not [c["name"] for c in results["checks"] if c["validity"] == "invalid"], output
    assert results["distress"], "the harness must say it fell behind"
    assert (
        "behind" in results["distress"][0]["reason"]
        or "saturated" in results["distress"][0]["reason"]
    )
    assert "harness distress" in result.stdout  # in the terminal, not only in the report
    assert "harness distress" in (run_dir / "junit.xml").read_text()
    assert "harness lag" in (run_dir / "report.html").read_text()  # the report's distress lane
    assert any(lag > 0 for lag in (v.get("lag", 0) for v in results["load"].values()))


def test_a_run_that_publishes_nothing_exits_3_and_says_why(tmp_path: Path):
    scenario = tmp_path / "nothing.yaml"
    scenario.write_text(NOTHING)
    result = harness(
        "run", str(scenario), "--out", str(tmp_path / "r"), "--junit-xml", str(tmp_path / "j.xml")
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "nothing to judge: no message was delivered to any client" in result.stdout
    junit = (tmp_path / "j.xml").read_text()
    assert "<skipped" in junit
    assert 'failures="0"' in junit
