"""Every op of a recorded history speaks the vocabulary `harness.history.OP_NAMES` writes down:
a known name, one of its types, only its value keys (a delivery row's keys included)."""

from __future__ import annotations

from pathlib import Path

from harness.history import OP_NAMES
from harness.run.rundir import read_history


def assert_vocabulary(history: Path) -> None:
    strays: dict[str, set[str]] = {}
    for op in read_history(history):
        shape = OP_NAMES[op.f]
        assert op.type in shape.types, f"{op.f} {op.type} is not a type {op.f} takes"
        extra = set(op.value) - shape.keys
        if extra:
            strays.setdefault(op.f, set()).update(extra)
    assert not strays, f"value keys missing from OP_NAMES: {strays}"
