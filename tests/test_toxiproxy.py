"""The Toxiproxy adapter against the real toxiproxy-server binary that `make setup` builds."""

from __future__ import annotations

import os

import pytest
import trio

from harness._process import free_ports
from harness.toxiproxy import ToxiproxyError, find_server_binary


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
    from harness.toxiproxy import ToxiproxyClient

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
