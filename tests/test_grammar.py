"""The scenario grammar written once: the committed schema accepts every shipped scenario (checked
by an independent Draft-7 validator), and every shipped scenario resolves to the same faults as
before the grammar moved to typed models (`tests/data/resolved-faults.json`, recorded from the
old code), and a resolved scenario reads back to itself."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.scenario import fault_data, parse_scenario, resolve, resolved_yaml, scenario_schema

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "scenarios" / "scenario.schema.json"
SHIPPED = sorted((ROOT / "scenarios").rglob("*.yaml"))
GOLDEN = json.loads((ROOT / "tests" / "data" / "resolved-faults.json").read_text())


def test_the_committed_schema_is_what_the_models_generate():
    assert json.loads(SCHEMA.read_text()) == scenario_schema()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_committed_schema_accepts_every_shipped_scenario(path):
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(yaml.safe_load(path.read_text()))
    ]
    assert errors == []


def test_the_schema_rejects_what_the_grammar_rejects():
    validator = jsonschema.Draft7Validator(scenario_schema())
    bad = [
        {"name": "x"},  # no duration
        {"name": "x", "duration": "5s", "durashun": 1},
        {"name": "x", "duration": "5s", "faults": [{"at": "1s", "kind": "explode"}]},
        {
            "name": "x",
            "duration": "5s",
            "faults": [{"at": "1s", "kind": "kill", "link": "clients->n1"}],
        },
        {"name": "x", "duration": "5s", "cluster": {"pubsub": "nats"}},
    ]
    for document in bad:
        assert not validator.is_valid(document), document


@pytest.mark.parametrize("key", sorted(GOLDEN))
def test_every_scenario_resolves_to_the_same_faults_as_before(key):
    name, _, seed = key.rpartition("@")
    scenario = parse_scenario((ROOT / name).read_text(), name)
    resolved = resolve(scenario, int(seed))
    assert [fault_data(f) for f in resolved.faults] == GOLDEN[key]


@pytest.mark.parametrize("key", sorted(GOLDEN))
def test_a_resolved_scenario_reads_back_to_itself(key):
    name, _, seed = key.rpartition("@")
    resolved = resolve(parse_scenario((ROOT / name).read_text(), name), int(seed))
    again = parse_scenario(resolved_yaml(resolved), "resolved.yaml")
    assert again.faults == resolved.faults
    assert again.seed == resolved.seed
    assert resolve(again, again.seed).faults == resolved.faults
