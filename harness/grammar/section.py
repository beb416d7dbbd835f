"""What every section of the scenario grammar shares: the validation context its cross-field rules
read (the cluster's `Topology` and the run's length: `Grammar`, given by `parse_scenario`), and
the `Section` base (unknown keys refused, frozen). Pure; the sections live with their domains
(`faults`, `checkers`, `contract`, `behaviour`, `scenario`) and import this.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationInfo


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@dataclass(frozen=True, slots=True)
class Topology:
    """What the cross-field rules and random draws know of the cluster."""

    nodes: tuple[str, ...]
    links: tuple[str, ...]
    pubsub: str = "mesh"
    network: str = "shared"  # "isolated": node links are packet rules, not proxies; "hosts":
    # the nodes are on SSH hosts (`backend: ssh`), talk directly, packet rules on each host
    shared_hosts: bool = False  # SSH hosts that share an address: no rule can tell them apart

    @property
    def redis(self) -> bool:
        return self.pubsub == "redis"

    @property
    def isolated(self) -> bool:
        return self.network == "isolated"

    @property
    def hosts(self) -> bool:
        return self.network == "hosts"

    @property
    def proxied(self) -> tuple[str, ...]:
        """The links that pass through Toxiproxy: all of them on a shared network, the client
        links only under `network: isolated` or on SSH hosts (nodes talk directly; rules cut
        them)."""
        if self.isolated or self.hosts:
            return tuple(link for link in self.links if link.startswith("clients->"))
        return self.links


@dataclass(frozen=True, slots=True)
class Grammar:
    """The validation context: the cluster and the run's length, when they could be read."""

    topology: Topology
    duration: float | None


def _context(info: ValidationInfo) -> Grammar | None:
    context = info.context
    if isinstance(context, Grammar):
        return context
    return None


def grammar_of(info: ValidationInfo) -> Grammar | None:
    """The validation context, when `parse_scenario` gave one."""
    return _context(info)
