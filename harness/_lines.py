"""JSON lines over a byte stream (a pipe between harness processes)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import trio


async def json_lines(stream: trio.abc.ReceiveStream) -> AsyncIterator[Any]:
    """Each non-empty line of `stream`, decoded; ends at end of stream."""
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
