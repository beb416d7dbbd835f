"""JUnit XML for CI: one testsuite per scenario, one testcase per (seed, check) of every run.

`failure` = the check found a violation (message = the first witness's problem, or the limit it
broke: `p99 612 ms > 500 ms`), `error` = it could not decide (unknown, with the reason) or the
run failed, `skipped` = it had nothing to judge (vacuous; the run still exits 3). Warnings go to
each testcase's `system-out` (GitLab reads it only there) with the limits and the report link;
properties carry the seeds and versions (`research/reports-and-ci.md` §3.1).

Every text is made safe for XML (`harness.foreign.safe`: nothing XML 1.0 forbids, foreign text
cut to length), and a failure lists the first `MAX_WITNESSES` witnesses and the count, so the
file stays well-formed and small whatever the server sent.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Protocol

from ..checkers import CheckResult
from ..checkers._result import MAX_WITNESSES
from ..foreign import safe
from ..report import headline


def _xml(text: str, limit: int = 2000) -> str:
    return safe(text, "xml", limit=limit)


class JUnitRun(Protocol):
    """What a testsuite is made of (a `harness.run.rundir.RunOutcome`)."""

    @property
    def scenario(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def seed(self) -> int: ...
    @property
    def results(self) -> tuple[CheckResult, ...]: ...
    @property
    def duration(self) -> float: ...
    @property
    def error(self) -> str | None: ...
    @property
    def interrupted(self) -> bool: ...
    @property
    def warnings(self) -> tuple[str, ...]: ...


def render(
    runs: Sequence[JUnitRun],
    *,
    properties: Mapping[str, str] | None = None,
    reports: Sequence[str | None] = (),
) -> str:
    """One testsuite per scenario file; in it one testcase per (seed, check) of every run."""
    suites = ET.Element("testsuites")
    by_source: dict[tuple[str, str], list[int]] = {}
    for i, run in enumerate(runs):
        by_source.setdefault((run.scenario, run.source), []).append(i)
    for (scenario, source), indices in by_source.items():
        chosen = [runs[i] for i in indices]
        suite = ET.SubElement(suites, "testsuite", {"name": scenario})
        props = ET.SubElement(suite, "properties")
        seeds = ",".join(str(run.seed) for run in chosen)
        for key, value in {"seed": seeds, **(properties or {})}.items():
            ET.SubElement(props, "property", {"name": key, "value": value})
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for i in indices:
            _cases(suite, runs[i], source, reports[i] if i < len(reports) else None, counts)
        suite.attrib.update({key: str(value) for key, value in counts.items()})
        suite.set("time", f"{sum(run.duration for run in chosen):.3f}")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _cases(
    suite: ET.Element, run: JUnitRun, source: str, report: str | None, counts: dict[str, int]
) -> None:
    error = run.error or ("interrupted" if run.interrupted else None)
    classname = source.rsplit(".", 1)[0]
    name = f"{run.scenario}[seed={run.seed}]"
    notes = [_xml(f"warning: {w}") for w in run.warnings]
    attachment = [f"[[ATTACHMENT|{report}]]"] if report else []
    if error:
        attrs = {"classname": classname, "name": f"{name} run", "file": source, "time": "0"}
        case = ET.SubElement(suite, "testcase", attrs)
        message = _xml(error)
        ET.SubElement(case, "error", {"message": message, "type": "harness"}).text = message
        counts["tests"] += 1
        counts["errors"] += 1
    for result in run.results:
        attrs = {"classname": classname, "name": f"{name} {result.name}", "file": source}
        case = ET.SubElement(suite, "testcase", {**attrs, "time": "0"})
        counts["tests"] += 1
        if result.validity == "invalid":
            counts["failures"] += 1
            first = _xml(result.witnesses[0].problem) if result.witnesses else ""
            shown = result.witnesses[:MAX_WITNESSES]
            total = int(result.summary.get("violations", len(result.witnesses)))
            body = [_xml(f"why: {headline(result)}"), *(_xml(w.problem) for w in shown)]
            if total > len(shown):
                body.append(f"... and {total - len(shown)} more (witnesses.jsonl)")
            failure = ET.SubElement(case, "failure", {"message": first, "type": result.name})
            failure.text = "\n".join(body)
        elif result.validity == "unknown" and result.vacuous:
            counts["skipped"] += 1
            message = _xml(result.error or "nothing to judge")
            ET.SubElement(case, "skipped", {"message": message}).text = message
        elif result.validity == "unknown":
            counts["errors"] += 1
            message = _xml(result.error or "could not decide")
            ET.SubElement(case, "error", {"message": message, "type": result.name}).text = message
        out = [_xml(limit.text) for limit in result.limits] + notes + attachment
        if out:
            ET.SubElement(case, "system-out").text = "\n".join(out)
