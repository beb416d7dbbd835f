"""`harness shrink RUN_DIR`: a failing run cut down to the smallest scenario that still fails.

A failing chaos run of 60 clients and 8 faults is hard to debug; no other chaos tool shrinks a
failing fault schedule. This one searches greedily, as delta debugging does: from the run's
resolved scenario it tries one smaller candidate at a time, biggest cuts first:

    clients halved                 each fault removed
    the run's duration halved (never before a fault ends)
    publishers halved              the rate halved, the last topic dropped
    each fault weakened, as its kind says (`Fault.weaken`: a kill to a terminate, a partition
    to a one-way one, a toxic's figures halved, a window halved, a window moved earlier)

Each candidate runs up to `runs` times (seeds seed, seed+1, ...) and is kept as soon as one run
fails the same check (nondeterminism: a defect that shows one time in three still shows); then
the search starts over from it. A candidate that passed every time is not tried again. The
search stops when no candidate fails, or when what is left of the time budget would not hold a
candidate's runs and the confirmation runs (each reckoned at the slowest run so far), so the
budget bounds the whole command; it writes
`RUN_DIR/shrunk.yaml`: the smallest failing scenario, with a header saying what was removed,
how often it failed and where its failing run is, ready to commit as a regression scenario.

Candidates are made on the scenario's YAML data and validated like any scenario, so a cut that
would make it invalid (a fault after the end, more topics per client than topics) is skipped.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
import yaml
from pydantic import ValidationError

from ..errors import InvalidScenario
from ..exits import Exit
from ..faults import KINDS, Fault
from ..grammar.units import parse_duration
from ..scenario import Scenario, fault_data, parse_scenario, resolved_data
from ..scenario._model import MAX_NAME

DEFAULT_RUNS = 3


@dataclass(frozen=True, slots=True)
class Candidate:
    what: str  # what it removes or weakens, for the header and the progress lines
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Shrunk:
    scenario: Scenario
    steps: tuple[str, ...]
    failed: tuple[int, int]  # the shrunk scenario, run again at the end: (failing runs, runs)
    run_dir: Path | None  # one of its failing runs
    tried: int
    seconds: float


def candidates(data: dict[str, Any]) -> Iterator[Candidate]:
    """Every one-step cut of a scenario's data: fewer clients first (every later run is
    cheaper), then each fault removed, then the rest."""
    faults = list(data.get("faults") or [])
    clients, workload = dict(data.get("clients") or {}), dict(data.get("workload") or {})
    count = int(clients.get("count", 10))
    if count > 1:
        yield _with(
            data, f"clients {count} -> {count // 2}", clients={**clients, "count": count // 2}
        )
    for i, fault in enumerate(faults):
        yield _with(data, f"removed fault {i + 1} ({_label(fault)})", faults=_without(faults, i))
    duration = parse_duration(data["duration"])
    if duration >= 2.0:
        yield _with(data, f"duration {duration:g}s -> {duration / 2:g}s", duration=duration / 2)
    publishers = int(workload.get("publishers", 1))
    if publishers > 1:
        half = {**workload, "publishers": publishers // 2}
        yield _with(data, f"publishers {publishers} -> {publishers // 2}", workload=half)
    rate = _rate(workload.get("rate", 10.0))
    if rate >= 2.0:
        yield _with(
            data, f"rate {rate:g}/s -> {rate / 2:g}/s", workload={**workload, "rate": rate / 2}
        )
    topics = list(clients.get("topics") or [])
    if len(topics) > 1:
        fewer = {**clients, "topics": topics[:-1]}
        fewer["topics_per_client"] = min(int(clients.get("topics_per_client", 1)), len(topics) - 1)
        yield _with(data, f"dropped topic {topics[-1]}", clients=fewer)
    for i, fault in enumerate(faults):
        for what, weaker in _weaker(fault):
            yield _with(data, f"fault {i + 1} {what}", faults=_replaced(faults, i, weaker))


def _weaker(fault: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The fault kind's own weaker forms (`Fault.weaken`), as YAML data again."""
    model = _fault(fault)
    if model is not None:
        for what, weaker in model.weaken():
            yield what, fault_data(weaker)


def _fault(fault: dict[str, Any]) -> Fault | None:
    kind = KINDS.get(str(fault.get("kind")))
    try:
        return None if kind is None else kind.model_validate(fault)
    except ValidationError:
        return None


def shrink(
    scenario: Scenario,
    check: str,
    attempt: Callable[[Scenario, int], tuple[bool, Path | None]],
    *,
    runs: int = DEFAULT_RUNS,
    budget: float = 600.0,
    say: Callable[[str], None],
) -> Shrunk:
    """The smallest scenario found that still fails `check`; `attempt(scenario, seed)` runs one
    candidate and says whether `check` failed, and where the run is."""
    started = time.monotonic()
    current = resolved_data(scenario)
    steps: list[str] = []
    rejected: set[str] = set()
    tried = 0
    slowest = 0.0  # the longest one run took: what the rest of the budget must keep room for

    def timed(candidate: Scenario, seed: int) -> tuple[bool, Path | None]:
        nonlocal slowest
        began = time.monotonic()
        outcome = attempt(candidate, seed)
        slowest = max(slowest, time.monotonic() - began)
        return outcome

    def left() -> float:
        return budget - (time.monotonic() - started)

    progress = True
    while progress and left() > 2 * runs * slowest:
        progress = False
        for candidate in candidates(current):
            # a candidate's runs and the confirmation runs at the end must fit in the budget
            if candidate.what in rejected or left() <= 2 * runs * slowest:
                continue
            try:
                parsed = parse_scenario(yaml.safe_dump(candidate.data), scenario.source)
            except InvalidScenario:
                continue  # the cut makes no valid scenario
            tried += 1
            failed_on = next(
                (n + 1 for n in range(runs) if timed(parsed, scenario.seed + n)[0]), None
            )
            if failed_on is not None:
                say(f"kept: {candidate.what} (failed {check} on run {failed_on} of {runs})")
                current, progress = candidate.data, True
                steps.append(candidate.what)
                break
            say(f"no:   {candidate.what} (passed {runs} of {runs})")
            rejected.add(candidate.what)
    current = {**current, "name": _shrunk_name(str(current["name"]))}
    final = parse_scenario(yaml.safe_dump(current), scenario.source)
    say(f"the shrunk scenario, {runs} runs more: how often it fails")
    outcomes = []
    for n in range(runs):
        if n and left() < slowest:
            say(f"the budget left room for {n} of the {runs} runs")
            break
        outcomes.append(timed(final, scenario.seed + n))
    where = next((run_dir for failing, run_dir in outcomes if failing), None)
    failed = (sum(failing for failing, _ in outcomes), len(outcomes))
    say(f"the shrunk scenario failed {check} in {failed[0]} of {failed[1]} runs")
    return Shrunk(final, tuple(steps), failed, where, tried, time.monotonic() - started)


def _shrunk_name(name: str) -> str:
    """The shrunk scenario's own name, so its runs do not land beside the original's."""
    if name.endswith("-shrunk"):
        return name
    return f"{name[: MAX_NAME - len('-shrunk')]}-shrunk"


def shrunk_yaml(shrunk: Shrunk, check: str, origin: Path) -> str:
    """The shrunk scenario as a file to commit: a header, then the resolved scenario."""
    lines = [
        f"# shrunk by `harness shrink` from {origin} (still fails {check})",
        f"# {len(shrunk.steps)} cuts in {shrunk.seconds:.0f}s, {shrunk.tried} candidates tried:",
        *(f"#   - {step}" for step in shrunk.steps),
        f"# run {shrunk.failed[1]} times more at the end (seeds seed..): failed {check} "
        f"{shrunk.failed[0]} of {shrunk.failed[1]}",
    ]
    if shrunk.run_dir is not None:
        lines.append(f"# a failing run: {shrunk.run_dir}")
    body = yaml.safe_dump(resolved_data(shrunk.scenario), sort_keys=False, allow_unicode=True)
    return "\n".join(lines) + "\n" + body


def run_attempt(check: str, out: Path) -> Callable[[Scenario, int], tuple[bool, Path | None]]:
    """One real run of a candidate (`harness.run.runner`), judged on `check`."""
    from .runner import RunOptions, run_scenario

    def attempt(scenario: Scenario, seed: int) -> tuple[bool, Path | None]:
        result = trio.run(run_scenario, scenario, RunOptions(out=out, seed=seed))
        if result.interrupted:
            raise KeyboardInterrupt
        verdicts = {r.name: r.validity for r in result.results}
        return verdicts.get(check) == "invalid", result.run_dir

    return attempt


def failing_check(results: dict[str, Any]) -> str | None:
    """The first check a run's results.json reports invalid."""
    for check in results.get("checks") or []:
        if isinstance(check, dict) and check.get("validity") == "invalid":
            return str(check.get("name"))
    return None


def _with(data: dict[str, Any], what: str, **changes: Any) -> Candidate:
    out = copy.deepcopy(data)
    out.update(changes)
    return Candidate(what, out)


def _without(faults: list[dict[str, Any]], i: int) -> list[dict[str, Any]]:
    return [f for j, f in enumerate(faults) if j != i]


def _replaced(faults: list[dict[str, Any]], i: int, fault: dict[str, Any]) -> list[dict[str, Any]]:
    return [fault if j == i else f for j, f in enumerate(faults)]


def _label(fault: dict[str, Any]) -> str:
    model = _fault(fault)
    if model is None:
        return str(fault.get("kind"))
    return f"{model.kind_name()} {model.target()} at {model.at:g}s".replace("  ", " ")


def _rate(value: Any) -> float:
    from ..grammar.units import parse_rate

    return float(parse_rate(value))


def main(
    run_dir: Path,
    *,
    check: str | None,
    runs: int,
    budget: float,
    say: Callable[[str], None],
    complain: Callable[[str], None],
) -> int:
    """`harness shrink`: 0 with shrunk.yaml written, 2 for a run that did not fail."""
    from .rundir import RunDir

    run = RunDir(run_dir)
    if not run.scenario.is_file() or not run.results.is_file():
        complain(f"error: {run_dir} is not a run directory (no scenario.yaml, results.json)")
        return Exit.USAGE
    chosen = check or failing_check(run.read_results())
    if chosen is None:
        complain(f"error: {run_dir} did not fail any check: there is nothing to shrink")
        return Exit.USAGE
    scenario = parse_scenario(run.scenario.read_text(encoding="utf-8"), str(run.scenario))
    say(f"shrinking {scenario.name} (fails {chosen}), {runs} runs a candidate, budget {budget:g}s")
    attempt = run_attempt(chosen, run.path / "shrink")
    shrunk = shrink(scenario, chosen, attempt, runs=runs, budget=budget, say=say)
    target = run.path / "shrunk.yaml"
    target.write_text(shrunk_yaml(shrunk, chosen, run.path), encoding="utf-8")
    say(f"{target}: {len(shrunk.steps)} cuts in {shrunk.seconds:.0f}s")
    return Exit.VALID
