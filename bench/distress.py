"""Calibrate the distress thresholds: `python bench/distress.py [SCENARIO ...] [--hogs 0 1 2]`.

Runs each scenario (default: the quickstart, a correct server with faults, and a heavy one that
loads the box) with 0, 1 and 2 CPU cores hogged by busy loops, and prints per run the verdict,
the worst figures the load gauge recorded (event-loop lag, publish lag, receive backlog, CPU
pressure), the symptoms outside fault windows (publish and heartbeat timeouts) and the distress
windows found. Ratios are against the idle run of the same scenario in the same invocation (the
machine is shared and noisy: compare ratios and verdicts, not absolute numbers).

What to look for: a correct server is never `invalid` in any row; healthy rows stay well under
`LAG_LIMIT`/`PUBLISH_LAG_LIMIT` (`harness/checkers/_distress.py`); overloaded rows are `unknown`
with a distress window. Each hog is bounded to 10 minutes and stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.run.rundir import read_history

ROOT = Path(__file__).resolve().parent.parent
HEAVY = """
name: heavy
description: 200 clients on 4 topics, 2 workers, 50 msg/s (the overload report of issue 11)
seed: 1
duration: 15s
settle: 2s
cluster: {nodes: 3}
clients:
  count: 200
  workers: 2
  topics: ["room:1", "room:2", "room:3", "room:4"]
  topics_per_client: 2
  timings: {heartbeat_interval: 2s, timeout: 5s}
workload: {publishers: 2, rate: 50/s}
"""
HOG = "import time\nend = time.monotonic() + 600\nwhile time.monotonic() < end: pass"


def figures(run_dir: Path) -> dict[str, Any]:
    results = json.loads((run_dir / "results.json").read_text())
    worst = {"lag": 0.0, "publish_lag": 0.0, "backlog": 0.0, "cpu_stall": 0.0}
    for values in results.get("load", {}).values():
        for key in worst:
            worst[key] = max(worst[key], float(values.get(key, 0.0)))
    symptoms = 0
    for op in read_history(run_dir / "history.jsonl"):
        if op.f == "heartbeat_timeout" or (
            op.f == "publish" and op.value.get("error") == "timeout"
        ):
            symptoms += 1
    bad = [c["name"] for c in results["checks"] if c["validity"] != "valid"]
    return {
        "validity": results["validity"],
        "not_valid": bad,
        "distress": len(results.get("distress", [])),
        "symptoms": symptoms,
        **worst,
    }


def run(scenario: Path, hogs: int, out: Path) -> dict[str, Any]:
    busy = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
    try:
        subprocess.run(
            [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(out)],
            capture_output=True,
            timeout=600,
            cwd=ROOT,
        )
    finally:
        for process in busy:
            process.kill()
            process.wait()
    (run_dir,) = [d for d in out.glob("*/*") if d.is_dir()]
    return figures(run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("scenarios", nargs="*")
    parser.add_argument("--hogs", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="distress-") as tmp:
        heavy = Path(tmp) / "heavy.yaml"
        heavy.write_text(HEAVY)
        scenarios = [Path(s) for s in args.scenarios] or [ROOT / "scenarios/quickstart.yaml", heavy]
        print(
            f"{'scenario':<12} {'hogs':>4} {'verdict':<8} {'lag s':>6} {'x idle':>6} "
            f"{'pub lag':>7} {'backlog':>8} {'stall':>5} {'sympt':>5} {'distr':>5}  not valid"
        )
        for scenario in scenarios:
            idle_lag = None
            for hogs in args.hogs:
                row = run(scenario, hogs, Path(tmp) / f"{scenario.stem}-{hogs}")
                idle_lag = row["lag"] if idle_lag is None else idle_lag
                ratio = row["lag"] / idle_lag if idle_lag else float("nan")
                print(
                    f"{scenario.stem:<12} {hogs:>4} {row['validity']:<8} {row['lag']:>6.3f} "
                    f"{ratio:>6.1f} {row['publish_lag']:>7.3f} {row['backlog']:>8.0f} "
                    f"{row['cpu_stall']:>5.2f} {row['symptoms']:>5} {row['distress']:>5}  "
                    f"{', '.join(row['not_valid']) or '-'}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
