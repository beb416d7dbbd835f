"""The HTML report: one self-contained page, read top to bottom, that says why on its first
screen.

A pure function of a run directory's contents (`results.json`, `history.jsonl`, the servers' trace
files), so `harness report RUN_DIR` re-renders it offline; `harness.run.rundir.write_report` reads
them and writes the page. Top to bottom: the verdict, seed and the command that replays the run;
one sentence per check that did not hold (`harness.checkers.headline`, the terminal's own), each
linked to its witnesses; warnings when a pass may mean little; one row per check with its figures
in words (`harness.checkers.figures`) against their limits; the timeline on the scenario's clock
(`_timeline`); the witnesses results.json holds, the first few open; each client the sentences
name, in their order, with its own events around its witness (`_drill`: both deliveries of a
duplicate, however far apart); the distributions and rates (`_charts`: latency, time to rejoin,
publishes by outcome, clients per node as one panel each, the load generator's lag); node-to-node
traffic around the first violation (`_messages`, from `--trace`), with what it cannot show.

Built in two steps: `_view.view` computes a frozen view model (every decision, unit-tested), and a
Jinja2 template with autoescape prints it (loops and ifs only). Inline CSS and SVG only: no script,
no network, opens offline; charts are SVG `viewBox`es that fill the page's width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from ..checkers import headline as headline
from ..checkers import headlines as headlines
from ..history import Op
from ._view import Report as Report
from ._view import view as view


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2")


def render(
    results: dict[str, Any],
    ops: Sequence[Op],
    run_dir: Path | None = None,
    traces: Mapping[str, Sequence[dict[str, Any]]] | None = None,
) -> str:
    """The report's HTML (see `view` for the arguments)."""
    return _template().render(r=view(results, ops, run_dir, traces))
