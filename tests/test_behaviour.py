"""Client behaviour in one home (`harness.grammar.behaviour`): a scenario's plan survives the hand-off
to a worker process unchanged, whatever the scenario says (Hypothesis over generated `clients:`,
`workload:` and `app:` sections), and publishers run as correct clients."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.grammar.behaviour import ClientsSpec, Endpoint, WorkerSpec
from harness.scenario import parse_scenario, plan_clients

durations = st.sampled_from(["10ms", "50ms", "250ms", "1s", "2s", "30s"])
names = st.text("abcdefghij:_-", min_size=1, max_size=8)


@st.composite
def scenarios(draw: st.DrawFn) -> str:
    nodes = draw(st.integers(1, 4))
    topics = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    clients = {
        "count": draw(st.integers(1, 40)),
        "topics": topics,
        "topics_per_client": draw(st.integers(1, len(topics))),
        "placement": draw(st.sampled_from(["round_robin", "random"])),
        "on_reconnect": draw(st.sampled_from(["same_node", "next_node", "random_node"])),
        "rejoin": draw(st.booleans()),
        "duplicate_join": draw(st.booleans()),
        "timings": {
            "reconnect_after": draw(st.lists(durations, min_size=1, max_size=4)),
            "rejoin_after": draw(st.lists(durations, min_size=1, max_size=4)),
            "heartbeat_interval": draw(durations),
            "timeout": draw(durations),
        },
    }
    if draw(st.booleans()):
        clients["nodes"] = [f"n{i}" for i in range(1, draw(st.integers(1, nodes)) + 1)]
    workload = {
        "publishers": draw(st.integers(0, 5)),
        "rate": draw(st.sampled_from(["10/s", "600/m", 3])),
        "retries": draw(st.integers(0, 3)),
    }
    if draw(st.booleans()):
        workload["publish_timeout"] = draw(durations)
    app = {
        "socket": {"params": {"token": draw(st.sampled_from(["t", "{client}-{run}"]))}},
        "join": {"payload": {"nick": "{client}", "room": "{topic}"}},
        "publish": {"event": "post", "payload": {"msg": {"id": "{id}", "n": "{seq}"}}},
        "deliver": {"event": "posted", "id": "msg.id"},
    }
    data = {
        "name": "g",
        "duration": "10s",
        "seed": draw(st.integers(0, 2**31)),
        "cluster": {"nodes": nodes},
        "clients": clients,
        "workload": workload,
        "app": app if draw(st.booleans()) else {},
    }
    return yaml.safe_dump(data)


@settings(max_examples=150, deadline=None)
@given(text=scenarios(), run=st.sampled_from(["", "r1a2b3c"]))
def test_a_plan_crosses_to_a_worker_unchanged(text, run):
    scenario = parse_scenario(text)
    endpoints = [
        Endpoint(n, f"ws://127.0.0.1:{4000 + i}/socket")
        for i, n in enumerate(scenario.cluster.node_names)
    ]
    plan = plan_clients(scenario, endpoints, run)
    spec = WorkerSpec(origin=12.5, worker=1, history="h.jsonl", plan=plan)
    back = WorkerSpec.model_validate_json(spec.model_dump_json())
    assert back == spec
    assert back.plan.behaviours["client"].clients.timings == scenario.clients.timings
    assert len(plan.clients) == scenario.clients.count + scenario.workload.publishers


def test_publishers_are_correct_clients_whatever_the_defects():
    scenario = parse_scenario(
        "name: d\nduration: 5s\nclients: {rejoin: false, duplicate_join: true}\n"
        "workload: {publishers: 1, retries: 2}\n"
    )
    plan = plan_clients(scenario, [Endpoint("n1", "ws://x")], "r1")
    client, publisher = plan.behaviours["client"], plan.behaviours["publisher"]
    assert (client.clients.rejoin, client.clients.duplicate_join) == (False, True)
    assert (publisher.clients.rejoin, publisher.clients.duplicate_join) == (True, False)
    defects = {
        name
        for name, field in ClientsSpec.model_fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("defect")
    }
    assert defects == {"rejoin", "duplicate_join", "legacy_close_1000"}
    assert publisher.workload.retries == 2


def test_every_client_fault_kind_has_its_action_in_the_swarm():
    from harness.faults.clients import CLIENT_FAULTS as KINDS
    from harness.swarm._swarm import CLIENT_FAULTS

    assert set(CLIENT_FAULTS) == {kind.kind_name() for kind in KINDS}


def test_a_client_setting_reaches_the_protocol_model_and_publishers_run_without_a_defect():
    from harness._clock import RunClock
    from harness.swarm import SwarmClient

    scenario = parse_scenario(
        "name: l\nduration: 5s\nclients: {legacy_close_1000: true}\nworkload: {publishers: 1}\n"
    )
    plan = plan_clients(scenario, [Endpoint("n1", "ws://x")], "r1")
    spec = WorkerSpec.model_validate_json(
        WorkerSpec(origin=0.0, worker=0, history="h", plan=plan).model_dump_json()
    )
    made = {
        c.id: SwarmClient(c, spec.plan.behaviour(c), spec.plan.endpoints, None, RunClock())  # type: ignore[arg-type]
        for c in spec.plan.clients
    }
    assert made["c1"].model.legacy_close_1000
    assert not made["p1"].model.legacy_close_1000
