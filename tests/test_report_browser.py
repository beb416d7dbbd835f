"""The report of a failing zoo run in headless Chromium: it loads with no console error and no
network request but its own file, every chart draws with a size, and a full-page screenshot is
saved under the test's temporary directory. Without Chromium the test skips on a developer's
machine and fails under `CI=true` (`make setup` installs Debian's `chromium` when it may)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from harness.outputs.terminal import run_lines
from harness.run.runner import RunOptions, run_scenario
from harness.scenario import parse_scenario
from tests.support.chromium import find_chromium, open_page

ZOO = Path(__file__).resolve().parent.parent / "scenarios" / "zoo"


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no chromium to open the report with")
        pytest.skip("no chromium (apt-get install chromium)")
    return binary


@pytest.mark.slow
async def test_a_failing_runs_report_renders_in_chromium(tmp_path, chromium):
    path = ZOO / "kill.yaml"
    s = parse_scenario(path.read_text(), str(path))
    s = s.model_copy(
        update={"cluster": s.cluster.model_copy(update={"bugs": ("duplicate_after_rejoin",)})}
    )
    result = await run_scenario(s, RunOptions(out=tmp_path))
    assert result.exit_code == 1
    report = result.run_dir / "report.html"
    url = report.resolve().as_uri()
    async with open_page(url, chromium) as page:
        assert page.console_errors() == []
        assert page.requests() == [url]  # the page itself, nothing else
        sizes = await page.evaluate(
            "Array.from(document.querySelectorAll('section.chart')).map(s => [s.id,"
            " (s.querySelector('svg') || {getBoundingClientRect: () => ({height: 0})})"
            ".getBoundingClientRect().height])"
        )
        drawn = dict(sizes)
        for key in ("timeline", "latency", "rejoin", "publishes", "nodes", "distress", "messages"):
            assert drawn.get(key, 0) > 50, (key, drawn)
        headline = await page.evaluate("document.querySelector('ul.why li').textContent")
        assert headline.startswith("at_most_once: ")
        assert "`kill n2`" in headline
        # the terminal's sentence is the page's: the same clients, the same window
        results = json.loads((result.run_dir / "results.json").read_text())
        why = next(line for line in run_lines(results) if line.strip().startswith("why: "))
        assert headline == "at_most_once: " + why.strip().removeprefix("why: ")
        named = re.search(r"\(([^)]*)\) of", headline)
        assert named is not None, headline
        clients = [c for c in named.group(1).split(", ") if c != "..."]
        opened = await page.evaluate(
            "Array.from(document.querySelectorAll('details[id^=\"d-\"][open]')).map(d => d.id)"
        )
        assert opened == [f"d-{c}" for c in clients]
        # the first named client's table marks every delivery of the witnessed message, the
        # first one (long before the kill) included, and both are on screen when opened
        (witness,) = [
            w
            for c in results["checks"]
            if c["name"] == "at_most_once"
            for w in c["witnesses"][:20]
            if w["client"] == clients[0]
        ][:1]
        marked = await page.evaluate(
            f"Array.from(document.querySelectorAll('#d-{clients[0]} tr.at')).map(r =>"
            " [r.cells[0].textContent, r.textContent, r.getBoundingClientRect().height])"
        )
        assert [row[0] for row in marked] == [f"{d['time']:.3f}" for d in witness["deliveries"]]
        assert len(marked) >= 2
        assert all(witness["id"] in text and height > 0 for _, text, height in marked)
        width = await page.evaluate(
            "document.querySelector('#timeline svg').getBoundingClientRect().width"
        )
        assert width > 0.9 * await page.evaluate("document.body.clientWidth")  # full width
        shot = tmp_path / "report.png"
        shot.write_bytes(await page.screenshot())
    assert shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
