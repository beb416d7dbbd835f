"""Hostile scenario files: every malformed input is a located problem (exit 2), never a
traceback, never a runaway parse, and nothing is kept between parses.

Three sources: the reproducers found by hand and by an earlier fuzz run (each with the words its
problem must contain), a seeded mutation fuzz of the shipped scenarios (2,000 files, bounded in
count and in time), and Hypothesis over any bytes and any YAML tree.
"""

from __future__ import annotations

import contextlib
import random
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import InvalidScenario
from harness.scenario import parse_scenario, read_scenario

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "scenarios").rglob("*.yaml"))
BASE = "name: a\nduration: 5s\n"
LAUGHS = BASE + "".join(
    f"{chr(97 + i)}: &{chr(97 + i)} [{','.join([f'*{chr(96 + i)}'] * 9) if i else '1,2,3,4,5,6,7,8,9'}]\n"
    for i in range(10)
)

REPRODUCERS = [
    (b"name: caf\xe9\nduration: 5s\n", "1:10: not UTF-8"),
    (b"name: a\x1b\nduration: 5s\n", "not allowed in YAML"),
    (b"name: !x a\nduration: 5s\n", "unknown YAML tag '!x'"),
    (BASE.encode() + b"description: 2001-13-45\n", "not a valid timestamp"),
    (b"name: a\nseed: !!int abc\nduration: 5s\n", "'abc' is not a valid int"),
    (
        BASE.encode() + b"faults: [{at: 1s, for: 1s, kind: partition, groups: [[[n1]], [n2]]}]\n",
        "groups",
    ),
    (BASE.encode() + b"clients: {timings: {heartbeat_interval: .inf}}\n", "only finite numbers"),
    (BASE.encode() + b"clients: {timings: {timeout: .nan}}\n", "only finite numbers"),
    (BASE.encode() + b"clients: {timings: {reconnect_after: [.inf]}}\n", "only finite numbers"),
    (b"name: a\nduration: " + b"9" * 300 + b"\n", "out of range"),
    (BASE.encode() + b"description: &r [*r]\n", "refers to a value that contains it"),
    (BASE.encode() + b"description: " + b"[" * 1000 + b"]" * 1000 + b"\n", "nested deeper"),
    (LAUGHS.encode(), "aliases expanding"),
    (b"name: a\nduration: .nan\n", "only finite numbers"),
    (b"name: a\nsettle: .nan\nduration: 5s\n", "only finite numbers"),
    (BASE.encode() + b"workload: {rate: .inf}\n", "only finite numbers"),
    (BASE.encode() + b"workload: {rate: 1.0e+30}\n", "out of range"),
    (BASE.encode() + b"clients: {timings: {heartbeat_interval: 0s}}\n", "at least 10ms"),
    (
        BASE.encode()
        + b"faults:\n  - {at: 1s, kind: kill, node: n1, restart_after: 2s}\n"
        + b"  - {at: 1500ms, kind: kill, node: n1, restart_after: 1s}\n",
        "one node fault at a time",
    ),
    (b"name: " + b"a" * 300 + b"\nduration: 5s\n", "at most 80 characters"),
    (b"x" * 1_000_001, "a scenario may have 1,000,000"),
]


def problem_of(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "s.yaml"
    path.write_bytes(data)
    with pytest.raises(InvalidScenario) as caught:
        read_scenario(path)
    return str(caught.value)


@pytest.mark.parametrize(("data", "words"), REPRODUCERS, ids=range(len(REPRODUCERS)))
def test_each_reproducer_is_a_located_problem(tmp_path, data, words):
    text = problem_of(data, tmp_path)
    assert words in text
    assert text.startswith(f"{tmp_path / 's.yaml'}:")
    assert "\n" not in text.splitlines()[0]


def test_a_newline_in_a_key_cannot_start_a_line_of_its_own(tmp_path):
    text = problem_of(BASE.encode() + b'"x\\n::notice::y": 1\n', tmp_path)
    assert "::notice::" in text
    assert not any(line.startswith("::") for line in text.splitlines())


def test_the_command_line_exits_2_with_the_problem_and_no_traceback(tmp_path):
    paths = []
    for i, (data, _) in enumerate(REPRODUCERS):
        paths.append(tmp_path / f"r{i}.yaml")
        paths[-1].write_bytes(data)
    done = subprocess.run(
        [sys.executable, "-m", "harness", "validate", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"GITHUB_ACTIONS": "true", "PATH": ""},
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    for path in paths:
        assert f"{path}:" in done.stderr, path  # each file's own problem, located
    annotations = done.stdout.splitlines()
    assert len(annotations) >= len(paths)
    assert all(line.startswith("::error file=") for line in annotations), done.stdout


HOSTILE = [
    ".inf",
    "-.inf",
    ".nan",
    "!!int x",
    "!!float y",
    "!x z",
    "&a [*a]",
    "*nope",
    "[[[[[[",
    "{a: 1, a: 2}",
    "9" * 400,
    "1e400",
    "-1",
    "0",
    "2001-13-45",
    "\x07",
    "~",
    "[]",
    "{}",
    "yes",
    "'",
    '"\\x"',
    "!!binary AAAA",
    "!!set {a}",
    "!!python/object:os.system x",
    "? [a, b]\n: c",
    "%YAML 1.1\n---",
    "@",
    "`",
    "| \n  x",
]


def mutate(text: str, rng: random.Random) -> bytes:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 4)):
        move = rng.randrange(6)
        i = rng.randrange(len(lines))
        if move == 0 and ":" in lines[i]:  # a hostile value
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {rng.choice(HOSTILE)}"
        elif move == 1:  # a hostile line
            lines.insert(i, rng.choice(HOSTILE))
        elif move == 2:  # duplicate or drop a line
            lines.insert(i, lines[i]) if rng.random() < 0.5 else lines.pop(i)
        elif move == 3:  # re-indent
            lines[i] = " " * rng.randint(0, 7) + lines[i].lstrip()
        elif move == 4:  # cut the file short
            lines = lines[: i + 1]
        if not lines:
            lines = ["x"]
    data = bytearray("\n".join(lines).encode("utf-8"))
    if rng.random() < 0.2:  # flip a byte
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def test_two_thousand_mutated_scenarios_never_crash_or_run_away(tmp_path):
    rng = random.Random(20261201)
    texts = [p.read_text() for p in SHIPPED]
    slowest, deadline = (0.0, b""), time.monotonic() + 120
    path = tmp_path / "m.yaml"
    for _ in range(2000):
        if time.monotonic() > deadline:
            break  # bounded in time on a slow box; the count is the goal
        data = mutate(rng.choice(texts), rng)
        path.write_bytes(data)
        started = time.monotonic()
        problems = [None]
        try:
            read_scenario(path)
        except InvalidScenario as exc:
            problems = exc.problems
        assert problems, "an invalid file names at least one problem"
        slowest = max(slowest, (time.monotonic() - started, data))
    # the slowest parse, as data: a runaway (seconds) is a bug; noise is not judged
    assert slowest[0] < 5.0, slowest[1][:200]


def test_nothing_is_kept_between_parses():
    text = (ROOT / "scenarios" / "quickstart.yaml").read_text()
    for _ in range(20):
        parse_scenario(text, "q.yaml")  # warm caches (pydantic, regexes)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(100):
        parse_scenario(text, "q.yaml")
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 200_000, f"{grown} bytes kept after 100 parses (60 KB each before the fix)"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return  # read_scenario's own check: covered by the reproducers
    with contextlib.suppress(InvalidScenario):
        parse_scenario(text, "fuzz.yaml")


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["5s", "800ms", "50/s", "90%", "n1", "clients->n1", "kill", "room:1"])
)
KEYS = st.sampled_from(
    [
        "name",
        "duration",
        "seed",
        "cluster",
        "clients",
        "workload",
        "faults",
        "checks",
        "app",
        "nodes",
        "count",
        "topics",
        "at",
        "for",
        "kind",
        "node",
        "link",
        "rate",
        "timings",
        "x",
    ]
)
trees = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, trees, max_size=8))
def test_any_yaml_tree(document):
    try:
        text = yaml.safe_dump(document, allow_unicode=True)
    except yaml.YAMLError:
        return
    with contextlib.suppress(InvalidScenario):
        parse_scenario(text, "fuzz.yaml")
