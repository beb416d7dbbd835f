"""The terminal's block of a run, as snapshots of the text rendered from recorded run
directories (`tests/data/runs/*/results.json`, from real runs: a valid one, a duplicate after a
kill, a latency limit, a cluster that did not re-form in time, a hostile server's injected ids
and a read it never answered), without colour and with it. `harness check` prints the same
lines from the same file, so these are its output too.

A change to what the terminal says shows as a snapshot diff; after reading it, accept it with
`pytest tests/test_terminal.py --snapshot-update` (syrupy).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.outputs.terminal import run_lines, total_line

RUNS = Path(__file__).parent / "data" / "runs"
RECORDED = sorted(p.name for p in RUNS.iterdir() if (p / "results.json").exists())


def rendered(name: str, *, colour: bool) -> str:
    results = json.loads((RUNS / name / "results.json").read_text())
    text = "\n".join(run_lines(results, f"runs/{name}", colour=colour))
    return text.replace("\x1b", "\\e")  # the colour codes, readable in the snapshot


@pytest.mark.parametrize("name", RECORDED)
def test_the_block_of_a_recorded_run(name: str, snapshot) -> None:
    assert rendered(name, colour=False) == snapshot


@pytest.mark.parametrize("name", RECORDED)
def test_the_coloured_block_differs_only_by_its_colour_codes(name: str, snapshot) -> None:
    coloured = rendered(name, colour=True)
    assert coloured == snapshot
    plain = coloured
    for code in ("\\e[31m", "\\e[32m", "\\e[33m", "\\e[2m", "\\e[0m"):
        plain = plain.replace(code, "")
    assert plain == rendered(name, colour=False)


def test_nothing_the_server_sent_reaches_the_terminal_raw() -> None:
    text = "\n".join(run_lines(json.loads((RUNS / "hostile" / "results.json").read_text())))
    assert "::error" in text  # said, but escaped: not at the start of a line, no newline
    assert not any(line.startswith("::") for line in text.splitlines())
    assert not any((ord(ch) < 32 and ch != "\n") or 0x7F <= ord(ch) <= 0x9F for ch in text)


def test_the_total_over_several_runs() -> None:
    outcomes = ["valid", "invalid", "valid", "unknown", "valid"]
    assert total_line(outcomes, 1) == "5 runs: 3 valid, 1 invalid, 1 unknown (exit 1)"
    assert total_line(["valid"], 0) == "1 run: 1 valid (exit 0)"
    assert total_line(outcomes, 1, colour=True).startswith("5 runs: \x1b[32m3 valid\x1b[0m, ")
