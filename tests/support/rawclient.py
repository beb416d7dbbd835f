"""A bare websocket client for protocol tests: send exact frames, read exact frames.

Built on trio-websocket. Frames are sent as given (a list is JSON-encoded), and received frames
are decoded JSON (text) or bytes (binary); `closed()` waits for the server's close code.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url


class RawClient:
    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self._ref = 0

    def ref(self) -> str:
        self._ref += 1
        return str(self._ref)

    async def send(self, frame: Any) -> None:
        if isinstance(frame, str | bytes):
            await self.ws.send_message(frame)
        else:
            await self.ws.send_message(json.dumps(frame))

    async def recv(self, *, timeout: float = 5.0) -> Any:
        with trio.fail_after(timeout):
            message = await self.ws.get_message()
        return json.loads(message) if isinstance(message, str) else message

    async def recv_until(self, predicate: Any, *, timeout: float = 5.0) -> list[Any]:
        """Receive frames until one matches; return all received, the match last."""
        seen: list[Any] = []
        with trio.fail_after(timeout):
            while True:
                frame = await self.recv(timeout=timeout)
                seen.append(frame)
                if predicate(frame):
                    return seen

    async def join(self, topic: str, params: Any = None) -> tuple[str, Any]:
        """Join; return (join_ref, reply frame), skipping the app's welcome push."""
        ref = self.ref()
        await self.send([ref, ref, topic, "phx_join", params or {}])
        frames = await self.recv_until(lambda f: f[3] == "phx_reply" and f[1] == ref)
        return ref, frames[-1]

    async def push(self, topic: str, join_ref: str | None, event: str, payload: Any) -> Any:
        """Push and return the matching reply frame (other frames are skipped)."""
        ref = self.ref()
        await self.send([join_ref, ref, topic, event, payload])
        frames = await self.recv_until(lambda f: f[3] == "phx_reply" and f[1] == ref)
        return frames[-1]

    async def no_frame(self, *, within: float = 0.3) -> None:
        """Assert that nothing arrives for `within` seconds (used only for 'nothing happens')."""
        with trio.move_on_after(within):
            frame = await self.ws.get_message()
            raise AssertionError(f"unexpected frame {frame!r}")

    async def closed(self, *, timeout: float = 5.0) -> int | None:
        """Wait for the server to close the connection; its close code."""
        with trio.fail_after(timeout):
            try:
                while True:
                    await self.ws.get_message()
            except ConnectionClosed as exc:
                return exc.reason.code if exc.reason else None


@asynccontextmanager
async def open_raw(url: str, **options: Any) -> AsyncIterator[RawClient]:
    """`options` go to trio-websocket (`extra_headers=[(b"origin", b"...")]`, ...)."""
    async with open_websocket_url(url, **options) as ws:
        yield RawClient(ws)
