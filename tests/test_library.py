"""The scenario library: every shipped scenario is valid against the reference server, and each
catches the reference defect the README's table says it catches.

`CATCHES` is that table: scenario -> (defect, the check that must report it, a regular
expression its first witness matches: a defect that resends on every rejoin delivers 2 or 3
times depending on how many rejoins the run had). The README's table is checked against it, so
the documentation cannot claim a catch that no test proves. Runs are real (nodes, Toxiproxy, the
swarm) as `harness run` processes, at the scenario's own seed and load: nothing is shortened or
weakened here.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from harness.scenario import Scenario, parse_scenario

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "scenarios"

CATCHES = {
    "quickstart": ("duplicate_after_rejoin", "at_most_once", r"delivered \d+ times"),
    "flaky-network": ("duplicate_after_rejoin", "at_most_once", r"delivered \d+ times"),
    "heartbeat-timeout": ("client:no_rejoin", "rejoin", "was not joined again"),
    "client-bugs": ("duplicate_after_rejoin", "at_most_once", r"delivered \d+ times"),
    "deploy": ("ack_before_persist", "durability", "acknowledged"),
    "rolling-deploy": ("duplicate_after_rejoin", "at_most_once", r"delivered \d+ times"),
    "netsplit": ("resend_after_reconnect", "at_most_once", r"delivered \d+ times"),
    "netsplit-isolated": ("resend_after_reconnect", "at_most_once", r"delivered \d+ times"),
    "load-balancer": ("duplicate_after_rejoin", "at_most_once", r"delivered \d+ times"),
    "slow-consumer": ("broadcast_retried_publish", "at_most_once", r"delivered \d+ times to"),
    "reconnect-storm": ("duplicate_after_rejoin", "at_most_once", r"delivered \d+ times"),
    "publish-retry": ("broadcast_retried_publish", "at_most_once", r"delivered \d+ times to"),
    "channel-state": ("timer_once_per_user", "pushes", "no `tick`"),
    "redis": ("redis_echo", "at_most_once", r"delivered \d+ times"),
    "random": ("duplicate_after_rejoin", "at_most_once", r"delivered \d+ times"),
    "chat": ("duplicate_after_rejoin", "at_most_once", r"delivered \d+ times"),
    "docker": ("duplicate_after_rejoin", "at_most_once", r"delivered \d+ times"),
    "compose": ("duplicate_after_rejoin", "at_most_once", r"delivered \d+ times"),
    "busy-room": ("forget_remote_interest_after_restart", "delivery", "never received"),
    "catch-up": ("catch_up_from_memory", "delivery", "never got"),
}


def engine_for(request: pytest.FixtureRequest, s: Scenario) -> Any:
    """The Docker engine for a scenario on containers (skip or, under CI, fail without it)."""
    if s.cluster.backend == "local":
        return None
    return request.getfixturevalue("docker_engine")


def assert_nothing_left(engine: Any, pids: set[int]) -> None:
    """No container or volume of the runs of these harness processes is left on the engine."""
    if engine is None:
        return
    from harness.cluster._docker import OWNER, RUN

    def owned(labels: dict[str, str] | None) -> bool:
        return (labels or {}).get(OWNER, "").split(":")[0] in {str(p) for p in pids}

    left = [c for c in engine.containers.list(all=True, filters={"label": RUN}) if owned(c.labels)]
    left += [v for v in engine.volumes.list(filters={"label": RUN}) if owned(v.attrs["Labels"])]
    assert left == []


def load(name: str):
    path = LIBRARY / f"{name}.yaml"
    return parse_scenario(path.read_text(), str(path))


def test_the_library_is_the_table():
    shipped = {p.stem for p in LIBRARY.glob("*.yaml")}
    assert shipped == set(CATCHES), "every scenario needs its catch (and the README its row)"
    assert len(shipped) >= 14
    for name in shipped:
        assert load(name).description, f"{name} says what it proves"


def test_the_readme_table_says_what_the_tests_prove():
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `scenarios/([\w-]+)\.yaml` \| .*? \| `([\w:]+)` ", readme, re.M))
    assert rows == {name: defect for name, (defect, _, _) in CATCHES.items()}


# Scenarios whose two runs may go at once: faults on links and clients only, a few dozen
# clients. Where nodes are killed or restarted, the restarts and reconnect storms of two runs at
# once saturate 2 cores (measured: deploy's losses 72 alone, 212 beside its twin; acknowledged
# writes 479 and 359), which changes what the run exercises even when the verdict stands; those
# go one after the other, as does the storm.
TOGETHER = {
    "flaky-network",
    "client-bugs",
    "netsplit",
    "netsplit-isolated",
    "slow-consumer",
    "publish-retry",
}


async def harness_run(out: Path, name: str, *sets: str) -> tuple[int, dict[str, Any], int]:
    """`harness run` of a library scenario as its own process: exit code, results.json, pid."""
    argv = [sys.executable, "-m", "harness", "run", str(LIBRARY / f"{name}.yaml")]
    argv += ["--out", str(out), *(f"--set={s}" for s in sets)]
    process = await trio.lowlevel.open_process(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT
    )
    assert process.stderr is not None
    try:
        stderr = b"".join([chunk async for chunk in process.stderr])
        code = await process.wait()
    finally:
        with trio.CancelScope(shield=True):
            if process.poll() is None:  # the test was cancelled: stop the run like Ctrl-C
                process.send_signal(signal.SIGINT)
                await process.wait()
    return code, _results(out, stderr), process.pid


def _check(results: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in results["checks"] if c["name"] == name)
    return found


def _results(out: Path, stderr: bytes) -> dict[str, Any]:
    found = list(out.glob("*/*/results.json"))
    assert found, stderr.decode(errors="replace")[-2000:]
    results: dict[str, Any] = json.loads(found[0].read_text())
    return results


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CATCHES))
async def test_each_scenario_is_valid_and_catches_its_defect(tmp_path, request, name):
    """Two real runs at the scenario's own seed, load and length, each a `harness run` process:
    on the correct server every check is valid (exit 0); with the table's defect on, the named
    check is invalid and its first witness names the symptom (exit 1). Both at once where
    `TOGETHER` allows; a run that could not judge because of the other is made again alone."""
    defect, check, symptom = CATCHES[name]
    engine = engine_for(request, load(name))
    broken = "clients.rejoin=false" if defect == "client:no_rejoin" else f"cluster.bugs=[{defect}]"
    runs: dict[str, tuple[int, dict[str, Any], int]] = {}
    pids: set[int] = set()

    async def run(key: str, *sets: str) -> None:
        runs[key] = await harness_run(tmp_path / key, name, *sets)
        pids.add(runs[key][2])

    if name not in TOGETHER:
        await run("correct")
        await run("broken", broken)
    else:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, "correct")
            nursery.start_soon(run, "broken", broken)
        # Two runs at once may load the machine enough that a run cannot judge (its distress
        # makes a verdict `unknown`, never valid or invalid): a run that did not reach its
        # verdict and was in distress is made again on its own.
        for key, sets, reached in (
            ("correct", (), lambda r: r["validity"] == "valid"),
            ("broken", (broken,), lambda r: _check(r, check)["validity"] == "invalid"),
        ):
            results = runs[key][1]
            if not reached(results) and (
                results.get("distress") or results["validity"] == "unknown"
            ):
                await run(f"{key}-alone", *sets)
                runs[key] = runs.pop(f"{key}-alone")
    assert_nothing_left(engine, pids)

    code, results, _ = runs["correct"]
    flagged = {
        c["name"]: (c["validity"], c.get("error"), [w["problem"] for w in c["witnesses"][:3]])
        for c in results["checks"]
        if c["validity"] != "valid"
    }
    assert not flagged, f"{name}: {flagged} ({results.get('error')})"
    assert code == 0, (results.get("validity"), results.get("error"), results.get("warnings"))

    code, results, _ = runs["broken"]
    caught = _check(results, check)
    assert caught["validity"] == "invalid", (caught["summary"], results)
    first = caught["witnesses"][0]["problem"]
    assert re.search(symptom, first), first
    assert code == 1


def test_the_readme_fault_table_is_the_registry():
    from harness.faults import KINDS

    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)`(?: \(needs `for`\))? \| (.*?) \| (.*) \|$", readme, re.M)
    table = {kind: (keys, text) for kind, keys, text in rows if kind in KINDS}
    for name, kind in KINDS.items():
        fields = [
            f.alias or k
            for k, f in kind.model_fields.items()
            if k not in ("at", "kind", "duration")
        ]
        assert table.get(name) == (", ".join(f"`{f}`" for f in fields), kind.description()), name


def test_the_readme_names_every_scenario_key():
    import json

    schema = json.loads((LIBRARY / "scenario.schema.json").read_text())
    readme = (ROOT / "README.md").read_text()
    sections = [schema, *schema["$defs"].values()]
    keys = {k for section in sections for k in (section.get("properties") or {})}
    missing = sorted(k for k in keys if not re.search(rf"\b{re.escape(k)}\b", readme))
    assert not missing, f"README says nothing of {missing}"


def test_the_readme_scenarios_validate():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(name: .*?)```", readme, re.S)
    tutorial = re.findall(r"<<'EOF'\n(name: .*?)EOF\n", readme, re.S)
    assert len(blocks) >= 1
    assert len(tutorial) == 1
    for text in blocks + tutorial:
        parse_scenario(text, "README.md")
