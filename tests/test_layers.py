"""The layering holds (in the spirit of trio's export test): the protocol is a leaf, the pure
layers load no I/O module, and the harness never imports the reference server.

The pure layers are checked by importing each one in a fresh interpreter and looking at what
came along (so an indirect import counts too); the protocol and the server rule by reading every
module's imports."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE = [
    "harness.history",
    "harness.vocabulary",
    "harness.witness",
    "harness.foreign",
    "harness.grammar.units",
    "harness.grammar.contract",
    "harness.grammar.behaviour",
    "harness.outputs.terminal",
    "harness.outputs.ci",
    "harness.faults",
    "harness.scenario",
    "harness.checkers",
    "harness.report",
    "harness.phoenix",
]
IO_MODULES = [
    "trio",
    "trio_websocket",
    "wsproto",
    "h11",
    "subprocess",
    "harness.infra.http",
    "harness.infra.process",
    "harness.cluster",
    "harness.infra.toxiproxy",
    "harness.infra.redis",
    "harness.swarm",
    "harness.run.nemesis",
    "harness.broadcast_proxy",
    "harness.run.shrink",
    "harness.run.rundir",
    "harness.run.runner",
    "harness.cli",
    "server_under_test",
]


@pytest.mark.parametrize("module", PURE)
def test_a_pure_layer_loads_no_io_module(module):
    probe = (
        f"import json, sys; import {module}; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{sorted({m.split('.')[0] for m in IO_MODULES})!r})))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT
        ).stdout
    )
    forbidden = [m for m in loaded if any(m == io or m.startswith(io + ".") for io in IO_MODULES)]
    assert forbidden == []


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                names.add(node.module)
    return names


def test_the_protocol_imports_nothing_else_of_the_harness():
    for path in (ROOT / "harness" / "phoenix").rglob("*.py"):
        outside = {
            n
            for n in _imports(path)
            if n.startswith("harness") and not n.startswith("harness.phoenix")
        }
        assert outside == set(), path


def test_the_harness_never_imports_the_reference_server():
    for path in (ROOT / "harness").rglob("*.py"):
        assert not {n for n in _imports(path) if n.startswith("server_under_test")}, path


def test_the_reference_server_imports_only_the_protocol_of_the_harness():
    for path in (ROOT / "server_under_test").rglob("*.py"):
        harness = {n for n in _imports(path) if n.startswith("harness")}
        assert all(n.startswith("harness.phoenix") for n in harness), (path, harness)


def test_no_module_is_over_450_lines():
    big = {
        str(p.relative_to(ROOT)): n
        for p in [*(ROOT / "harness").rglob("*.py"), *(ROOT / "server_under_test").rglob("*.py")]
        if (n := len(p.read_text().splitlines())) > 450
    }
    assert big == {}


def test_backend_names_are_written_once():
    """The grammar's `cluster.backend` values are the cluster's backends, no other."""
    from typing import get_args

    from harness.cluster import BACKENDS
    from harness.scenario._cluster import Backend

    assert set(BACKENDS) == set(get_args(Backend))


def test_a_swarm_worker_loads_only_what_it_runs():
    """A worker process is started for every share of a big swarm: it must not pay for the
    checkers' numpy, the report's Jinja2, the grammar's fault and check models or the run
    directory (0.40 s to import against 1.31 s when it did)."""
    probe = (
        "import json, sys; import harness.swarm.worker; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('numpy', 'jinja2') or m.startswith(('harness.scenario', 'harness.checkers', "
        "'harness.faults', 'harness.run', 'harness.report')))))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT
        ).stdout
    )
    assert loaded == []
