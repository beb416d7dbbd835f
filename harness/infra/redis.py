"""The Redis server a cluster with `pubsub: redis` shares, as a process the harness owns.

A real `redis-server` (Debian's package; `$REDIS_SERVER` names another binary) on 127.0.0.1 and
a port below the ephemeral range, with persistence off: Redis Pub/Sub keeps nothing anyway, and
the run's source of truth is the SQLite store. It runs in its own process group, its output goes
to `logs/redis.log`, and it counts as started when it answers PING. Nodes reach it through one
Toxiproxy proxy each (`n1->redis`), so a fault can cut one node off Redis. `open_redis()` is its
lifetime.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from ..errors import ClusterError
from .process import ServerProcess, free_ports, wait_ready

PING = b"*1\r\n$4\r\nPING\r\n"


def find_redis_binary() -> Path:
    """`$REDIS_SERVER`, then `redis-server` on PATH."""
    named = os.environ.get("REDIS_SERVER")
    found = Path(named) if named else (Path(p) if (p := shutil.which("redis-server")) else None)
    if found is None or not (found.is_file() and os.access(found, os.X_OK)):
        raise ClusterError(
            "redis-server not found (looked in $REDIS_SERVER and on PATH); `pubsub: redis`"
            " needs it: apt-get install redis-server (`harness doctor` checks every part)"
        )
    return found


class RedisServer(ServerProcess):
    """Start, wait for PING, stop; only ever signals its own process group."""

    def __init__(
        self, log_path: Path, *, binary: Path | None = None, host: str = "127.0.0.1"
    ) -> None:
        super().__init__(log_path)
        self.binary = binary or find_redis_binary()
        self.host = host  # another address only inside the run's hub namespace
        self.port = free_ports(1)[0]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self, *, timeout: float = 10.0) -> None:
        settings = {"bind": self.host, "port": str(self.port), "save": "", "appendonly": "no"}
        if not self.host.startswith("127."):  # the hub's service address, reachable only there
            settings["protected-mode"] = "no"
        argv = [str(self.binary), "--dir", str(self.log_path.parent)]
        for key, value in settings.items():
            argv += [f"--{key}", value]
        await self.spawn(argv)

        def died() -> str | None:
            code = self.exited()
            if code is None:
                return None
            return f"redis-server exited with code {code} before it answered; see {self.log_path}"

        await wait_ready(
            self.ping, died=died, timeout=timeout, what="redis-server did not answer PING"
        )

    async def ping(self) -> bool:
        try:
            with trio.fail_after(1):
                stream = await trio.open_tcp_stream(self.host, self.port)
                async with stream:
                    await stream.send_all(PING)
                    answer = b""
                    while not answer.endswith(b"\r\n"):
                        data = await stream.receive_some(64)
                        if not data:
                            return False
                        answer += data
                    return answer == b"+PONG\r\n"
        except (OSError, trio.TooSlowError, trio.BrokenResourceError):
            return False


@asynccontextmanager
async def open_redis(log_path: Path, *, host: str = "127.0.0.1") -> AsyncIterator[RedisServer]:
    server = RedisServer(log_path, host=host)
    try:
        await server.start()
        yield server
    finally:
        with trio.CancelScope(shield=True):
            await server.stop()
