"""The local process backend's own promises: where node ports come from, what a failed start says."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio

from harness.cluster import LocalNode, NodePlan
from harness.errors import ClusterError
from harness.infra import process as _process
from harness.infra.process import free_ports


def ephemeral_low() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def test_node_ports_are_never_ones_the_kernel_hands_out_by_itself():
    # A port the kernel gives to `bind(0)` or an outgoing connection can be taken between the
    # moment it is chosen and the moment the node binds it (CI once saw exactly that).
    ports = free_ports(40)
    assert len(set(ports)) == 40
    assert all(1024 <= p < ephemeral_low() for p in ports)
    again = free_ports(40)
    assert not set(ports) & set(again), "one process never hands out a port twice"


def test_a_port_someone_listens_on_is_skipped(monkeypatch):
    with socket.socket() as busy:
        low, _ = _process._unassigned_range()
        for port in range(low + 1000, low + 2000):
            try:
                busy.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
        busy.listen()
        taken = busy.getsockname()[1]

        class Picks:
            """Offers the busy port first, then counts up from the next one."""

            def __init__(self) -> None:
                self.next = taken

            def randrange(self, start: int, stop: int) -> int:
                self.next += 1
                return self.next - 1

        monkeypatch.setattr(_process, "_random", Picks())
        monkeypatch.setattr(_process, "_handed_out", set())
        (port,) = free_ports(1)
    assert port != taken


async def test_a_node_on_a_taken_port_says_why_it_did_not_start(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        (pubsub_port,) = free_ports(1)
        node = LocalNode(
            NodePlan("n1", "127.0.0.1", port, pubsub_port), tmp_path / "logs" / "n1.log"
        )
        with pytest.raises(ClusterError) as failure:
            await node.start()
    message = str(failure.value)
    assert "node n1 exited with code 3 before it became healthy" in message
    assert "cannot start" in message
    assert "in use" in message
    assert str(tmp_path / "logs" / "n1.log") in message


async def test_a_health_probe_of_a_node_that_breaks_off_its_answer_is_not_healthy(nursery):
    """A node starting or dying may close mid-answer: that is "not healthy yet", never a crash."""
    from harness.infra.http import get_json

    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]

    async def half_answer(stream: trio.SocketStream) -> None:
        await stream.receive_some(4096)
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc")
        await stream.aclose()

    nursery.start_soon(trio.serve_listeners, half_answer, [listener])
    with pytest.raises(ConnectionError, match="broke off its answer"):
        await get_json("127.0.0.1", port, "/health", timeout=5)
