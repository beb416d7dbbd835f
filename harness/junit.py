"""JUnit XML for CI: one testsuite per run, one testcase per check.

`failure` = the check found a violation (message = the first witness's problem), `error` = it
could not decide (unknown) or the run failed; properties carry the seed and versions
(`research/reports-and-ci.md` §3.1).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

from .checkers import CheckResult


def render(
    scenario: str,
    source: str,
    results: Sequence[CheckResult],
    *,
    seed: int,
    duration: float,
    properties: Mapping[str, str] | None = None,
    error: str | None = None,
    report: str | None = None,
) -> str:
    suites = ET.Element("testsuites")
    failures = sum(r.validity == "invalid" for r in results)
    errors = sum(r.validity == "unknown" for r in results) + (1 if error else 0)
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "name": scenario,
            "tests": str(len(results) + (1 if error else 0)),
            "failures": str(failures),
            "errors": str(errors),
            "skipped": "0",
            "time": f"{duration:.3f}",
        },
    )
    props = ET.SubElement(suite, "properties")
    for key, value in {"seed": str(seed), **(properties or {})}.items():
        ET.SubElement(props, "property", {"name": key, "value": value})
    classname = source.rsplit(".", 1)[0]
    if error:
        attrs = {"classname": classname, "name": f"{scenario}[seed={seed}] run", "file": source}
        case = ET.SubElement(suite, "testcase", {**attrs, "time": "0"})
        ET.SubElement(case, "error", {"message": error, "type": "harness"}).text = error
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": classname,
                "name": f"{scenario}[seed={seed}] {result.name}",
                "file": source,
                "time": "0",
            },
        )
        if result.validity == "invalid":
            first = result.witnesses[0].problem if result.witnesses else ""
            body = "\n".join(w.problem for w in result.witnesses)
            ET.SubElement(case, "failure", {"message": str(first), "type": result.name}).text = body
        elif result.validity == "unknown":
            message = result.error or "could not decide"
            ET.SubElement(case, "error", {"message": message, "type": result.name}).text = message
        if report:
            ET.SubElement(case, "system-out").text = f"[[ATTACHMENT|{report}]]"
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
