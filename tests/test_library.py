"""The scenario library: every shipped scenario is valid against the reference server, and each
catches the reference defect the README's table says it catches.

`CATCHES` is that table: scenario -> (defect, the check that must report it, a regular
expression its first witness matches: a defect that resends on every rejoin delivers 2 or 3
times depending on how many rejoins the run had). The README's table is checked against it, so
the documentation cannot claim a catch that no test proves. Runs are real (nodes, Toxiproxy, the
swarm), one at a time, at the scenario's own seed and load: nothing is shortened or weakened here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness.runner import RunOptions, run_scenario
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
}


def engine_for(request: pytest.FixtureRequest, s: Scenario) -> Any:
    """The Docker engine for a scenario on containers (skip or, under CI, fail without it)."""
    if s.cluster.backend == "local":
        return None
    return request.getfixturevalue("docker_engine")


def assert_nothing_left(engine: Any) -> None:
    """No container or volume of this process's runs is left on the engine."""
    if engine is None:
        return
    from harness.cluster._docker import OWNER, owner

    label = f"{OWNER}={owner()}"
    assert engine.containers.list(all=True, filters={"label": label}) == []
    assert engine.volumes.list(filters={"label": label}) == []


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


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CATCHES))
async def test_each_scenario_is_valid_on_the_reference_server(tmp_path, request, name):
    engine = engine_for(request, load(name))
    result = await run_scenario(load(name), RunOptions(out=tmp_path))
    assert_nothing_left(engine)
    assert result.error is None, result.error
    flagged = {
        r.name: (r.validity, r.error, [w.problem for w in r.witnesses[:3]])
        for r in result.results
        if r.validity != "valid"
    }
    assert not flagged, f"{name}: {flagged} (run dir {result.run_dir})"
    assert result.exit_code == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CATCHES))
async def test_each_scenario_catches_its_defect(tmp_path, request, name):
    defect, check, symptom = CATCHES[name]
    s = load(name)
    engine = engine_for(request, s)
    if defect == "client:no_rejoin":
        clients = s.clients.model_copy(update={"rejoin": False})
        s = s.model_copy(update={"clients": clients})
    else:
        s = s.model_copy(update={"cluster": s.cluster.model_copy(update={"bugs": (defect,)})})
    result = await run_scenario(s, RunOptions(out=tmp_path))
    assert_nothing_left(engine)
    assert result.error is None, result.error
    by_name = {r.name: r for r in result.results}
    assert by_name[check].validity == "invalid", (by_name[check].summary, result.run_dir)
    assert re.search(symptom, by_name[check].witnesses[0].problem), by_name[check].witnesses[0]
    assert result.exit_code == 1


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
