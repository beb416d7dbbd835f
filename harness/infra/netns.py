"""Network namespaces for a cluster: a hub and a namespace per node, cut by packet rules.

Facts this rests on (measured here, `research/network.md`): a namespace per node gives every
packet the node's own source address (distinct loopback addresses in one namespace do not: an
Erlang node dials from 127.0.0.1 whatever it listens on); a hub namespace routing between the
nodes' veth pairs carries any protocol (Erlang distribution, epmd, Redis, a database); one
nftables rule in the hub's `forward` chain cuts one direction, its counter says what it dropped,
and deleting it heals; all of it works rootless inside a user namespace. There is no `sch_netem`
in this kernel: packet loss is an nftables rule too (`numgen random`), delay stays Toxiproxy's.

    open_hub(["n1", "n2", "n3"])   the hub (held by a process of its own, or this process's
                                   own namespace when the harness re-entered itself there) and
                                   each node's namespace (network and host name), node i at
                                   10.201.i.2 behind the hub's 10.201.i.1; services the hub runs
                                   (Redis) at 10.201.0.1
    hub_command(argv)              the harness's own command, re-entered in a new namespace that
                                   becomes the run's hub (`harness run` with network: isolated)
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
SERVICES = f"{SUBNET}.0.1"  # the hub's own address for what the nodes reach in it (Redis)
TABLE = "chaos"
CHAIN = "hop"  # node to node, through the hub (`fwd` is a reserved word in nft)
CHAINS = {CHAIN: "forward", "inbound": "input", "outbound": "output"}
READY = 5.0  # seconds for a holder to be in its namespace
HUB_ENV = "CHAOS_HUB"  # in a harness re-entered in its hub: the namespace it came from


def inside_hub() -> bool:
    """Whether this process is a harness re-entered in a namespace of its own (its hub)."""
    came_from = os.environ.get(HUB_ENV)
    return bool(came_from) and came_from != _own_netns()


def _unshare() -> list[str]:
    return ["unshare", "--net", *(["--user", "--map-root-user"] if rootless() else [])]


def hub_command(argv: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run `argv` in a new network namespace (rootless
    through a user namespace), which the harness there takes for its hub."""
    return [*_unshare(), "--", *argv], {**os.environ, HUB_ENV: _own_netns()}


def loopback_up() -> None:
    """In the re-entered hub: its loopback up (a new namespace's is down)."""
    if not inside_hub():
        raise ClusterError("loopback_up is for the harness re-entered in its hub namespace")
    done = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, check=False)
    if done.returncode != 0:
        raise ClusterError(f"cannot bring the hub's loopback up: {done.stderr.decode()[:200]}")


def refused() -> str | None:
    """Why this machine cannot make the namespaces a run needs, or None when it can."""
    try:
        done = subprocess.run(
            [*_unshare(), "--", "ip", "link", "add", "t0", "type", "veth", "peer", "name", "t1"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare cannot run: {exc}"
    if done.returncode != 0:
        how = "unshare -rn (a user namespace)" if rootless() else "unshare -n"
        return f"the kernel refuses {how} with a veth pair: {done.stderr.strip()[:300]}"
    return None


def _own_netns() -> str:
    return os.readlink("/proc/self/ns/net")


@dataclass(eq=False)
class Namespace:
    """A network namespace, held by a process (`unshare` then sleep) until `close`."""

    name: str
    holder: trio.Process | None  # None: this process's own namespace (the re-entered hub)
    user: bool  # inside a user namespace (rootless): nsenter joins it too
    uts: bool = False  # a host name of its own too

    @property
    def pid(self) -> int:
        return self.holder.pid if self.holder is not None else os.getpid()

    def identity(self) -> str:
        """The namespace's identity (`net:[inode]`)."""
        return os.readlink(f"/proc/{self.pid}/ns/net")

    def argv(self, command: Sequence[str]) -> list[str]:
        """`command` run inside this namespace."""
        if self.holder is None:
            return list(command)
        joins = ["-U", "--preserve-credentials"] if self.user else []
        return [
            "nsenter",
            "-t",
            str(self.pid),
            *joins,
            "-n",
            *(["-u"] if self.uts else []),
            "--",
            *command,
        ]

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
        if self.holder is None:
            return
        with trio.CancelScope(shield=True):
            if self.holder.returncode is None:
                self.holder.kill()
            await self.holder.wait()


async def _hold(
    name: str, argv: list[str], user: bool, *, besides: str = "", uts: bool = False
) -> Namespace:
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
    namespace = Namespace(name, holder, user, uts)
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


def counted(listing: str, handle: int) -> int:
    """The packets the rule `handle` counted, from `nft -a list chain ...`'s output."""
    for line in listing.splitlines():
        if line.rstrip().endswith(f"# handle {handle}"):
            found = re.search(r"counter packets (\d+)", line)
            return int(found.group(1)) if found else 0
    return 0


@dataclass(eq=False)
class Rule:
    """One nftables rule in the hub's forward chain."""

    hub: Namespace
    handle: int
    what: str
    chain: str = CHAIN

    async def dropped(self) -> int:
        """Packets this rule has dropped so far."""
        text = await self.hub.run("nft", "-a", "list", "chain", "inet", TABLE, self.chain)
        return counted(text, self.handle)

    async def remove(self) -> None:
        await self.hub.run(
            "nft",
            "delete",
            "rule",
            "inet",
            TABLE,
            self.chain,
            "handle",
            str(self.handle),
            check=False,
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

    def _chain(self, source: str, target: str) -> str:
        """Where a packet from `source` to `target` passes in the hub: forwarded between two
        nodes, or received or sent by the hub itself (a service it runs, such as Redis)."""
        own = {SERVICES, *(f"{SUBNET}.{i}.1" for i in range(1, len(self.nodes) + 1))}
        if target in own:
            return "inbound"
        if source in own:
            return "outbound"
        return CHAIN

    async def _rule(self, source: str, target: str, what: str, tail: Sequence[str]) -> Rule:
        a, b = self.address(source), self.address(target)
        chain = self._chain(a, b)
        out = await self.run(
            "nft", "--echo", "--handle", "add", "rule", "inet", TABLE, chain,
            "ip", "saddr", a, "ip", "daddr", b, *tail,
        )  # fmt: skip
        found = re.search(r"# handle (\d+)", out)
        if found is None:
            raise ClusterError(f"nft did not say the handle of the rule {what}: {out[:200]}")
        return Rule(self.namespace, int(found.group(1)), what, chain)

    async def cut(self, source: str, target: str) -> Rule:
        """Drop every packet from `source` to `target` (node names, `redis`, or addresses)."""
        return await self._rule(source, target, f"{source}->{target}", ["counter", "drop"])

    async def lose(self, source: str, target: str, percent: int) -> Rule:
        """Drop `percent` of the packets from `source` to `target`, at random."""
        tail = ["numgen", "random", "mod", "100", "<", str(percent), "counter", "drop"]
        return await self._rule(source, target, f"{percent}% of {source}->{target}", tail)


def rootless() -> bool:
    return os.geteuid() != 0


@asynccontextmanager
async def open_hub(names: Sequence[str], *, inside: bool = False) -> AsyncIterator[Hub]:
    """The hub and one namespace per node, wired and routed; all gone on the way out.
    `inside`: this process already runs in the hub (`hub_command`), else a holder makes one."""
    if inside:
        if not inside_hub():
            raise ClusterError(
                "network: isolated runs in a network namespace of its own, which `harness run`"
                " enters by itself; from Python, run the scenario through `harness run`"
            )
        hub_ns = Namespace("hub", None, user=False)
        user = False  # what this process makes is already in its user namespace
    else:
        user = rootless()
        hub_ns = await _hold("hub", _unshare(), user)
    hub = Hub(hub_ns)
    try:
        await hub_ns.run("ip", "link", "set", "lo", "up")
        await hub_ns.run("ip", "addr", "add", f"{SERVICES}/32", "dev", "lo")
        await hub_ns.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
        hub.addresses["redis"] = SERVICES
        for i, name in enumerate(names, start=1):
            # a node's namespace is made from inside the hub's (its user namespace, rootless)
            node = await _hold(
                name,
                hub_ns.argv(["unshare", "--net", "--uts"]),
                user,
                besides=hub_ns.identity(),
                uts=True,
            )
            hub.nodes[name] = node
            hub.addresses[name] = f"{SUBNET}.{i}.2"
            side = f"h{i}"
            await hub_ns.run(
                "ip", "link", "add", side, "type", "veth", "peer", "name", "e0",
                "netns", str(node.pid),
            )  # fmt: skip
            await hub_ns.run("ip", "addr", "add", f"{SUBNET}.{i}.1/24", "dev", side)
            await hub_ns.run("ip", "link", "set", side, "up")
            for command in (
                ["hostname", name],
                ["ip", "link", "set", "lo", "up"],
                ["ip", "addr", "add", f"{SUBNET}.{i}.2/24", "dev", "e0"],
                ["ip", "link", "set", "e0", "up"],
                ["ip", "route", "add", "default", "via", f"{SUBNET}.{i}.1"],
            ):
                await node.run(*command)
        await hub_ns.run("nft", "add", "table", "inet", TABLE)
        for chain, hook in CHAINS.items():
            await hub_ns.run(
                "nft", "add", "chain", "inet", TABLE, chain,
                f"{{ type filter hook {hook} priority 0; }}",
            )  # fmt: skip
        yield hub
    finally:
        for node in hub.nodes.values():
            await node.close()
        if inside:  # the hub outlives this block (it is the harness's own namespace)
            with trio.CancelScope(shield=True):
                await hub_ns.run("nft", "delete", "table", "inet", TABLE, check=False)
        await hub_ns.close()
