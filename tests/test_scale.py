"""10,000 clients on one box through the whole path (issue 31): `bench/scale-10k.yaml` (3 nodes,
two swarm workers, ten rooms, a kill) must be valid, with its Toxiproxy sized in the history and
no process of the harness out of file descriptors. Before the proxies were sized and spread,
this run failed at set-up twice in a row (405 `too many open files` in toxiproxy's log)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_ten_thousand_clients_through_toxiproxy_and_a_kill(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "bench/scale-10k.yaml", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_dir = next((tmp_path / "scale-10k").iterdir())
    ops = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    ops = [op for op in ops if isinstance(op, dict) and "f" in op]  # not rows, not names
    sizes = next(op["value"]["descriptors"] for op in ops if "descriptors" in op["value"])
    assert all(s["descriptors"] <= sizes["limit"] for s in sizes["servers"].values()), sizes
    assert not [op for op in ops if op["f"] == "exhausted"]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["validity"] == "valid", results
