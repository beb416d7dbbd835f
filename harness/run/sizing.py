"""A run sized for its file descriptors: where each Toxiproxy proxy goes (`placement_of`, the
scenario's links and clients through `harness.infra.descriptors`), and after the run which of the
processes the harness started ran out (`record_exhausted`, an `exhausted` op for the checks)."""

from __future__ import annotations

from .._clock import RunClock
from ..cluster import plan_links
from ..grammar.behaviour import SwarmPlan
from ..history import Op
from ..infra.descriptors import Placement, clients_per_node, exhausted, place
from ..scenario import Scenario
from .rundir import HistoryWriter, RunDir


def placement_of(scenario: Scenario, plan: SwarmPlan, limit: int, *, spread: bool) -> Placement:
    """Where each proxy goes so no toxiproxy-server runs out of descriptors (`descriptors`);
    all on one server when the run may not spread them (the user's server)."""
    spec = scenario.cluster
    links = [
        (link.name, "clients" if link.upstream == "node" else "node", link.home)
        for link in plan_links(spec.node_names, spec.pubsub, spec.topology.network)
    ]
    failover = scenario.clients.on_reconnect != "same_node"
    first = [client.first_node for client in plan.clients]
    clients = clients_per_node(first, spec.node_names, failover)
    return place(links, clients, limit, spread=spread)


def crowded(address: str, placement: Placement) -> str:
    return (
        f"the toxiproxy-server at {address} carries every proxy of this run"
        f" ({placement.explain()}, if its limit is this machine's): if it runs out, clients"
        " fail to connect; without --toxiproxy the run spreads its proxies over servers of its own"
    )


def record_exhausted(run_dir: RunDir, writer: HistoryWriter, clock: RunClock) -> None:
    """Every process the harness started whose log says it ran out of file descriptors (read
    once they have all stopped), so the verdict can name that cause."""
    for path in sorted(run_dir.logs.glob("*.log")):
        errors = exhausted(path)
        if errors:
            value = {"process": path.stem, "log": f"logs/{path.name}", "errors": errors}
            writer.record(Op(clock.now(), "runner", "info", "exhausted", value))
