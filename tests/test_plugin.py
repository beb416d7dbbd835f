"""The pytest plugin, through pytest itself (`pytester`, a child pytest per test): scenarios as
items against real nodes and Toxiproxy, the failure text, bad files, and the fixtures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SCENARIO = """\
name: {name}
duration: 4s
settle: 1s
cluster: {{nodes: 2{bugs}}}
clients:
  count: 4
  topics: ["room:1"]
  timings:
    reconnect_after: [10ms, 50ms, 100ms]
    rejoin_after: [100ms, 200ms]
    heartbeat_interval: 1s
    timeout: 3s
workload: {{publishers: 2, rate: 40/s}}
faults:
  - {{at: 1500ms, kind: kill, node: n2, restart_after: 500ms}}
"""


def scenario(name: str, bugs: str = "") -> str:
    return SCENARIO.format(name=name, bugs=f", bugs: [{bugs}]" if bugs else "")


def test_off_unless_asked_and_only_scenarios_collected(pytester):
    pytester.makefile(".yaml", ok=scenario("ok"))
    pytester.makefile(".yml", compose="services:\n  app: {image: x}\n")
    assert "ok.yaml" not in pytester.runpytest("--collect-only", "-q").stdout.str()
    listing = pytester.runpytest("--chaos", "--collect-only", "-q", "--chaos-repeat", "3")
    listing.stdout.fnmatch_lines(["ok.yaml::ok[[]seed0[]]", "ok.yaml::ok[[]seed1[]]", "*seed2*"])
    assert "compose" not in listing.stdout.str()
    again = pytester.runpytest("--chaos", "--collect-only", "-q", "--chaos-seed", "7", "ok.yaml")
    again.stdout.fnmatch_lines(["ok.yaml::ok[[]seed7[]]"])


def test_a_bad_scenario_is_a_collection_error_with_its_line(pytester):
    pytester.makefile(".yaml", bad="name: bad\nduration: 4s\nclients: {count: -1}\n")
    result = pytester.runpytest("--chaos", "bad.yaml")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*bad.yaml:3:*clients.count*"])


@pytest.mark.slow
def test_a_valid_scenario_passes_and_a_defect_fails_with_its_witness(pytester, tmp_path):
    pytester.makefile(
        ".yaml", ok=scenario("ok"), broken=scenario("broken", "duplicate_after_rejoin")
    )
    out = tmp_path / "runs"
    result = pytester.runpytest_subprocess(
        "--chaos", "--chaos-out", str(out), "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*invalid: seed 0, exit 1*",
            "*at_most_once *invalid*",
            "*at_most_once witness:*delivered * times*",
            f"*run directory: {out}/broken/*",
            "*report: *report.html*",
        ]
    )
    assert sorted(p.name for p in out.iterdir()) == ["broken", "ok"]


@pytest.mark.slow
def test_fixtures_cluster_client_fault_and_run(pytester):
    pytester.makefile(".yaml", kill=scenario("kill"))
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(
        test_mine="""
import pytest

@pytest.mark.chaos(scenario="name: mine\\nduration: 1h\\ncluster: {nodes: 2}\\n"
                   "clients: {count: 2, topics: [room:1]}\\nworkload: {publishers: 0}\\n")
async def test_my_client_survives_a_kill(chaos_cluster, chaos_client):
    assert set(chaos_cluster.urls) == {"n1", "n2"}
    mine = await chaos_client(node="n2", topics=["room:1"])
    other = await chaos_client(node="n1", topics=["room:1"])
    fault = await chaos_cluster.apply("{kind: kill, node: n2, restart_after: 300ms}")
    await chaos_cluster.stopped(fault)
    await mine.wait_joined(timeout=10)
    sent = other.publish("room:1")
    import trio
    with trio.fail_after(10):
        while sent not in mine.received("room:1"):
            await trio.sleep(0.05)
    assert [o.f for o in mine.ops()].count("disconnect") >= 1
    await chaos_cluster.wait_joined()
    verdict = chaos_cluster.assess(["at_most_once", "no_phantom", "rejoin"])
    assert verdict.validity == "valid", verdict.results

async def test_a_whole_run(chaos_run):
    result = await chaos_run("kill.yaml")
    assert result.outcome == "valid", result.results
    assert {r.name for r in result.results} >= {"at_most_once", "rejoin"}
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def _readme_fixture_example() -> tuple[str, str]:
    """The README's fixture example as written: its `my-cluster.yaml` and its test module."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("Fixtures for your own tests") :]
    yaml_text = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    return yaml_text, python


@pytest.mark.slow
@pytest.mark.parametrize("trio_mode", ["true", "false"])
def test_scenario_items_and_the_readme_fixtures_run_together(pytester, trio_mode):
    """One pytest run, one configuration: `--chaos` items beside fixture tests. With `trio_mode
    = true` (what the README says) pytest-trio's automark used to end the session in an
    INTERNALERROR on the scenario items; the README's example passes as written."""
    yaml_text, python = _readme_fixture_example()
    pytester.makefile(".yaml", **{"my-cluster": yaml_text})
    if trio_mode == "false":  # without trio_mode, the module marks its tests itself
        python = "import pytest\npytestmark = pytest.mark.trio\n" + python
    pytester.makepyfile(test_example=python)
    pytester.makeini(f"[pytest]\ntrio_mode = {trio_mode}\n")
    result = pytester.runpytest_subprocess(
        "--chaos", "my-cluster.yaml", "test_example.py", "-p", "no:cacheprovider"
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=3)
