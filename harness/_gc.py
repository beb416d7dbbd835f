"""`paused_gc()`: no cyclic garbage collection while a history is read or checked.

Why: reading a history builds two objects an op (the op and its value) and keeps all of them;
CPython's collector walks the young ones every 700 allocations and the whole heap each time it
grew by a quarter, so most of the collector's work is re-walking ops that will live until the
end. Measured with `bench/checkers.py` (1M ops): read 8.7 s and checks 24.9 s with the collector,
4.6 s and 14.4 s without. Ops hold no reference cycles, so nothing is lost meanwhile; garbage
cycles made in the block are collected when the collector runs again after it.

`paused_gc(freeze=True)` is for a block that reads a history to the end of the process (`harness
check`, a run's checks): the garbage there is first collected (the heap is small yet), and what
the block made is frozen at its end (`gc.freeze`), or the collector's first pass after the block
walks every object made in it: ~0.6 s after reading a million events. Frozen objects are still
freed when nothing refers to them; cycles among them wait for the next such block, which
unfreezes and collects first (a test process checks many runs).

`freeze_survivors()` is for the swarm once its clients have joined: thousands of clients are
millions of objects that live to the end of the run, and the collector's full pass walks all of
them whenever the heap grew by a quarter. With 10,000 clients in a worker that pass took
0.4-0.9 s, 2.6-3.1 s at the end of the run, every few seconds through a kill's reconnect herd
(the new connections' objects are what grows the heap): the worker's loop stood still that long,
so the harness read its own pauses as distress and the run was `unknown` (`bench/scale-20k.yaml`).
Frozen, they are never walked again; a frozen object that becomes cyclic garbage later (a
client's first connection, once it reconnected) is not reclaimed, so what can be kept is bounded
by the heap at the freeze, once.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc(*, freeze: bool = False) -> Iterator[None]:
    """Disable the cyclic collector for the block (nesting-safe: only the outermost resumes)."""
    was_enabled = gc.isenabled()
    if freeze and was_enabled:
        gc.unfreeze()  # what an earlier block froze can be collected again
        gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if freeze:
                gc.freeze()
            gc.enable()


def freeze_survivors() -> None:
    """Collect once, then freeze every object alive now (see above)."""
    gc.collect()
    gc.freeze()
