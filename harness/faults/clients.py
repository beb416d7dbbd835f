"""Client faults, done by the swarm: a client bug closes its socket (`client_close`), the TCP
connection just dies (`client_crash`), the app leaves a topic and joins it again (`client_leave`).

`clients` is a count or a percentage; which clients is drawn from the nemesis's own seeded
stream, and recorded (`client_fault` op) so the checkers know who was hit.
"""

from __future__ import annotations

import random
from typing import Any, Literal

from ..grammar.section import Topology
from ..grammar.units import ClientShare
from ._base import Fault, FaultContext


class ClientFault(Fault):
    """A fault on some clients of the swarm."""

    instant = True
    disruptive = True
    clients: ClientShare = 1

    def target(self) -> str:
        return f"clients:{self.clients}"

    @classmethod
    def draw(cls, rng: random.Random, topology: Topology, length: float) -> dict[str, Any]:
        return {"clients": "10%"}

    async def apply(self, ctx: FaultContext) -> None:
        chosen = ctx.choose_clients(self.clients)
        ctx.record(
            "client_fault", {"id": ctx.fault_id, "kind": self.kind_name(), "clients": chosen}
        )
        await ctx.client_fault(self.kind_name(), chosen, self.duration)


class ClientClose(ClientFault):
    """a client bug closes the socket of `clients` clients (a count or N%)"""

    kind: Literal["client_close"] = "client_close"


class ClientCrash(ClientFault):
    """the TCP connection of `clients` clients just dies"""

    kind: Literal["client_crash"] = "client_crash"


class ClientLeave(ClientFault):
    """`clients` clients leave their first topic and join it again after `for`"""

    instant = False
    disruptive = False
    kind: Literal["client_leave"] = "client_leave"


CLIENT_FAULTS: tuple[type[Fault], ...] = (ClientClose, ClientCrash, ClientLeave)
