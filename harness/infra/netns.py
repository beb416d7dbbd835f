"""Network namespaces for a cluster: a hub and a namespace per node, cut by packet rules.

Facts this rests on (measured here, `research/network.md`): a namespace per node gives every
packet the node's own source address (distinct loopback addresses in one namespace do not: an
Erlang node dials from 127.0.0.1 whatever it listens on); a hub namespace routing between the
nodes' veth pairs carries any protocol (Erlang distribution, epmd, Redis, a database); one
nftables rule in the hub's `forward` chain cuts one direction, its counter says what it dropped,
and deleting it heals; all of it works rootless inside a user namespace. There is no `sch_netem`
in this kernel: packet loss is an nftables rule too (`numgen random`), delay stays Toxiproxy's.

    open_hub(["n1", "n2", "n3"])   the hub (held by a process of its own) and each node's
                                   namespace, node i at 10.201.i.2 behind the hub's 10.201.i.1
    hub.run(argv) / node.run(...)  a command inside (nsenter), `node.argv(...)` to start one
    hub.cut(a, b) -> Rule          drop a->b (a node name or an address); rule.dropped()
    hub.lose(a, b, percent)        drop a share of a->b's packets
    rule.remove()                  heal that rule

Nothing touches the namespace the harness runs in: every command goes through `nsenter` into a
namespace whose identity was checked to differ from ours first; the addresses exist only in the
run's namespaces (the root namespace never gets a route to them). Every namespace dies with the
process that holds it, and the holders are the harness's own children (killed by process group
on the way out, the watchdog's rule for every process the run starts).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from ..errors import ClusterError

SUBNET = "10.201"  # node i: 10.201.i.2, its hub side 10.201.i.1; only inside the run's namespaces
TABLE = "chaos"
CHAIN = "hop"  # (`fwd` is a reserved word in nft)
READY = 5.0  # seconds for a holder to be in its namespace


def _own_netns() -> str:
    return os.readlink("/proc/self/ns/net")


@dataclass(eq=False)
class Namespace:
    """A network namespace, held by a process (`unshare` then sleep) until `close`."""

    name: str
    holder: trio.Process
    user: bool  # inside a user namespace (rootless): nsenter joins it too

    @property
    def pid(self) -> int:
        return self.holder.pid

    def identity(self) -> str:
        """The namespace's identity (`net:[inode]`)."""
        return os.readlink(f"/proc/{self.pid}/ns/net")

    def argv(self, command: Sequence[str]) -> list[str]:
        """`command` run inside this namespace."""
        joins = ["-U", "--preserve-credentials"] if self.user else []
        return ["nsenter", "-t", str(self.pid), *joins, "-n", "--", *command]

    async def run(self, *command: str, check: bool = True) -> str:
        done = await trio.run_process(
            self.argv(command), capture_stdout=True, capture_stderr=True, check=False
        )
        if check and done.returncode != 0:
            raise ClusterError(
                f"in namespace {self.name}: {' '.join(command)} failed:"
                f" {done.stderr.decode(errors='replace').strip()[:400]}"
            )
        return done.stdout.decode(errors="replace")

    async def close(self) -> None:
        with trio.CancelScope(shield=True):
            if self.holder.returncode is None:
                self.holder.kill()
            await self.holder.wait()


async def _hold(name: str, argv: list[str], user: bool, *, besides: str = "") -> Namespace:
    """Start a holder process and wait until it is in a namespace of its own: not ours, and
    not `besides` (the hub's, which a node's holder passes through on its way)."""
    others = {_own_netns(), besides}
    holder = await trio.lowlevel.open_process(
        [*argv, "sleep", "infinity"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    namespace = Namespace(name, holder, user)
    with trio.move_on_after(READY):
        while holder.returncode is None:
            try:
                if os.readlink(f"/proc/{holder.pid}/ns/net") not in others:
                    return namespace
            except OSError:
                pass
            await trio.sleep(0.01)
    await namespace.close()
    raise ClusterError(
        f"cannot make network namespace {name} ({' '.join(argv)} exited with"
        f" {holder.returncode}): the kernel refuses namespaces here (unshare -n, or unshare -rn"
        " without root); `harness doctor` checks it"
    )


@dataclass(eq=False)
class Rule:
    """One nftables rule in the hub's forward chain."""

    hub: Namespace
    handle: int
    what: str

    async def dropped(self) -> int:
        """Packets this rule has dropped so far."""
        text = await self.hub.run("nft", "-a", "list", "chain", "inet", TABLE, CHAIN)
        for line in text.splitlines():
            if line.rstrip().endswith(f"# handle {self.handle}"):
                found = re.search(r"counter packets (\d+)", line)
                return int(found.group(1)) if found else 0
        return 0

    async def remove(self) -> None:
        await self.hub.run(
            "nft", "delete", "rule", "inet", TABLE, CHAIN, "handle", str(self.handle), check=False
        )


@dataclass(eq=False)
class Hub:
    namespace: Namespace
    nodes: dict[str, Namespace] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)

    def address(self, who: str) -> str:
        return self.addresses.get(who, who)

    async def run(self, *command: str, check: bool = True) -> str:
        return await self.namespace.run(*command, check=check)

    async def _rule(self, what: str, tail: Sequence[str]) -> Rule:
        out = await self.run(
            "nft", "--echo", "--handle", "add", "rule", "inet", TABLE, CHAIN, *tail
        )
        found = re.search(r"# handle (\d+)", out)
        if found is None:
            raise ClusterError(f"nft did not say the handle of the rule {what}: {out[:200]}")
        return Rule(self.namespace, int(found.group(1)), what)

    async def cut(self, source: str, target: str) -> Rule:
        """Drop every packet from `source` to `target` (node names or addresses)."""
        a, b = self.address(source), self.address(target)
        return await self._rule(
            f"{source}->{target}", ["ip", "saddr", a, "ip", "daddr", b, "counter", "drop"]
        )

    async def lose(self, source: str, target: str, percent: int) -> Rule:
        """Drop `percent` of the packets from `source` to `target`, at random."""
        a, b = self.address(source), self.address(target)
        tail = [
            "ip",
            "saddr",
            a,
            "ip",
            "daddr",
            b,
            "numgen",
            "random",
            "mod",
            "100",
            "<",
            str(percent),
        ]
        return await self._rule(f"{percent}% of {source}->{target}", [*tail, "counter", "drop"])


def _rootless() -> bool:
    return os.geteuid() != 0


@asynccontextmanager
async def open_hub(names: Sequence[str]) -> AsyncIterator[Hub]:
    """The hub and one namespace per node, wired and routed; all gone on the way out."""
    user = _rootless()
    hub_ns = await _hold(
        "hub", ["unshare", "--net", *(["--user", "--map-root-user"] if user else [])], user
    )
    hub = Hub(hub_ns)
    try:
        await hub_ns.run("ip", "link", "set", "lo", "up")
        await hub_ns.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
        for i, name in enumerate(names, start=1):
            # a node's namespace is made from inside the hub's (its user namespace, rootless)
            node = await _hold(
                name, hub_ns.argv(["unshare", "--net"]), user, besides=hub_ns.identity()
            )
            hub.nodes[name] = node
            hub.addresses[name] = f"{SUBNET}.{i}.2"
            side = f"h{i}"
            await hub_ns.run(
                "ip",
                "link",
                "add",
                side,
                "type",
                "veth",
                "peer",
                "name",
                "e0",
                "netns",
                str(node.pid),
            )
            await hub_ns.run("ip", "addr", "add", f"{SUBNET}.{i}.1/24", "dev", side)
            await hub_ns.run("ip", "link", "set", side, "up")
            for command in (
                ["ip", "link", "set", "lo", "up"],
                ["ip", "addr", "add", f"{SUBNET}.{i}.2/24", "dev", "e0"],
                ["ip", "link", "set", "e0", "up"],
                ["ip", "route", "add", "default", "via", f"{SUBNET}.{i}.1"],
            ):
                await node.run(*command)
        await hub_ns.run("nft", "add", "table", "inet", TABLE)
        await hub_ns.run(
            "nft", "add", "chain", "inet", TABLE, CHAIN, "{ type filter hook forward priority 0; }"
        )
        yield hub
    finally:
        for node in hub.nodes.values():
            await node.close()
        await hub_ns.close()
