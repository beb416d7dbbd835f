"""The official npm `phoenix` client as a test peer: one Node process per client.

`tests/interop/driver.mjs` reads JSON commands and writes JSON events (each with `t`, ms on a
monotonic clock). Tests send commands and wait on conditions over the event list, each wait with
a deadline: nothing sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import trio

from harness._lines import json_lines

INTEROP = Path(__file__).resolve().parent.parent / "interop"
DRIVER = INTEROP / "driver.mjs"

Event = dict[str, Any]


class JSClient:
    def __init__(self, process: trio.Process, package: str) -> None:
        self.process = process
        self.package = package
        self.events: list[Event] = []
        self._changed = trio.Event()

    async def send(self, cmd: str, **fields: Any) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all((json.dumps({"cmd": cmd, **fields}) + "\n").encode())

    async def wait_for(
        self, predicate: Callable[[Event], bool], *, after: int = 0, timeout: float = 10.0
    ) -> Event:
        """The first event at index >= `after` that matches; fails after `timeout` seconds."""
        with trio.move_on_after(timeout):
            while True:
                for event in self.events[after:]:
                    if predicate(event):
                        return event
                await self._changed.wait()
        tail = "\n".join(json.dumps(e) for e in self.events[-15:])
        raise AssertionError(f"no matching event within {timeout}s; last events:\n{tail}")

    async def wait_ev(
        self, ev: str, *, after: int = 0, timeout: float = 10.0, **match: Any
    ) -> Event:
        return await self.wait_for(
            lambda e: e.get("ev") == ev and all(e.get(k) == v for k, v in match.items()),
            after=after,
            timeout=timeout,
        )

    def mark(self) -> int:
        """An index to pass as `after=` so a wait only sees events from now on."""
        return len(self.events)

    def all(self, ev: str, **match: Any) -> list[Event]:
        return [
            e
            for e in self.events
            if e.get("ev") == ev and all(e.get(k) == v for k, v in match.items())
        ]

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for event in json_lines(self.process.stdout):
            self.events.append(event)
            self._changed.set()
            self._changed = trio.Event()


@asynccontextmanager
async def open_js_client(package: str = "phoenix") -> AsyncIterator[JSClient]:
    process = await trio.lowlevel.open_process(
        ["node", str(DRIVER), package],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=INTEROP,
        start_new_session=True,
    )
    client = JSClient(process, package)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client._read)
            await client.wait_ev("ready")
            yield client
            nursery.cancel_scope.cancel()
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with trio.CancelScope(shield=True):
            await process.wait()
