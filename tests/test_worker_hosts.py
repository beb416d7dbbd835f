"""Swarm workers on other hosts (`clients.hosts`), for real: three hosts that are network
namespaces (the isolated network's hub, as root) with Debian's sshd in each on its own address,
the harness inside the hub. The nodes run on the three hosts and the swarm's workers on two of
them: the harness installs itself there from the wheelhouse (once: the hosts share this file
system, as hosts on one NFS home do), measures each worker's clock, streams each worker's
history part back over its SSH channel. The zoo's kill scenario is valid, its defect caught; an
injected clock skew is recovered within its bound and the run stays valid; (the zoo's partition
between hosts with packet rules: tests/test_ssh_backend.py); a worker host lost
mid-run makes the run unknown naming the host; nothing is left on any host.

And the pure parts: the NTP estimate, the grammar's per-host bounds."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness._clock import estimate
from harness.errors import InvalidScenario
from harness.scenario import parse_scenario
from tests.support.sshd import namespaced_hosts, run_in_hub, running

ROOT = Path(__file__).resolve().parent.parent
KILL = (ROOT / "scenarios" / "zoo" / "kill.yaml").read_text()


def test_the_estimate_takes_the_exchange_of_least_round_trip():
    # the other clock is 5 s ahead; each reading is taken somewhere inside its exchange
    readings = [(10.0, 15.02, 10.05), (11.0, 16.0005, 11.001), (12.0, 17.09, 12.1)]
    offset = estimate(readings)
    assert offset.rtt == pytest.approx(0.001)
    assert offset.bound == pytest.approx(0.0005)
    assert abs(offset.offset - 5.0) <= offset.bound
    assert offset.samples == 3
    with pytest.raises(ValueError, match="no clock readings"):
        estimate([])


@pytest.mark.parametrize(
    ("clients", "message"),
    [
        ("{count: 50001}", "at most 50,000 clients a machine: 50,001 on this machine"),
        (
            "{count: 100001, hosts: [{host: a}, {host: b}]}",
            "at most 50,000 clients a machine: 100,001 on 2 worker hosts",
        ),
        ("{workers: 2, hosts: [{host: a}]}", "with clients.hosts the workers run there"),
        ("{hosts: [{host: a, workers: 65}]}", "clients.hosts[0].workers: must be between 1 and 64"),
        (
            "{hosts: [{host: a}]}\ncluster: {network: isolated}",
            "clients.hosts: worker hosts cannot reach the clients' proxies inside an isolated",
        ),
    ],
)
def test_the_client_bound_holds_per_machine(clients, message):
    with pytest.raises(InvalidScenario, match=re.escape(message)):
        parse_scenario(f"name: t\nduration: 1s\nclients: {clients}\n", "t.yaml")
    wide = "{count: 100000, hosts: [{host: a}, {host: b, workers: 4}]}"
    parsed = parse_scenario(f"name: t\nduration: 1s\nclients: {wide}\n", "t.yaml")
    assert [h.workers for h in parsed.clients.hosts] == [1, 4]


@pytest.fixture(scope="module")
def installs(tmp_path_factory):
    """Where worker hosts install the harness: one directory for the module's tests (the hosts
    share this file system, so the first host of the first run installs and the rest reuse)."""
    return tmp_path_factory.mktemp("installs")


def on_hosts(
    text: str, keys: Path, installs: Path, *, bugs: str = "", workers_on: tuple[int, ...] = (1, 2)
) -> str:
    """The scenario with node i on the host at 10.201.i.2 (three nodes) and one swarm worker on
    each host of `workers_on`."""

    def entry(i: int, extra: str = "") -> str:
        return (
            f"{{host: 10.201.{i}.2, user: root, identity: {keys / 'user_key'},"
            f" known_hosts: {keys / 'known_hosts'}{extra}}}"
        )

    nodes = ", ".join(entry(i, f", python: {sys.executable}") for i in (1, 2, 3))
    cluster = (
        f"cluster: {{nodes: 3, backend: ssh, cwd: {ROOT}, hosts: [{nodes}]"
        f"{', bugs: [' + bugs + ']' if bugs else ''}}}"
    )
    text = re.sub(r"^cluster: .*$", cluster, text, flags=re.M)
    workers = ", ".join(entry(i, f", directory: {installs}") for i in workers_on)
    return text.replace("clients:\n", f"clients:\n  hosts: [{workers}]\n", 1)


def _ops(out: Path, name: str = "zoo-kill") -> list[dict]:
    from harness.run.rundir import read_history

    run_dir = next((out / name).iterdir())
    return [json.loads(op.to_json()) for op in read_history(run_dir / "history.jsonl")]


def _workers_left() -> list[int]:
    return running("harness.swarm.worker")


def _wheelhouse_built() -> None:
    from harness.swarm._hosts import default_wheelhouse

    assert list(default_wheelhouse().glob("channel_chaos_harness-*.whl")), (
        "no wheelhouse: `make setup` builds it (`harness wheelhouse`)"
    )


@pytest.mark.slow
async def test_workers_on_two_hosts_and_nodes_on_three(tmp_path, installs):
    _wheelhouse_built()
    keys = tmp_path / "keys"
    async with namespaced_hosts(keys, ["h1", "h2", "h3"]) as hub:
        valid = tmp_path / "valid.yaml"
        valid.write_text(on_hosts(KILL, keys, installs))
        done = await run_in_hub(hub, valid, tmp_path / "valid")
        said = done.stdout.decode()[-3000:] + done.stderr.decode()[-3000:]
        assert done.returncode == 0, said
        ops = _ops(tmp_path / "valid")
        setup = next(o["value"]["worker_hosts"] for o in ops if "worker_hosts" in o["value"])
        assert [h["installed"] for h in setup.values()][1:] == [False], setup  # one home
        clocks = [o["value"] for o in ops if o["f"] == "clock"]
        assert {(c["worker"], c["when"]) for c in clocks} == {
            (0, "before"),
            (1, "before"),
            (0, "after"),
            (1, "after"),
        }
        for c in clocks:  # one kernel clock: the true offset is 0
            assert abs(c["offset"]) <= c["bound"] + 1e-6, c
        received = {o["process"] for o in ops if o["f"] == "recv"}
        assert {f"c{i}" for i in range(1, 7)} <= received, received  # all streamed back

        caught = tmp_path / "caught.yaml"
        caught.write_text(on_hosts(KILL, keys, installs, bugs="no_link_restore_after_kill"))
        done = await run_in_hub(hub, caught, tmp_path / "caught")
        assert done.returncode == 1, done.stdout.decode()[-3000:]
        assert "delivery" in done.stdout.decode()

        skewed = await run_in_hub(hub, valid, tmp_path / "skewed", {"CHAOS_TEST_CLOCK_SKEW": "7.5"})
        assert skewed.returncode == 0, skewed.stdout.decode()[-3000:]
        for c in (o["value"] for o in _ops(tmp_path / "skewed") if o["f"] == "clock"):
            assert abs(c["offset"] - 7.5) <= c["bound"] + 1e-6, c
            assert c["bound"] < 0.05, c

    assert not _workers_left()


LONG = KILL.replace("duration: 7s", "duration: 30s")


def _in_workload(out: Path) -> bool:
    return any('"phase":"workload"' in h.read_text() for h in out.glob("*/*/history*.jsonl"))


async def _started(hub, scenario: Path, out: Path):
    """`harness run` in the hub, returned once its workload began."""
    import trio

    process = await trio.lowlevel.open_process(
        hub.namespace.argv(
            [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(out)]
        ),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    with trio.fail_after(90):
        while not _in_workload(out):
            assert process.poll() is None, "the harness ended before its workload"
            await trio.sleep(0.05)
    return process


@pytest.mark.slow
async def test_a_lost_worker_host_makes_the_run_unknown_and_a_killed_harness_leaves_nothing(
    tmp_path, installs
):
    """A worker host whose network goes (its link down mid-run): the run is unknown, exit 3,
    naming the host; when it is back, what ran there is gone. Then SIGKILL of the harness mid-run:
    no worker and no node left on any host."""
    import trio

    _wheelhouse_built()
    keys = tmp_path / "keys"
    async with namespaced_hosts(keys, ["h1", "h2", "h3", "h4"], soft_limit=1024) as hub:
        scenario = tmp_path / "long.yaml"
        scenario.write_text(on_hosts(LONG, keys, installs, workers_on=(1, 4)))
        process = await _started(hub, scenario, tmp_path / "lost")
        await hub.nodes["h4"].run("ip", "link", "set", "e0", "down")
        try:
            with trio.fail_after(60):
                said = b""
                assert process.stdout is not None
                async for chunk in process.stdout:
                    said += chunk
                await process.wait()
        finally:  # the link back, and its default route (which went with it)
            await hub.nodes["h4"].run("ip", "link", "set", "e0", "up")
            await hub.nodes["h4"].run("ip", "route", "replace", "default", "via", "10.201.4.1")
        text = said.decode()
        assert process.returncode == 3, text[-3000:]
        assert "swarm worker 1 on root@10.201.4.2:22" in text, text[-3000:]
        with trio.fail_after(60):  # the host back: its session's data meets a reset, it ends
            while _workers_left():  # noqa: ASYNC110 (a condition on /proc, with a deadline)
                await trio.sleep(0.1)

        process = await _started(hub, scenario, tmp_path / "killed")
        assert len(_workers_left()) == 2
        for pid in _workers_left():  # sshd's sessions start at 1,024: each worker raised it
            (limits,) = [
                line.split()[3:5]
                for line in Path(f"/proc/{pid}/limits").read_text().splitlines()  # noqa: ASYNC240
                if line.startswith("Max open files")
            ]
            assert limits[0] == limits[1] != "1024", limits
        process.kill()
        await process.wait()
        with trio.fail_after(30):
            while _workers_left() or _nodes_left():  # noqa: ASYNC110 (as above)
                await trio.sleep(0.1)


def _nodes_left() -> list[int]:
    return running("server_under_test")


async def test_a_workers_output_is_split_into_its_history_and_what_it_says(tmp_path):
    """What the parent reads from a worker's stdout, in chunks cut anywhere: history lines go to
    the part byte for byte, `!` lines are statistics and clock readings (a stray one is
    ignored), and an end before the worker was told to stop is the worker lost, named."""
    from types import SimpleNamespace

    import trio
    import trio.testing

    from harness._clock import RunClock
    from harness.errors import WorkerFailed
    from harness.swarm._processes import _Worker

    history = [b'{"names":{"0":"c1"}}\n', b"[1.5,0,0,0,0,0,7,1]\n", b'{"time":2,"process":"c1"}\n']
    said = [
        b'!{"clock": 12.5}\n',
        b'!{"stats": {"clients": 1, "connected": 1, "joined": 1, "published": 0,'
        b' "acknowledged": 0, "received": 1}, "refused": null}\n',
        b"!not json\n",
    ]
    stream = b"".join([history[0], said[0], history[1], said[2], said[1], history[2]])
    send, receive = trio.testing.memory_stream_one_way_pair()
    process = SimpleNamespace(stdout=receive, stdin=None, poll=lambda: None)
    part = tmp_path / "history.0.jsonl"
    worker = _Worker(0, process, part, "on root@h:22", None, streams=True)  # type: ignore[arg-type]

    async def feed() -> None:
        for i in range(0, len(stream), 7):  # chunks that cut lines anywhere
            await send.send_all(stream[i : i + 7])
            await trio.testing.wait_all_tasks_blocked()
        await send.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed)
        with pytest.raises(WorkerFailed, match="swarm worker 0 on root@h:22 was lost at"):
            await worker.read(RunClock())
    assert part.read_bytes() == b"".join(history)
    assert worker.readings.receive_nowait() == 12.5
    assert worker.stats.joined == 1
    assert worker.refused is None

    worker = _Worker(
        1, SimpleNamespace(stdout=receive, stdin=None), part, "here", None, streams=False
    )  # type: ignore[arg-type]
    worker.stopping = True  # told to stop: its end is no loss
    await worker.read(RunClock())
