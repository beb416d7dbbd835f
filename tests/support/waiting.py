"""Wait for a condition with a deadline (never a bare sleep)."""

from __future__ import annotations

from collections.abc import Callable

import trio


async def wait_until(
    predicate: Callable[[], object], *, timeout: float = 10.0, what: str = ""
) -> None:
    with trio.move_on_after(timeout):
        while not predicate():  # noqa: ASYNC110 - polls state owned by other tasks/processes
            await trio.sleep(0.01)
        return
    raise AssertionError(f"condition not met within {timeout}s: {what or predicate}")
