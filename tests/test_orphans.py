"""No orphans, ever: a harness killed with SIGKILL, or hit by two signals at once, leaves no
node, toxiproxy-server, redis-server or proxy behind; and a signal while it checks still
writes results.json (exit 130).

Each test starts `harness run` as a real process, waits (on a condition) until its workload
runs, hits it, then waits with a deadline until everything it had started is gone.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.run.rundir import read_history

SCENARIO = """
name: long
duration: 60s
settle: 1s
cluster: {nodes: 2, pubsub: PUBSUB}
clients:
  count: 4
  topics: ["room:1"]
  timings: {reconnect_after: [10ms, 50ms], rejoin_after: [100ms], heartbeat_interval: 1s}
workload: {publishers: 1, rate: 20/s}
faults:
  - {at: 1s, for: 50s, kind: latency, link: clients->n1, latency: 20ms}
"""


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper is dead: it holds no port and runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)


def start(tmp_path: Path, pubsub: str = "mesh", *extra: str) -> tuple[subprocess.Popen, Path]:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(SCENARIO.replace("PUBSUB", pubsub))
    out = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(out), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def in_workload() -> bool:
        found = list(out.glob("long/*/history.jsonl"))
        return bool(found) and '"kind":"latency"' in found[0].read_text()

    try:
        wait_for(in_workload, 60, "the run's first fault")
    except AssertionError:
        proc.kill()
        raise
    return proc, next(out.glob("long/*/history.jsonl"))


def started_pids(history: Path) -> list[int]:
    ops = [json.loads(op.to_json()) for op in read_history(history)]
    setup = {k: v for o in ops if o["f"] == "setup" for k, v in o["value"].items()}
    pids = [*setup["pids"].values()]
    for key in ("toxiproxy_pid", "redis_pid"):
        if setup.get(key):
            pids.append(setup[key])
    return pids


@pytest.mark.parametrize("pubsub", ["mesh", "redis"])
def test_sigkill_of_the_harness_leaves_no_process(tmp_path, pubsub):
    proc, history = start(tmp_path, pubsub)
    pids = started_pids(history)
    assert len(pids) == (4 if pubsub == "redis" else 3)
    assert all(alive(pid) for pid in pids)
    proc.kill()
    proc.wait(timeout=10)
    wait_for(lambda: not any(alive(pid) for pid in pids), 10, f"processes {pids} gone")


async def test_sigkill_leaves_no_proxy_on_a_shared_toxiproxy(tmp_path, toxiproxy):
    import trio

    address = f"127.0.0.1:{toxiproxy.client.port}"
    proc, _ = await trio.to_thread.run_sync(start, tmp_path, "mesh", "--toxiproxy", address)
    ours = await toxiproxy.client.proxies()
    assert ours, "the run made its proxies"
    assert any(p.toxics for p in ours.values()), "and its latency toxic is on"
    proc.kill()
    await trio.to_thread.run_sync(proc.wait)
    with trio.fail_after(10):
        while await toxiproxy.client.proxies():  # noqa: ASYNC110 - state of another process
            await trio.sleep(0.05)


def test_a_second_signal_cannot_abort_the_teardown(tmp_path):
    proc, history = start(tmp_path)
    pids = started_pids(history)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert not any(alive(pid) for pid in pids)  # stopped by the harness itself, not later
    results = json.loads((history.parent / "results.json").read_text())
    assert results["validity"] == "interrupted"
