"""The first-screen sentence for a check that did not hold, from its witnesses alone."""

from __future__ import annotations

from harness.checkers import CheckResult, Limit
from harness.report import headline, headlines
from harness.witness import Witness

KILL = {"id": "f1", "kind": "kill", "target": "n2", "start": 1.5, "end": 2.7}


def dup(client: str, at: float, node: str = "n2") -> Witness:
    deliveries = [{"time": 0.5, "node": node}, {"time": at, "node": node}]
    return Witness(
        f"p1-1 delivered 2 times to {client} on room:1",
        at,
        client,
        "room:1",
        {"deliveries": deliveries, "faults": [KILL]},
    )


def test_duplicates_after_a_kill_name_the_clients_their_node_and_the_fault():
    result = CheckResult(
        "at_most_once",
        "invalid",
        {"violations": 270},
        (dup("c3", 3.1), dup("c12", 3.9), dup("c6", 3.2), dup("c9", 3.3)),
    )
    assert headline(result) == (
        "270 messages delivered again; the 4 shown: to 4 clients (c3, c6, c9, ...) of n2,"
        " each 0.4 s to 1.2 s after `kill n2` ended (1.5 s to 2.7 s)"
    )


def test_a_loss_outside_every_fault_and_one_client():
    lost = Witness("c1 never received p1-3", 4.0, "c1", "room:1", {"node": "n1", "faults": []})
    result = CheckResult("delivery", "invalid", {"violations": 1}, (lost,))
    assert headline(result) == (
        "1 message lost outside the faults, to c1 of n1, outside every fault window"
    )


def test_during_a_partition_and_a_room_without_clients():
    split = {"id": "f1", "kind": "partition", "target": "n1|n2", "start": 1.0, "end": 5.0}
    missing = Witness(
        "p1-7 was acknowledged on room:2 but is not in the store",
        2.0,
        None,
        "room:2",
        {"faults": [split]},
    )
    result = CheckResult("durability", "invalid", {"violations": 1}, (missing,))
    assert headline(result) == (
        "1 acknowledged write missing, on room:2, during `partition n1|n2` (1.0 s to 5.0 s)"
    )


def test_limits_reasons_and_valid_checks():
    slow = CheckResult(
        "latency",
        "invalid",
        {},
        (Witness("p99 (steady) 612 ms > 500 ms"),),
        limits=(Limit("p99 (steady)", 0.612, 0.5),),
    )
    assert headline(slow) == "p99 (steady) 612 ms > 500 ms"
    unknown = CheckResult("rejoin", "unknown", error="the load generator fell 6.8 s behind")
    assert headline(unknown) == "the load generator fell 6.8 s behind"
    fine = CheckResult("order", "valid")
    assert headlines([fine, unknown]) == ["rejoin: the load generator fell 6.8 s behind"]
