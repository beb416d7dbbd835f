"""What `harness list` shows: the scenarios of a directory with their descriptions, and every
name the grammar takes with its one line: fault kinds, checks, cluster backends, the reference
server's defects. Each list is read from its one home (the registries), never written here."""

from __future__ import annotations

from pathlib import Path

from ..checkers import DESCRIPTIONS
from ..errors import InvalidScenario
from ..faults import describe
from ..scenario import read_scenario
from ..scenario._reference import BUGS


def listing(directory: Path) -> list[str]:
    from ..cluster import describe_backends

    lines = [f"scenarios ({directory}):"]
    for path in sorted(directory.glob("*.yaml")):
        try:
            s = read_scenario(path)
            lines.append(f"  {path.name:<32} {s.description or s.name}")
        except (InvalidScenario, OSError):
            lines.append(f"  {path.name:<32} (invalid: run harness validate {path})")
    lines.append("fault kinds:")
    lines += [f"  {kind:<16} {text}" for kind, text in describe().items()]
    lines.append("checks:")
    lines += [f"  {name:<16} {text}" for name, text in DESCRIPTIONS.items()]
    lines.append("cluster backends (cluster.backend):")
    lines += [f"  {name:<16} {text}" for name, text in describe_backends().items()]
    lines.append("defects of the reference server (cluster.bugs), to prove a check catches one:")
    lines += [f"  {name:<37} {text}" for name, text in BUGS.items()]
    lines.append(
        "after a failing run: harness shrink RUN_DIR (the smallest scenario that still fails)"
    )
    return lines
