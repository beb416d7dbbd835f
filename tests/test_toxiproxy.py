"""The Toxiproxy adapter against the real toxiproxy-server binary that `make setup` builds."""

from __future__ import annotations

import os

import pytest
import trio

from harness.infra.process import free_ports
from harness.infra.toxiproxy import ToxiproxyError, find_server_binary


async def test_the_real_server_reports_its_stamped_version(toxiproxy):
    assert find_server_binary().name == "toxiproxy-server"
    assert await toxiproxy.client.version() == "2.12.0"


async def test_proxy_life_cycle_and_toxics(toxiproxy):
    client = toxiproxy.client
    proxy = await client.create_proxy("t_clients_n1", "127.0.0.1:9")
    assert proxy.port > 0
    assert proxy.enabled
    toxic = await client.add_toxic("t_clients_n1", "latency", {"latency": 100, "jitter": 10})
    assert (toxic.name, toxic.stream) == ("latency_downstream", "downstream")
    assert (await client.proxies())["t_clients_n1"].toxics == (toxic,)
    assert not (await client.set_enabled("t_clients_n1", False)).enabled
    await client.reset()
    after = (await client.proxies())["t_clients_n1"]
    assert after.enabled
    assert after.toxics == ()
    await client.delete_proxy("t_clients_n1")
    assert await client.proxies() == {}


async def test_every_non_2xx_answer_raises(toxiproxy):
    client = toxiproxy.client
    await client.create_proxy("dup", "127.0.0.1:9")
    with pytest.raises(ToxiproxyError) as conflict:
        await client.create_proxy("dup", "127.0.0.1:9")
    assert conflict.value.status == 409
    with pytest.raises(ToxiproxyError) as missing:
        await client.remove_toxic("dup", "nope")
    assert missing.value.status == 404
    busy = await client.create_proxy("a", "127.0.0.1:9")
    with pytest.raises(ToxiproxyError) as in_use:  # the port is taken: the library hid this 500
        await client.create_proxy("b", "127.0.0.1:9", listen=busy.listen)
    assert in_use.value.status == 500


@pytest.mark.parametrize(
    ("type_", "attributes", "stream", "toxicity"),
    [
        ("latencyy", {"latency": 1}, "downstream", 1.0),
        ("latency", {"latency": 1}, "sideways", 1.0),
        ("latency", {"latency": 1}, "downstream", 1.5),
        ("latency", {"latency": -5}, "downstream", 1.0),
        ("slicer", {"average_size": 10, "size_variation": 20}, "downstream", 1.0),
        ("slicer", {"average_size": 0}, "downstream", 1.0),
    ],
)
async def test_toxics_that_would_misbehave_are_refused_before_the_call(
    toxiproxy, type_, attributes, stream, toxicity
):
    await toxiproxy.client.create_proxy("p", "127.0.0.1:9")
    with pytest.raises(ToxiproxyError):
        await toxiproxy.client.add_toxic("p", type_, attributes, stream=stream, toxicity=toxicity)
    assert (await toxiproxy.client.proxies())["p"].toxics == ()


async def test_unreachable_server_is_a_clear_error():
    from harness.infra.toxiproxy import ToxiproxyClient

    with pytest.raises(ToxiproxyError, match="unreachable"):
        await ToxiproxyClient("127.0.0.1", free_ports(1)[0]).version()


async def test_stop_leaves_no_process(toxiproxy):
    pid = toxiproxy.process.pid
    await toxiproxy.stop()
    assert toxiproxy.process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with trio.fail_after(1):
        with pytest.raises(ToxiproxyError):
            await toxiproxy.client.version()


async def test_heal_touches_only_the_proxies_it_is_given(toxiproxy):
    client = toxiproxy.client
    for name in ("mine_a", "mine_b", "theirs"):
        await client.create_proxy(name, "127.0.0.1:9")
        await client.add_toxic(name, "latency", {"latency": 100})
    await client.set_enabled("mine_b", False)
    await client.set_enabled("theirs", False)
    await client.heal(["mine_a", "mine_b"])
    after = await client.proxies()
    assert (after["mine_a"].toxics, after["mine_a"].enabled) == ((), True)
    assert (after["mine_b"].toxics, after["mine_b"].enabled) == ((), True)
    assert len(after["theirs"].toxics) == 1
    assert not after["theirs"].enabled


SHARED = """
name: NAME
seed: 3
duration: 8s
settle: 1s
cluster: {nodes: 2}
clients:
  count: 4
  topics: ["room:1"]
  timings: {reconnect_after: [10ms, 50ms, 100ms], rejoin_after: [100ms, 200ms], heartbeat_interval: 1s}
workload: {publishers: 2, rate: 20/s}
faults:
  - FAULT
"""


async def test_two_runs_on_one_shared_toxiproxy_are_both_valid(toxiproxy, tmp_path):
    """A short run heals while a long one's fault is still on: the long run's proxy stays down
    (the heal used to be Toxiproxy's global /reset) and both runs are valid."""
    from harness.run.runner import RunOptions, run_scenario
    from harness.scenario import parse_scenario

    address = f"127.0.0.1:{toxiproxy.client.port}"
    long = (
        SHARED.replace("NAME", "long")
        .replace("duration: 8s", "duration: 18s")
        .replace("FAULT", "{at: 1s, for: 16s, kind: down, link: clients->n1}")
    )
    short = (
        SHARED.replace("NAME", "short")
        .replace("duration: 8s", "duration: 2s")
        .replace("FAULT", "{at: 500ms, kind: kill, node: n2, restart_after: 300ms}")
    )
    results = {}

    async def run(text: str) -> None:
        scenario = parse_scenario(text, "shared.yaml")
        results[scenario.name] = await run_scenario(
            scenario, RunOptions(out=tmp_path, toxiproxy=address)
        )

    async def long_proxy_down() -> bool:
        proxies = await toxiproxy.client.proxies()
        return any(not p.enabled for n, p in proxies.items() if n.endswith("clients_to_n1"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, long)
        with trio.fail_after(30):  # the short run starts inside the long run's fault
            while not await long_proxy_down():  # noqa: ASYNC110 - another process's state
                await trio.sleep(0.05)
        await run(short)
        assert "long" not in results, "the long run's fault outlives the short run"
        assert await long_proxy_down(), "the short run's heal re-enabled the long run's proxy"
    for name, result in results.items():
        flagged = {r.name: r.validity for r in result.results if r.validity != "valid"}
        assert result.outcome == "valid", (name, result.error, flagged)
    assert await toxiproxy.client.proxies() == {}
