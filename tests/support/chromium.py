"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for the report test:
open a page, collect console messages, exceptions and network requests, measure elements and
save a full-page screenshot. The browser binds its DevTools port on 127.0.0.1 only and runs in a
process group of its own, stopped by that group.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from harness.infra.process import signal_group, watch

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Page:
    ws: WebSocketConnection
    session: str
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    events: list[dict[str, Any]] = field(default_factory=list)
    replies: dict[int, dict[str, Any]] = field(default_factory=dict)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        message = {"id": ident, "method": method, "params": params, "sessionId": self.session}
        await self.ws.send_message(json.dumps(message))
        with trio.fail_after(30):
            while ident not in self.replies:
                self._take(json.loads(await self.ws.get_message()))
        reply = self.replies.pop(ident)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def _take(self, message: dict[str, Any]) -> None:
        if "id" in message:
            self.replies[message["id"]] = message
        else:
            self.events.append(message)

    async def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        with trio.fail_after(timeout):
            while True:
                for event in self.events:
                    if event.get("method") == method:
                        return event
                self._take(json.loads(await self.ws.get_message()))

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def console_errors(self) -> list[str]:
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in (
                "error",
                "warning",
            ):
                out.append(json.dumps(p.get("args")))
            elif e.get("method") == "Runtime.exceptionThrown":
                out.append(json.dumps(p.get("exceptionDetails")))
            elif e.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(str(p["entry"].get("text")))
        return out

    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    async def screenshot(self, width: int = 1400) -> bytes:
        """A full-page PNG."""
        metrics = await self.call("Page.getLayoutMetrics")
        height = int(metrics["cssContentSize"]["height"]) + 1
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=min(height, 16000),
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        return base64.b64decode(shot["data"])


@asynccontextmanager
async def open_page(url: str, binary: str) -> AsyncIterator[Page]:
    """Chromium with one page loaded at `url` (every domain the test reads enabled first)."""
    profile = tempfile.mkdtemp(prefix="chromium-")
    argv = [
        binary,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    process = await trio.lowlevel.open_process(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # where it prints its DevTools address
        start_new_session=True,
        env={**os.environ},
    )
    watch(f"group {process.pid}")
    try:
        endpoint = await _devtools_url(process)
        async with open_websocket_url(endpoint, max_message_size=64 * 2**20) as ws:
            browser = Page(ws, "")
            target = await _browser_call(browser, "Target.createTarget", url="about:blank")
            attached = await _browser_call(
                browser, "Target.attachToTarget", targetId=target["targetId"], flatten=True
            )
            page = Page(ws, attached["sessionId"], browser.ids)
            for domain in ("Runtime", "Log", "Network", "Page"):
                await page.call(f"{domain}.enable")
            await page.call("Page.navigate", url=url)
            await page.wait_event("Page.loadEventFired")
            yield page
    finally:
        with trio.CancelScope(shield=True):
            signal_group(process, signal.SIGKILL)
            with trio.move_on_after(10):
                await process.wait()
            shutil.rmtree(profile, ignore_errors=True)


async def _browser_call(browser: Page, method: str, **params: Any) -> dict[str, Any]:
    ident = next(browser.ids)
    await browser.ws.send_message(json.dumps({"id": ident, "method": method, "params": params}))
    with trio.fail_after(30):
        while True:
            message = json.loads(await browser.ws.get_message())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result


async def _devtools_url(process: trio.Process) -> str:
    """Chromium prints `DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID`."""
    assert process.stdout is not None
    seen = b""
    with trio.fail_after(60):
        while b"DevTools listening on " not in seen or not seen.endswith(b"\n"):
            chunk = await process.stdout.receive_some(4096)
            if not chunk:
                raise RuntimeError(f"chromium exited: {seen.decode(errors='replace')[-500:]}")
            seen += chunk
    line = next(x for x in seen.decode().splitlines() if "DevTools listening on " in x)
    return line.split("DevTools listening on ", 1)[1].strip()
