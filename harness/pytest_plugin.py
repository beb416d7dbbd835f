"""The pytest plugin (`pytest11` entry point `chaos`): scenarios as test items, and fixtures.

Off unless asked. `pytest --chaos scenarios/` (or files) collects every scenario file given or
found under the paths as items, one per seed (`--chaos-seed N` replaces the scenario's seed,
`--chaos-repeat N` runs seeds N times from it). An item passes when the run is `valid`; an
`invalid` run fails with the verdict table and the first witnesses of each failed check, an
`unknown` one (the harness could not judge, or the run could not be set up) fails too, with the
reason: a run that tested nothing is never green. The run directory (history, results.json,
report.html) is kept under pytest's temporary directory or `--chaos-out DIR`, and its path is in
the failure text. A scenario that does not validate is a collection error naming file:line.

Fixtures for a team's own tests (pytest-trio; mark the test `trio` or set `trio_mode`):

    chaos_cluster   the cluster of the scenario named by `@pytest.mark.chaos(scenario=...)` (a
                    path or YAML text; default: two reference nodes, four clients), started with
                    its proxies and joined swarm: `harness.run.live.Live` (urls, apply, ops())
    chaos_client    `await chaos_client(node="n1", topics=[...])`: one more client with the
                    phoenix.js semantics on that cluster, joined on return
    chaos_run       `await chaos_run(scenario, seed=None)`: a whole scenario run; returns the
                    `RunResult` (`.outcome`, `.results`, `.run_dir`)

Markers: `chaos` (every scenario item carries it; select with `-m chaos`) and `slow`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from .checkers import CheckResult
from .errors import InvalidScenario
from .foreign import safe_lines
from .report import headline
from .run.live import Live, LiveClient, load_scenario, open_live
from .run.runner import RunOptions, RunResult, run_scenario
from .scenario import Scenario, read_scenario

DEFAULT_CLUSTER = """\
name: chaos-cluster
duration: 1h
cluster: {nodes: 2}
clients: {count: 4, topics: ["room:1"]}
workload: {publishers: 0}
"""
_TOP_KEY = re.compile(rb"^(name|duration)\s*:", re.M)
WITNESSES_SHOWN = 3


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "channel chaos scenarios (harness)")
    group.addoption(
        "--chaos",
        action="store_true",
        help="collect scenario YAML files from the given paths as test items",
    )
    group.addoption("--chaos-seed", type=int, default=None, metavar="N", help="seed to run")
    group.addoption(
        "--chaos-repeat", type=int, default=1, metavar="N", help="run N seeds from the seed"
    )
    group.addoption("--chaos-out", default=None, metavar="DIR", help="keep run directories here")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos(scenario=...): a channel chaos test (harness)")
    config.addinivalue_line("markers", "slow: a test that runs for many seconds")
    if config.getoption("chaos_repeat") < 1:
        raise pytest.UsageError("--chaos-repeat must be 1 or more")
    seed = config.getoption("chaos_seed")
    if seed is not None and seed < 0:
        raise pytest.UsageError("--chaos-seed must be 0 or more")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    config = parent.config
    if not config.getoption("chaos") or file_path.suffix not in (".yaml", ".yml"):
        return None
    here = config.invocation_params.dir
    given = any((here / arg.split("::")[0]).resolve() == file_path for arg in config.args)
    if not given and not _looks_like_a_scenario(file_path):
        return None  # a compose file or CI config in a collected directory
    return ScenarioFile.from_parent(parent, path=file_path)


def _looks_like_a_scenario(path: Path) -> bool:
    try:
        head = path.read_bytes()[:65536]
    except OSError:
        return False
    return len({m.group(1) for m in _TOP_KEY.finditer(head)}) == 2


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[ScenarioItem]:
        try:
            scenario = read_scenario(self.path)
        except InvalidScenario as exc:
            raise self.CollectError(str(exc)) from None
        first = self.config.getoption("chaos_seed")
        first = scenario.seed if first is None else first
        for seed in range(first, first + self.config.getoption("chaos_repeat")):
            item = ScenarioItem.from_parent(
                self, name=f"{scenario.name}[seed{seed}]", scenario=scenario, seed=seed
            )
            item.add_marker("chaos")
            yield item


class ChaosFailure(Exception):
    """A run that was not valid; its text is the verdict table and the witnesses."""


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.seed = seed
        # Plugins that mark items by their test function read `item.obj` (pytest-trio's
        # `trio_mode` automark does, for every collected item): a scenario's is `runtest`, a
        # plain function, so it is left unmarked and runs its own trio loop.
        self.obj = self.runtest

    def runtest(self) -> None:
        out = _out_dir(self.config, self.scenario.name)
        result = trio.run(run_scenario, self.scenario, RunOptions(out=out, seed=self.seed))
        self.user_properties.append(("run_dir", str(result.run_dir)))
        if result.outcome != "valid":
            raise ChaosFailure(failure_text(result))

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        if isinstance(excinfo.value, ChaosFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario {self.name}"


def failure_text(result: RunResult) -> str:
    """What a reader needs in the pytest summary: the verdict, each check, the witnesses of the
    ones that failed, and where the run directory and report are."""
    lines = [f"{result.outcome}: seed {result.seed}, exit {result.exit_code}"]
    if result.error:
        lines.append(f"error: {result.error}")
    width = max((len(r.name) for r in result.results), default=5)
    for r in result.results:
        lines.append(f"  {r.name:<{width}}  {r.validity:<8} {_figure(r)}")
    for r in result.results:
        if r.validity == "valid":
            continue
        if r.error:
            lines.append(f"{r.name}: {r.error}")
        elif r.witnesses:
            lines.append(f"{r.name} why: {headline(r)}")
        for w in r.witnesses[:WITNESSES_SHOWN]:
            lines.append(f"{r.name} witness: {w.problem}")
        if len(r.witnesses) > WITNESSES_SHOWN:
            lines.append(f"{r.name}: {len(r.witnesses) - WITNESSES_SHOWN} more witnesses")
    lines.append(f"run directory: {result.run_dir}")
    lines.append(f"report: {result.run_dir / 'report.html'}")
    return safe_lines("\n".join(lines))  # server text, made safe for a terminal and CI log


def _figure(r: CheckResult) -> str:
    count = r.summary.get("violations")
    return "" if count is None else f"{count} violations"


def _out_dir(config: pytest.Config, name: str) -> Path:
    out = config.getoption("chaos_out")
    if out is not None:
        path = Path(out)
        path.mkdir(parents=True, exist_ok=True)
        return path
    factory: pytest.TempPathFactory = config._tmp_path_factory  # type: ignore[attr-defined]
    return factory.mktemp(re.sub(r"[^\w.-]", "_", name))


def _marked_scenario(request: pytest.FixtureRequest) -> Scenario:
    marker = request.node.get_closest_marker("chaos")
    text = marker.kwargs.get("scenario") if marker is not None else None
    if text is None:
        return load_scenario(DEFAULT_CLUSTER)
    source = Path(request.node.path).parent / text if _is_path(text) else text
    return load_scenario(source)


def _is_path(text: str) -> bool:
    return "\n" not in text and text.endswith((".yaml", ".yml"))


@pytest.fixture
async def chaos_cluster(request: pytest.FixtureRequest) -> AsyncIterator[Live]:
    scenario = _marked_scenario(request)
    out = _out_dir(request.config, request.node.name)
    async with open_live(scenario, out) as live:
        yield live


@pytest.fixture
def chaos_client(chaos_cluster: Live) -> Callable[..., Awaitable[LiveClient]]:
    async def make(node: str | None = None, topics: Sequence[str] | None = None) -> LiveClient:
        return await chaos_cluster.client(node, topics)

    return make


@pytest.fixture
def chaos_run(request: pytest.FixtureRequest) -> Callable[..., Awaitable[RunResult]]:
    async def run(scenario: Scenario | str | Path, seed: int | None = None) -> RunResult:
        if isinstance(scenario, str) and _is_path(scenario):
            scenario = Path(request.node.path).parent / scenario
        loaded = load_scenario(scenario)
        out = _out_dir(request.config, loaded.name)
        return await run_scenario(loaded, RunOptions(out=out, seed=seed))

    return run
