"""Testing your own app with YAML only: the `app:` contract and the node's `env`/`health`/`ready`,
driven against the reference server's second contract (`--app chat`: its own socket path and
token, `chat:*`, a nick on join, `post`/`posted` with a nested id, messages over HTTP, no /stats).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import InvalidScenario
from harness.run.rundir import read_history
from harness.scenario import dig, parse_scenario, render

ROOT = Path(__file__).parent.parent
CHAT = (ROOT / "scenarios" / "chat.yaml").read_text()
SHORT = (
    CHAT.replace("duration: 16s", "duration: 7s")
    .replace("count: 24", "count: 9")
    .replace("nodes: 3", "nodes: 2")
    .replace(
        """  - {at: 3s, for: 3s, kind: partition, groups: [[n1], [n2, n3]]}
  - {at: 8s, kind: kill, node: n2, restart_after: 1s}
  - {at: 12s, kind: restart, node: n3}""",
        "  - {at: 2s, kind: kill, node: n2, restart_after: 500ms}",
    )
)


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=240
    )


def run(tmp_path: Path, text: str, name: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    scenario = tmp_path / f"{name}.yaml"
    scenario.write_text(text)
    out = tmp_path / name
    result = harness("run", str(scenario), "--out", str(out))
    runs = sorted(out.glob("*/*/results.json"))
    return result, json.loads(runs[-1].read_text()) if runs else {}


def test_templates_render_typed_and_dotted_paths_dig():
    payload = {"msg": {"id": "{id}", "text": "{body} from {publisher}", "n": "{seq}"}}
    out = render(payload, {"id": "r1-p1-3", "body": "hi", "publisher": "p1", "seq": 3})
    assert out == {"msg": {"id": "r1-p1-3", "text": "hi from p1", "n": 3}}
    assert dig(out, "msg.id") == "r1-p1-3"
    assert dig(out, "msg.nope.deeper") is None


@pytest.mark.parametrize(
    ("yaml_text", "where", "message"),
    [
        (
            "app: {join: {payload: {nick: '{clinet}'}}}",
            "app.join.payload",
            "no placeholder {clinet}",
        ),
        ("app: {publish: {payload: {body: '{body}'}}}", "app.publish.payload", "must carry {id}"),
        ("app: {read: {http: {url: 'http://{host}/{id}'}}}", "app.read.http.url", "{id}"),
        ("app: {read: {}}", "app.read", "exactly one of push and http"),
        ("cluster: {command: 'run {nod}'}", "cluster.command", "did you mean {node}?"),
        ("cluster: {env: {A: '{prot}'}}", "cluster.env", "did you mean {port}?"),
        ("cluster: {health: {path: health}}", "cluster.health.path", "should match"),
    ],
)
def test_contract_keys_are_validated_with_their_location(yaml_text, where, message):
    with pytest.raises(InvalidScenario) as caught:
        parse_scenario(f"name: x\nduration: 5s\n{yaml_text}\n", "s.yaml")
    text = str(caught.value)
    assert "s.yaml:3:" in text
    assert where in text
    assert message in text


def test_read_none_leaves_durability_unknown():
    scenario = parse_scenario("name: x\nduration: 5s\napp: {read: none}\n", "s.yaml")
    assert scenario.app.read == "none"


def test_two_runs_on_one_persistent_store_are_both_valid(tmp_path: Path):
    """The whole chat scenario (3 nodes; partition, kill, restart) twice on one store: the
    second run's ids carry its own run id, so nothing is taken for a duplicate."""
    store = tmp_path / "shared.sqlite"
    text = CHAT.replace("--store {store}", f"--store sqlite:///{store}")
    first, one = run(tmp_path, text, "first")
    second, two = run(tmp_path, text, "second")
    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert one["validity"] == two["validity"] == "valid"
    by_name = {c["name"]: c for c in two["checks"]}
    assert by_name["durability"]["summary"]["acknowledged"] > 0
    assert by_name["delivery"]["summary"]["delivered"] > 0
    (history,) = (tmp_path / "second").glob("*/*/history.jsonl")
    ops = [json.loads(op.to_json()) for op in read_history(history)]
    kinds = {o["value"]["kind"] for o in ops if o["f"] == "fault" and o["type"] == "invoke"}
    assert kinds == {"partition", "kill", "restart"}


def test_the_zoo_defect_is_caught_under_the_other_contract(tmp_path: Path):
    text = SHORT.replace("{bug_args}", "--bug duplicate_after_rejoin")
    result, results = run(tmp_path, text, "dup")
    assert result.returncode == 1, result.stdout + result.stderr
    by_name = {c["name"]: c for c in results["checks"]}
    assert by_name["at_most_once"]["validity"] == "invalid"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (('join: {payload: {nick: "{client}"}}', "join: {payload: {}}"), "nick required"),
        (("params: {token: chat-ci-token}", "params: {token: wrong}"), "rejected with HTTP 403"),
    ],
    ids=["join-refused", "socket-refused"],
)
def test_a_refusing_app_fails_the_run_at_once_with_its_reason(tmp_path: Path, change, reason):
    result, results = run(tmp_path, SHORT.replace(*change), "refused")
    assert result.returncode == 3, result.stdout + result.stderr
    assert reason in result.stderr
    assert results["validity"] == "error"
    assert "Traceback" not in result.stderr
