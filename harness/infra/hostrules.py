"""Packet rules on SSH hosts: node links cut where the nodes run, as Jepsen cuts them with
iptables on each node.

Each host gets one nftables table of the run's (`inet chaos_<run>`) with an input chain; cutting
`n1->n2` adds `ip saddr <n1's address> counter drop` on n2's host, so n1's packets never reach
n2 (one way; a partition cuts both). Every rule has a counter: what it dropped is the fault's
`packets_dropped`, and a rule that dropped nothing says so (`harness.run.nemesis`). The same
interface as the hub's rules under `network: isolated` (`harness.infra.netns.Hub`: `cut`,
`lose`, and a rule's `dropped` and `remove`), so the nemesis does not care where the rule is.

The rules need the privilege the host gives (root, or passwordless sudo: `Ssh.privilege`),
checked when the run opens them, before anything is cut. The table is removed at the end, and
if the harness dies: a keeper on each host (`sleep` under `Ssh.start`) deletes it when its
channel closes.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import trio

from ..errors import ClusterError
from .netns import counted
from .ssh import Ssh, SshError

CHAIN = "input"


@dataclass(eq=False)
class HostRule:
    """One rule in a host's table."""

    ssh: Ssh
    table: str
    handle: int
    what: str

    async def dropped(self) -> int:
        """Packets this rule has dropped so far."""
        text = await self.ssh.run(
            ["nft", "-a", "list", "chain", "inet", self.table, CHAIN], privileged=True
        )
        return counted(text, self.handle)

    async def remove(self) -> None:
        with suppress(SshError):
            await self.ssh.run(
                ["nft", "delete", "rule", "inet", self.table, CHAIN, "handle", str(self.handle)],
                privileged=True,
            )


@dataclass(eq=False)
class HostRules:
    """The run's packet rules on its nodes' hosts: each node's connection and address."""

    table: str
    hosts: dict[str, tuple[Ssh, str]] = field(default_factory=dict)

    def address(self, who: str) -> str:
        return self.hosts[who][1] if who in self.hosts else who

    async def _rule(self, source: str, target: str, what: str, tail: Sequence[str]) -> HostRule:
        if target not in self.hosts:
            raise ClusterError(f"no host of the run is {target!r}: {what} cannot be cut there")
        ssh, _ = self.hosts[target]
        command = ["nft", "--echo", "--handle", "add", "rule", "inet", self.table, CHAIN]
        out = await ssh.run([*command, "ip", "saddr", self.address(source), *tail], privileged=True)
        found = re.search(r"# handle (\d+)", out)
        if found is None:
            raise ClusterError(f"nft did not say the handle of the rule {what}: {out[:200]}")
        return HostRule(ssh, self.table, int(found.group(1)), what)

    async def cut(self, source: str, target: str) -> HostRule:
        """Drop every packet from `source` to `target` (nodes), on `target`'s host."""
        return await self._rule(source, target, f"{source}->{target}", ["counter", "drop"])

    async def lose(self, source: str, target: str, percent: int) -> HostRule:
        """Drop `percent` of the packets from `source` to `target`, at random."""
        tail = ["numgen", "random", "mod", "100", "<", str(percent), "counter", "drop"]
        return await self._rule(source, target, f"{percent}% of {source}->{target}", tail)


@asynccontextmanager
async def open_host_rules(
    nodes: Mapping[str, tuple[Ssh, str]], run: str, logs: Path
) -> AsyncIterator[HostRules]:
    """The run's table on every host of `nodes` (node -> its connection and address), made
    once the privilege is checked; removed at the end, or by its keeper if the harness dies."""
    addresses = [address for _, address in nodes.values()]
    if len(set(addresses)) != len(addresses):
        raise ClusterError(
            "node links between SSH hosts are cut by packet rules on each host's address, and"
            " two nodes share one here: give each node a host of its own"
        )
    table = "chaos_" + re.sub(r"[^A-Za-z0-9_]", "_", run)[:40]
    rules = HostRules(table, dict(nodes))
    made: list[Ssh] = []
    try:
        for ssh in {id(ssh): ssh for ssh, _ in nodes.values()}.values():
            try:
                await ssh.privilege()
            except SshError as exc:
                raise ClusterError(str(exc)) from None
            await ssh.run(["nft", "add", "table", "inet", table], privileged=True)
            made.append(ssh)
            hook = "{ type filter hook input priority 0; policy accept; }"
            await ssh.run(["nft", "add", "chain", "inet", table, CHAIN, hook], privileged=True)
            await ssh.start(
                ["sleep", "infinity"],
                logs / f"rules.{ssh.host.host}.{ssh.host.port}.log",
                cleanup=ssh.privileged(["nft", "delete", "table", "inet", table]),
            )
        yield rules
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(15):
            for ssh in made:
                with suppress(SshError):
                    await ssh.run(["nft", "delete", "table", "inet", table], privileged=True)
