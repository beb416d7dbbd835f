"""A scenario's clients, planned: `plan_clients(scenario, endpoints, run_id) -> SwarmPlan`.

Pure and seeded: from the scenario's seed alone, each client's topics (a sample of
`topics_per_client` of the scenario's topics) and first node (round robin or random, among
`clients.nodes`), then the publishers (`p1`, `p2`, ...: joined to every topic, spread over every
node, correct clients). Each role's `Behaviour` is the scenario's sections themselves
(`harness.grammar.behaviour`), so a new client setting needs no line here.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ..grammar.behaviour import Behaviour, ClientPlan, Endpoint, SwarmPlan
from ._model import Scenario


def plan_clients(scenario: Scenario, endpoints: Sequence[Endpoint], run_id: str = "") -> SwarmPlan:
    """Every client's and publisher's plan, decided by the seed alone."""
    clients, names = scenario.clients, scenario.cluster.node_names
    rng = random.Random(scenario.seed)
    count = len(names)  # the endpoints may come later (`model_copy`): the proxies need the plan
    starts = (
        list(range(count)) if clients.nodes is None else [names.index(n) for n in clients.nodes]
    )
    plans: list[ClientPlan] = []
    for i in range(clients.count):
        topics = tuple(sorted(rng.sample(clients.topics, clients.topics_per_client)))
        pick = i % len(starts) if clients.placement == "round_robin" else rng.randrange(len(starts))
        plans.append(ClientPlan(id=f"c{i + 1}", topics=topics, first_node=starts[pick]))
    for k in range(scenario.workload.publishers):
        plans.append(
            ClientPlan(
                id=f"p{k + 1}", role="publisher", topics=clients.topics, first_node=k % count
            )
        )
    behaviour = Behaviour(
        clients=clients, workload=scenario.workload, app=scenario.app, run_id=run_id
    )
    return SwarmPlan(
        endpoints=tuple(endpoints),
        behaviours={"client": behaviour, "publisher": behaviour.as_publisher()},
        clients=tuple(plans),
        seed=scenario.seed,
    )
