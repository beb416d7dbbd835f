"""The command lines as users run them: exit codes and messages, no tracebacks."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--node"),
        (["--node", "n1", "--bug", "nope"], "invalid choice"),
        (["--node", "n1", "--peer", "n2"], "NAME=HOST:PORT"),
        (["--node", "n1", "--peer", "n1=127.0.0.1:5000"], "names this node itself"),
    ],
)
def test_server_usage_errors_exit_2(args, message):
    result = run("-m", "server_under_test", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_server_on_a_busy_port_exits_3():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("-m", "server_under_test", "--node", "n1", "--port", str(port))
    assert result.returncode == 3
    assert "cannot start" in result.stderr
    assert "Traceback" not in result.stderr


def test_server_with_an_unusable_store_exits_3(tmp_path):
    result = run(
        "-m",
        "server_under_test",
        "--node",
        "n1",
        "--port",
        "0",
        "--store",
        f"sqlite:///{tmp_path}/missing/x.db",
    )
    assert result.returncode == 3
    assert "store directory does not exist" in result.stderr
