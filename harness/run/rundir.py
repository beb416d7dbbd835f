"""The run directory, and the one module that writes its artefacts.

    reports/<scenario>/<UTC time>-seed<seed>/
        scenario.yaml    the resolved scenario (seed fixed, random faults expanded): replays
        history.jsonl    every op, ordered by time (merged from the workers' parts)
        results.json     the verdict, every check's result, distress, warnings, the exit code
        witnesses.jsonl  every witness of every check (results.json keeps the first of each)
        junit.xml        one test case per check
        report.html      one self-contained page (rendered from the files above)
        logs/            each node, toxiproxy, redis
        swarm/           the workers' specs and history parts, when the swarm has workers

`HistoryWriter` appends one JSON line per op and flushes at most every `flush_interval`
seconds (and on close), so a run that is killed half-way leaves a readable prefix; the reader
skips a torn last line. `write_outcome` is the one writer of results.json, junit.xml and
report.html, used both by a run and by `harness check`, so the two cannot disagree.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .. import __version__
from .._gc import paused_gc
from ..checkers import Assessment, CheckResult, Distress
from ..errors import HistoryError, where
from ..exits import Outcome, exit_code
from ..history import Encoder, Op, parse_lines, workload_start
from ..journal import HistoryWriter as HistoryWriter
from ..outputs import junit
from ..report import render
from ..rows import NAMED, PUBLISHER, Names, expand, is_compact, names_of
from .lean import read_lean as read_lean


def read_history(path: Path, *, on_workload_clock: bool = False) -> list[Op]:
    """Every op of a history file, on the run's clock as written, or `on_workload_clock`: time
    0 where the workload began (what checkers and the report use; `history.workload_clock`),
    shifted as it is read."""
    with paused_gc():
        data = path.read_bytes()
        shift = workload_start(data) if on_workload_clock else 0.0
        return list(parse_lines(data.splitlines(keepends=True), source=str(path), shift=shift))


def write_history(path: Path, ops: Iterable[Op]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    encoder = Encoder()
    with tmp.open("wb") as f:
        for op in ops:
            f.write(encoder.line(op) + b"\n")
    tmp.replace(path)


def merge_parts(parts: Iterable[Path], out: Path) -> None:
    """One history from the processes' parts, ordered by time (stable), then the parts are
    removed: a run keeps one copy. Each part has its own names table (`harness.rows`): its
    compact rows are given the merged file's codes (one table, on the file's first line);
    every other line is moved as it is, never re-encoded."""
    lines: list[tuple[float, int, bytes]] = []
    names = Names()
    sources = [p for p in parts if p.exists()]
    for path in sources:
        table: dict[int, str] = {}
        recoded: dict[int, int | None] = {}  # this part's code -> the merged file's
        with path.open("rb") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    data = orjson.loads(line)
                    if isinstance(data, list):
                        if is_compact(data):
                            line = _recode(data, table, recoded, names)
                        time = float(data[0])
                    else:
                        entries = names_of(data)
                        if entries is not None:
                            table.update(entries)
                            for code in entries:  # a code given again means its new name
                                recoded.pop(code, None)
                            continue
                        time = float(data["time"])
                except (ValueError, KeyError, TypeError, IndexError):
                    if line.endswith(b"\n"):
                        raise HistoryError(f"{path}:{number}: not a history op") from None
                    continue  # the torn last line of a process that was killed mid-write
                if not line.endswith(b"\n"):
                    line += b"\n"
                lines.append((time, len(lines), line))
    lines.sort()
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tmp.open("wb") as f:
        if names.codes:
            f.write(orjson.dumps({"names": names.take()}) + b"\n")
        f.writelines(line for _, _, line in lines)
    tmp.replace(out)
    for path in sources:
        path.unlink()


def _recode(
    row: list[Any], table: dict[int, str], recoded: dict[int, int | None], names: Names
) -> bytes:
    """A part's compact row with the merged file's codes (its strings, if the merged table is
    full); ValueError if it names a code its part's table lacks."""
    out = list(row)
    for k in (*NAMED, PUBLISHER):
        code = row[k]
        if code is None:
            continue
        if code not in recoded:
            if type(code) is not int or code not in table:
                raise ValueError("a code its table lacks")
            recoded[code] = names.code(table[code])
        if recoded[code] is None:
            return orjson.dumps(expand(row, table)) + b"\n"
        out[k] = recoded[code]
    return orjson.dumps(out) + b"\n"


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)


@dataclass(frozen=True, slots=True)
class RunDir:
    """One run's directory and the names of what is in it."""

    path: Path

    @classmethod
    def create(cls, out: Path, name: str, seed: int) -> RunDir:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = out / name / f"{stamp}-seed{seed}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = out / name / f"{stamp}-seed{seed}-{suffix}"
        (path / "logs").mkdir(parents=True)
        return cls(path)

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def swarm(self) -> Path:
        return self.path / "swarm"

    @property
    def history(self) -> Path:
        return self.path / "history.jsonl"

    @property
    def main_history(self) -> Path:
        """The runner's and nemesis's part when workers write their own."""
        return self.path / "history.main.jsonl"

    @property
    def scenario(self) -> Path:
        return self.path / "scenario.yaml"

    @property
    def results(self) -> Path:
        return self.path / "results.json"

    @property
    def witnesses(self) -> Path:
        return self.path / "witnesses.jsonl"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    def write_scenario(self, text: str) -> None:
        self.scenario.write_text(text, encoding="utf-8")

    def merge_history(self, parts: Sequence[Path]) -> None:
        merge_parts([self.main_history, *parts], self.history)

    def read_history(self) -> list[Op]:
        """The run's history on the workload clock (time 0 where the workload began)."""
        return read_history(self.history, on_workload_clock=True)

    def read_results(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.results.read_text(encoding="utf-8"))
        return data


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What a run (or a re-check) concluded, for results.json and junit.xml."""

    scenario: str
    source: str
    seed: int
    assessment: Assessment
    duration: float
    error: str | None = None
    interrupted: bool = False

    @property
    def results(self) -> tuple[CheckResult, ...]:
        return self.assessment.results

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.assessment.warnings

    @property
    def distress(self) -> tuple[Distress, ...]:
        return self.assessment.distress

    @property
    def outcome(self) -> Outcome:
        if self.interrupted:
            return "interrupted"
        if self.error is not None:
            return "error"
        return self.assessment.validity

    @property
    def exit_code(self) -> int:
        return int(exit_code(self.outcome))


def write_outcome(run: RunDir, outcome: RunOutcome, junit_path: Path | None = None) -> None:
    """results.json, junit.xml and report.html, from one outcome."""
    write_json(
        run.results,
        {
            "scenario": outcome.scenario,
            "source": outcome.source,
            "seed": outcome.seed,
            "validity": outcome.outcome,
            "exit_code": outcome.exit_code,
            "error": outcome.error,
            "harness_version": __version__,
            "duration": round(outcome.duration, 3),
            "warnings": list(outcome.warnings),
            "distress": [d.to_json() for d in outcome.distress],
            "load": outcome.assessment.load or {},
            "formation": outcome.assessment.formation,
            "checks": [r.to_json() for r in outcome.results],
        },
    )
    write_witnesses(run.witnesses, outcome.results)
    xml = junit_xml([outcome], [run])
    (run.path / "junit.xml").write_text(xml, encoding="utf-8")
    try:
        write_report(run.path)
    except Exception as exc:  # a report bug must not cost the verdict: a page that says so
        text = html.escape(where(exc))
        page = f"<!doctype html><title>report failed</title><p>The report failed: {text}</p>"
        run.report.write_text(page, encoding="utf-8")
    if junit_path is not None:
        junit_path.parent.mkdir(parents=True, exist_ok=True)
        junit_path.write_text(xml, encoding="utf-8")


def junit_xml(outcomes: Sequence[RunOutcome], runs: Sequence[RunDir]) -> str:
    """One JUnit document for one run or several (`--repeat`)."""
    return junit.render(
        outcomes, properties={"harness": __version__}, reports=[str(r.report) for r in runs]
    )


def write_witnesses(path: Path, results: Sequence[CheckResult]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for result in results:
            for witness in result.witnesses:
                f.write(json.dumps({"check": result.name, **witness.to_json()}) + "\n")
            more = int(result.summary.get("violations", 0)) - len(result.witnesses)
            if more > 0:  # past `checkers.KEPT`: counted, not built
                said = f"... and {more:,} more {result.name} violations, counted, not kept"
                f.write(json.dumps({"check": result.name, "problem": said, "more": more}) + "\n")
    tmp.replace(path)


def write_report(path: Path) -> Path:
    """Render `report.html` from the run directory's results and history (on the run's clock,
    as the report takes it: the servers' trace lines are placed from it)."""
    run = RunDir(path)
    ops = read_history(run.history) if run.history.exists() else []
    html = render(run.read_results(), ops, run.path, read_traces(run.logs))
    run.report.write_text(html, encoding="utf-8")
    return run.report


MAX_TRACE_LINES = 500_000  # over all of a run's trace files; past it the diagram says so


def read_traces(logs: Path) -> dict[str, list[dict[str, Any]]] | None:
    """The servers' `--trace` files (`logs/*.trace.jsonl`), or None when there are none. A line
    that is not a JSON object (a node killed mid-write) is skipped."""
    files = sorted(logs.glob("*.trace.jsonl")) if logs.is_dir() else []
    if not files:
        return None
    traces: dict[str, list[dict[str, Any]]] = {}
    budget = MAX_TRACE_LINES
    for path in files:
        records = traces.setdefault(path.name, [])
        with path.open("rb") as lines:
            for line in lines:
                if budget <= 0:
                    break
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
                    budget -= 1
    return traces
