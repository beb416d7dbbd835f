"""Network namespaces and packet rules (`harness.infra.netns`), with real Erlang distribution.

Three `erl -name` nodes (Debian's erlang-base, no Hex), each in a namespace of its own with its
own epmd, connected and exchanging `pg` group messages: a partition by rules in the hub makes
them see `nodedown` and the messages stop, the heal brings them back, random packet loss slows
the link without cutting it. The rule counters say the rules dropped packets. Also: the root
namespace never gets a route to the nodes' addresses, nothing is left after the hub closes, and
the same works for an unprivileged user (rootless, in a user namespace), from a copy of the
package that user can read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import attr
import attrs
import idna
import outcome
import pytest
import sniffio
import sortedcontainers
import trio

import harness
from harness.infra.netns import SUBNET, Hub, open_hub

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux")

NODE = """
net_kernel:monitor_nodes(true),
Peers = [list_to_atom(P) || P <- string:tokens(os:getenv("PEERS"), ",")],
{ok, _} = pg:start_link(),
ok = pg:join(g, self()),
Say = fun(F, A) -> io:format(F ++ "~n", A) end,
Loop = fun L() ->
    receive
        {nodeup, N} -> Say("nodeup ~s", [N]), L();
        {nodedown, N} -> Say("nodedown ~s", [N]), L();
        {msg, From} -> Say("msg ~s", [From]), L()
    after 200 ->
        [P ! {msg, node()} || P <- pg:get_members(g), node(P) =/= node()],
        [spawn(fun() -> net_adm:ping(P) end) || P <- Peers, not lists:member(P, nodes())],
        L()
    end
end,
Loop().
"""


class Erl:
    """The lines an erl node printed, with when each came."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def since(self, t: float, prefix: str) -> list[str]:
        return [line for at, line in self.lines if at >= t and line.startswith(prefix)]


async def _read(process: trio.Process, into: Erl) -> None:
    assert process.stdout is not None
    buffer = b""
    async for chunk in process.stdout:
        buffer += chunk
        *whole, buffer = buffer.split(b"\n")
        for line in whole:
            into.lines.append((time.monotonic(), line.decode(errors="replace").strip()))


async def _until(check, seconds: float, what: str) -> None:
    with trio.move_on_after(seconds):
        while not check():  # noqa: ASYNC110 - lines other processes print
            await trio.sleep(0.05)
        return
    raise AssertionError(f"not within {seconds} s: {what}")


def _names(hub: Hub) -> dict[str, str]:
    return {name: f"{name}@{hub.address(name)}" for name in hub.nodes}


@pytest.mark.skipif(shutil.which("erl") is None, reason="needs erl (Debian's erlang-base)")
async def test_erlang_distribution_is_partitioned_healed_and_slowed_by_rules(tmp_path):
    async with open_hub(["n1", "n2", "n3"]) as hub, trio.open_nursery() as nursery:
        names = _names(hub)
        out = {name: Erl() for name in hub.nodes}
        processes = []
        try:
            for ns in hub.nodes.values():
                processes.append(
                    await trio.lowlevel.open_process(
                        ns.argv(["epmd"]), stdout=subprocess.DEVNULL, start_new_session=True
                    )
                )
            for ns in hub.nodes.values():
                with trio.fail_after(10):
                    while "up and running" not in await ns.run("epmd", "-names", check=False):  # noqa: ASYNC110
                        await trio.sleep(0.05)
            for name, ns in hub.nodes.items():
                peers = ",".join(n for other, n in names.items() if other != name)
                argv = ["erl", "-noshell", "-name", names[name], "-setcookie", "chaos"]
                argv += ["-kernel", "net_ticktime", "4", "-eval", NODE]
                env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PEERS": peers}
                proc = await trio.lowlevel.open_process(
                    ns.argv(argv), stdout=subprocess.PIPE, env=env, start_new_session=True
                )
                processes.append(proc)
                nursery.start_soon(_read, proc, out[name])
            n1 = out["n1"]
            await _until(
                lambda: (
                    {f"msg {names['n2']}", f"msg {names['n3']}"} <= {line for _, line in n1.lines}
                ),
                30,
                "n1 receives pg messages from n2 and n3",
            )
            # the partition n1 | n2, n3: both directions of both pairs
            cut = time.monotonic()
            rules = [
                await hub.cut(a, b)
                for a, b in (("n1", "n2"), ("n2", "n1"), ("n1", "n3"), ("n3", "n1"))
            ]
            await _until(
                lambda: (
                    {f"nodedown {names['n2']}", f"nodedown {names['n3']}"}
                    <= set(n1.since(cut, "nodedown"))
                ),
                20,
                "n1 sees nodedown of n2 and n3",
            )
            quiet = time.monotonic()
            await trio.sleep(1.0)
            assert n1.since(quiet, "msg") == []  # nothing crosses the split
            assert out["n2"].since(quiet, f"msg {names['n3']}")  # the other side still talks
            assert all([await rule.dropped() > 0 for rule in rules])
            healed = time.monotonic()
            for rule in rules:
                await rule.remove()
            await _until(
                lambda: (
                    {f"msg {names['n2']}", f"msg {names['n3']}"} <= set(n1.since(healed, "msg"))
                ),
                20,
                "n1 receives from both again after the heal",
            )
            # 30% packet loss each way between n1 and n2: slower, never cut
            lossy = time.monotonic()
            losses = [await hub.lose("n1", "n2", 30), await hub.lose("n2", "n1", 30)]
            await _until(  # TCP's retransmissions back off: slower, so a deadline, not a sleep
                lambda: len(n1.since(lossy, f"msg {names['n2']}")) >= 3,
                20,
                "n1 still receives from n2 through 30% loss each way",
            )
            assert n1.since(lossy, "nodedown") == []
            assert sum([await rule.dropped() for rule in losses]) > 0
        finally:
            for proc in processes:
                with trio.CancelScope(shield=True):
                    proc.kill()
                    await proc.wait()
            nursery.cancel_scope.cancel()
    routes = await trio.run_process(["ip", "route"], capture_stdout=True)
    assert SUBNET not in routes.stdout.decode()  # the root namespace never had a route to the nodes


PROBE = """
import sys, trio
from harness.infra.netns import open_hub

async def main():
    async with open_hub(["n1", "n2"]) as hub:
        server = await trio.lowlevel.open_process(hub.nodes["n2"].argv([sys.executable, "-c",
            "import socket, time\\ns = socket.socket(); s.bind(('10.201.2.2', 4000)); s.listen()\\n"
            "while True: s.accept()"]))
        await trio.sleep(0.5)
        probe = ("import socket\\ntry:\\n socket.create_connection(('10.201.2.2', 4000), timeout=1)"
                 "; print('open')\\nexcept OSError: print('cut')")
        said = [await hub.nodes["n1"].run(sys.executable, "-c", probe)]
        rule = await hub.cut("n1", "n2")
        said.append(await hub.nodes["n1"].run(sys.executable, "-c", probe))
        dropped = await rule.dropped()
        await rule.remove()
        said.append(await hub.nodes["n1"].run(sys.executable, "-c", probe))
        server.kill()
        print(" ".join(s.strip() for s in said), dropped > 0)

trio.run(main)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="drops to an unprivileged user: needs root to start")
def test_the_same_works_rootless_for_an_unprivileged_user():
    """As `nobody`, with the system's Python and a copy of the package and of trio (pure Python,
    nothing downloaded) in a directory that user can read."""
    python = shutil.which("python3", path="/usr/bin")
    if python is None:
        pytest.skip("needs the system's /usr/bin/python3")
    with tempfile.TemporaryDirectory(prefix="chaos-rootless-") as where:
        copy = Path(where)
        for module in (harness, trio, attr, attrs, outcome, sniffio, sortedcontainers, idna):
            source = Path(module.__file__ or "").parent
            shutil.copytree(
                source, copy / source.name, ignore=shutil.ignore_patterns("__pycache__")
            )
        (copy / "probe.py").write_text(PROBE)
        copy.chmod(0o755)
        for path in copy.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        done = subprocess.run(
            ["runuser", "-u", "nobody", "--", python, str(copy / "probe.py")],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=copy,
            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(copy)},
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["open", "cut", "open", "True"]
