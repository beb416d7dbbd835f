"""The history on disk: compact delivery rows, one copy per run, readable with ordinary tools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import HistoryError
from harness.history import Op, parse_lines, workload_clock
from harness.run.rundir import HistoryWriter, merge_parts, read_history, write_history

RECV = {
    "topic": "room:1",
    "event": "new_msg",
    "id": "h1764590000000ab12-p1-12345",
    "join_ref": "3",
    "frame_join_ref": None,
    "state": "joined",
}

OPS = [
    Op(0.5, "runner", "info", "phase", {"phase": "workload"}),
    Op(1.25, "c1", "invoke", "connect", {"url": "ws://127.0.0.1:1/socket"}, "n1"),
    Op(2.123456, "c123", "ok", "recv", RECV, "n1"),
    Op(2.5, "c2", "ok", "recv", {**RECV, "frame_join_ref": "3", "state": "joining"}, "n2"),
    Op(3.0, "c2", "ok", "recv", {**RECV, "event": "welcome", "id": None, "seq": 7}, "n2"),
    Op(3.5, "p1", "ok", "publish", {"topic": "room:1", "id": "x", "seq": 1}, "n1"),
    Op(4.0, "c3", "ok", "recv", {**RECV, "topic": "room:ü", "id": 17}, None),
]


def test_every_op_comes_back_as_written_with_its_position_as_index(tmp_path):
    writer = HistoryWriter(tmp_path / "h.jsonl")
    for op in OPS:
        writer.record(op)
    writer.close()
    back = read_history(tmp_path / "h.jsonl")
    assert [(o.time, o.process, o.type, o.f, dict(o.value), o.node) for o in back] == [
        (o.time, o.process, o.type, o.f, dict(o.value), o.node) for o in OPS
    ]
    assert [o.index for o in back] == list(range(len(OPS)))


def test_reading_on_the_workload_clock_equals_shifting_after_reading(tmp_path):
    """`read_history(on_workload_clock=True)` shifts as it parses (no second copy of a million
    ops); it must give exactly what `workload_clock` gives over the ops read as written."""
    ops = [
        Op(0.2, "runner", "info", "phase", {"phase": "setup"}),
        Op(0.3, "nemesis", "info", "fault", {"id": "f0", "phase": "start", "scheduled": 9.25}),
        Op(0.4, "c9", "ok", "recv", {**RECV, "id": 'a"phase":"workload"'}, "n1"),  # escaped
        Op(1.5, "runner", "info", "interrupted", {"phase": "workload"}),  # not the phase op
        *[Op(op.time + 1.5, op.process, op.type, op.f, op.value, op.node) for op in OPS],
    ]
    path = tmp_path / "h.jsonl"
    write_history(path, ops)
    shifted = read_history(path, on_workload_clock=True)
    assert shifted == workload_clock(read_history(path))
    assert shifted[4].f == "phase"
    assert shifted[4].time == 0.0
    assert shifted[1].value["scheduled"] == 7.25
    assert workload_clock(shifted) == shifted  # already on the clock: left as it is
    write_history(path, ops[:3])  # no workload phase: nothing moves
    assert read_history(path, on_workload_clock=True) == read_history(path)


def test_a_delivery_is_a_short_row_and_other_ops_are_objects():
    line = OPS[2].to_line()
    assert json.loads(line) == [2.123456, "c123", "n1", "room:1", "new_msg", RECV["id"], "3"]
    assert len(line) + 1 <= 80  # the budget for a delivery with a run-prefixed id
    assert json.loads(OPS[3].to_line())[7] == {"frame_join_ref": "3", "state": "joining"}
    assert json.loads(OPS[1].to_line())["f"] == "connect"


def test_a_torn_last_line_is_skipped_and_a_broken_middle_line_is_an_error(tmp_path):
    good = b"".join(op.to_line() + b"\n" for op in OPS[:3])
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(good + b'[2.5,"c9","n1","ro')
    assert len(read_history(torn)) == 3
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(good + b"[1, 2]\n" + good)
    with pytest.raises(HistoryError, match=r"broken.jsonl:4: not a history op"):
        read_history(broken)
    with pytest.raises(HistoryError, match="not a history op"):
        list(parse_lines([b'{"time": NaN}\n', b"\n"]))


def test_parts_merge_by_time_into_one_file_and_are_removed(tmp_path):
    parts = []
    for k, ops in enumerate([OPS[0::2], OPS[1::2]]):
        writer = HistoryWriter(tmp_path / f"history.{k}.jsonl")
        for op in ops:
            writer.record(op)
        writer.close()
        parts.append(writer.path)
    with parts[1].open("ab") as f:  # a worker killed mid-write
        f.write(b'{"time": 9.0, "proc')
    merge_parts(parts, tmp_path / "history.jsonl")
    merged = read_history(tmp_path / "history.jsonl")
    assert [o.time for o in merged] == sorted(o.time for o in OPS)
    assert not any(p.exists() for p in parts)


def test_harness_history_prints_every_op_as_a_full_object(tmp_path):
    writer = HistoryWriter(tmp_path / "history.jsonl")
    for op in OPS:
        writer.record(op)
    writer.close()
    out = subprocess.run(
        [sys.executable, "-m", "harness", "history", str(tmp_path), "--f", "recv"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    rows = [json.loads(line) for line in out]
    assert [r["index"] for r in rows] == [2, 3, 4, 6]
    assert rows[0]["value"] == RECV
    assert rows[0]["node"] == "n1"
    missing = subprocess.run(
        [sys.executable, "-m", "harness", "history", str(Path(tmp_path) / "nope")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert "no history here" in missing.stderr


@pytest.mark.parametrize(
    ("tail", "whole"),
    [
        (b"", True),  # a clean file: parsed whole
        (b'{"time":5,"process":"p","type":"ok","f":"phase","value":{}}\n', True),
        (b"\n", False),  # a blank line
        (b'[2.5,"c9","n1","ro', False),  # a torn last line
    ],
)
def test_the_whole_file_parse_reads_as_the_line_parser_does(tmp_path, tail, whole):
    """`read_lean` parses a clean file with one orjson call (`rundir._parse_whole`) and falls back
    to the line parser for anything unusual: either way, the same items."""
    from harness.history import parse_lean, workload_start
    from harness.run.rundir import read_lean

    path = tmp_path / "h.jsonl"
    data = b"".join(op.to_line() + b"\n" for op in OPS) + tail
    path.write_bytes(data)
    lean = read_lean(path)
    expected = list(parse_lean(data.splitlines(keepends=True), shift=workload_start(data)))
    assert list(lean) == expected
    assert (lean.rows is not None) == whole


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        (b"[1, 2]\n", 4),  # a row too short
        (b'[2.5,"c9","n1","room:1","new_msg","x","1"], [1]\n', 4),  # two values on a line
        (b'[true,"c9","n1","room:1","new_msg","x","1"]\n' + b"5\n", 5),  # not an op at all
        (b'[2.5, 7, "n1","room:1","new_msg","x","1"]\n', 4),  # a process that is not a name
        (b'{"time":1,"process":"p","type":"done","f":"phase","value":{}}\n', 4),
    ],
)
def test_a_bad_line_is_located_though_the_file_is_first_parsed_whole(tmp_path, bad, where):
    from harness.run.rundir import read_lean

    good = b"".join(op.to_line() + b"\n" for op in OPS[:3])
    path = tmp_path / "bad.jsonl"
    path.write_bytes(good + bad + good)
    with pytest.raises(HistoryError, match=rf"bad.jsonl:{where}: not a history op"):
        read_lean(path)


def test_fault_ops_of_older_histories_still_open_and_close_windows():
    """The fault op was `info` with a `phase` key; it is now invoke (start), ok (stop), fail."""
    from harness.checkers import facts_of
    from harness.history import fault_edge

    older = [
        Op(0.0, "runner", "info", "phase", {"phase": "workload"}),
        Op(1.0, "nemesis", "info", "fault", {"id": "f1", "phase": "start", "kind": "kill"}),
        Op(2.0, "nemesis", "info", "fault", {"id": "f1", "phase": "stop", "kind": "kill"}),
    ]
    newer = [
        Op(0.0, "runner", "info", "phase", {"phase": "workload"}),
        Op(1.0, "nemesis", "invoke", "fault", {"id": "f1", "kind": "kill"}),
        Op(2.0, "nemesis", "ok", "fault", {"id": "f1", "kind": "kill"}),
    ]
    assert [fault_edge(op) for op in older[1:]] == [fault_edge(op) for op in newer[1:]]
    assert facts_of(older).windows == facts_of(newer).windows
    assert len(facts_of(newer).windows) == 1


def _recv(time: float, client: str, message_id: object, **value: object) -> Op:
    return Op(time, client, "ok", "recv", {**RECV, "id": message_id, **value}, "n2")


def _same(ops: list[Op]) -> list[tuple[object, ...]]:
    return [(o.time, o.process, o.type, o.f, dict(o.value), o.node) for o in ops]


def test_a_delivery_of_the_harnesss_own_ids_costs_at_most_40_bytes(tmp_path):
    """The issue's budget: a delivery of a run-prefixed id among 20,000 clients in <= 40 bytes
    (its names coded once in the file's table, whose lines are not ops); read back as written,
    the indices the ops' positions."""
    path = tmp_path / "h.jsonl"
    writer = HistoryWriter(path)
    ops = [
        _recv(round(1_000 + k / 7, 6), f"c{k}", f"rb08508-p{k % 3}-{k}", topic=f"room:{k % 10}")
        for k in range(20_000)
    ]
    for op in ops:
        writer.record(op)
    writer.close()
    lines = path.read_bytes().splitlines()
    rows = [line for line in lines if line.startswith(b"[")]
    assert len(rows) == 20_000
    assert max(len(line) + 1 for line in rows) <= 40
    assert json.loads(lines[0]) == {
        "names": {"0": "rb08508-p0-", "1": "c0", "2": "n2", "3": "room:0", "4": "new_msg"}
    }
    back = read_history(path)
    assert _same(back) == _same(ops)
    assert [o.index for o in back] == list(range(20_000))


def test_what_does_not_fit_the_table_is_written_with_its_strings(tmp_path, monkeypatch):
    """Foreign ids, non-string topics, and names past the table's limit (a server sending a flood
    of distinct topics) are rows of strings; every op reads back as it was."""
    import harness.rows

    monkeypatch.setattr(harness.rows, "LIMIT", 8)
    ops = [
        _recv(1.0, "c1", "r1-p1-1"),
        _recv(1.1, "c1", "not ours"),
        _recv(1.2, "c1", 17),
        _recv(1.3, "c1", "r1-p1-007"),  # a sequence with a leading zero is no counter
        _recv(1.35, "c1", "r1-p1-123456789012345"),  # 15 digits: past what a key holds
        _recv(1.4, "c1", "r1-p1-2", join_ref="x7", frame_join_ref="x7", state="joining"),
        *[_recv(2.0 + k, "c1", f"r1-p1-{k}", topic=f"flood:{k}") for k in range(10)],
        _recv(3.0, "c1", None, event="welcome"),
    ]
    path = tmp_path / "h.jsonl"
    write_history(path, ops)
    rows = [json.loads(x) for x in path.read_bytes().splitlines() if x.startswith(b"[")]
    kinds = ["compact" if type(row[1]) is int else "strings" for row in rows]
    assert kinds[:6] == ["compact", "strings", "strings", "strings", "strings", "compact"]
    assert kinds[6:9] == ["compact"] * 3
    assert kinds[9:] == ["strings"] * 8  # the flood past the table's limit, a new event
    assert rows[5][7:] == ["x7", {"frame_join_ref": "x7", "state": "joining"}]
    assert _same(read_history(path)) == _same(ops)


def test_parts_with_their_own_tables_merge_into_one_table(tmp_path):
    """Each worker's part codes its own names; the merged file has one table on its first line,
    and the same ops, whichever reader (the line parser, the whole-file parse)."""
    from harness.history import parse_lean
    from harness.rows import expand
    from harness.run.rundir import read_lean

    ops = [_recv(k / 10, f"c{k % 4}", f"r1-p{k % 2}-{k}", topic=f"room:{k % 3}") for k in range(40)]
    parts = []
    for k in range(2):
        writer = HistoryWriter(tmp_path / f"history.{k}.jsonl")
        for op in [OPS[1], *ops[k::2]]:
            writer.record(op)
        writer.close()
        parts.append(writer.path)
    merged = tmp_path / "history.jsonl"
    merge_parts(parts, merged)
    lines = merged.read_bytes().splitlines()
    assert sum(line.startswith(b'{"names"') for line in lines) == 1
    assert lines[0].startswith(b'{"names"')
    back = read_history(merged)
    assert _same(back) == _same(sorted([OPS[1], OPS[1], *ops], key=lambda o: o.time))
    lean = read_lean(merged)
    assert lean.names is not None
    whole = [expand(i, lean.names) if isinstance(i, list) else i for i in lean]
    assert whole == list(parse_lean(merged.read_bytes().splitlines(keepends=True)))


def test_a_file_appended_by_a_second_writer_reads_in_order(tmp_path):
    """A code given again (a second writer appending with a table of its own) means its new name
    from there on: the whole-file parse leaves such a file to the line parser."""
    from harness.checkers import facts_of
    from harness.run.rundir import read_lean

    path = tmp_path / "h.jsonl"
    first = [_recv(1.0, "c1", "r1-p1-1"), _recv(1.5, "c1", "r1-p1-2")]
    second = [_recv(2.0, "c2", "r1-p2-1", topic="room:9")]
    for ops in (first, second):
        writer = HistoryWriter(path)
        for op in ops:
            writer.record(op)
        writer.close()
    assert _same(read_history(path)) == _same(first + second)
    lean = read_lean(path)
    assert lean.rows is None  # read line by line
    facts = facts_of(lean)
    assert list(facts.deliveries.clients) == ["c1", "c1", "c2"]
    assert list(facts.deliveries.topics) == ["room:1", "room:1", "room:9"]


@pytest.mark.parametrize(
    "bad",
    [
        b"[2.5, 0, 1, 7, 3, 0, 1, 1]\n",  # a code no names line gave
        b"[2.5, 0, 9, 2, 3, 0, 1, 1]\n",
        b'[2.5, 0, 1, 2, 3, 0, "1", 1]\n',  # a sequence that is no integer
        b"[2.5, 0, 1, 2, 3, 0, 100000000000000, 1]\n",  # a sequence past 14 digits
        b"[2.5, 0, 1, 2, 3, null, 1, 1]\n",  # a sequence without its publisher
        b"[2.5, 0, 1, 2, 3, 0, 1, 1, 5]\n",  # a 9th element that is no object
        b'{"names": {"x": "c1"}}\n',
    ],
)
def test_a_bad_compact_row_or_names_line_is_located(tmp_path, bad):
    """Each bad line beside good compact rows (so it is the bad line that is refused)."""
    from harness.run.rundir import read_lean

    path = tmp_path / "bad.jsonl"
    good = b'{"names": {"0": "c1", "1": "n1", "2": "room:1", "3": "new_msg", "4": "r1-p1-"}}\n'
    good += b"".join(op.to_line() + b"\n" for op in OPS[:2])
    good += b"[2.5, 0, 1, 2, 3, 4, 1, 1]\n"
    assert len(read_lean_ok(tmp_path, good)) == 3
    path.write_bytes(good + bad + good)
    with pytest.raises(HistoryError, match=r"bad.jsonl:5: not a history op"):
        read_lean(path)
    with pytest.raises(HistoryError, match=r"bad.jsonl:5: not a history op"):
        read_history(path)


def read_lean_ok(tmp_path: Path, data: bytes) -> list[object]:
    from harness.run.rundir import read_lean

    path = tmp_path / "good.jsonl"
    path.write_bytes(data)
    return list(read_lean(path))


def test_compact_rows_are_read_as_columns_and_a_file_that_mixes_in_rows_of_strings_as_lists(
    tmp_path,
):
    """A file of compact rows is read as columns (`harness.columns`); one where a foreign id
    made some rows of strings is read with every row a list. Either way the same ops as the
    line parser, and the same facts as the ops give."""
    from harness.checkers import facts_of
    from harness.columns import Columns
    from harness.history import parse_lean
    from harness.rows import expand
    from harness.run.rundir import read_lean

    ours = [_recv(k / 10, f"c{k % 3}", f"r1-p1-{k}") for k in range(1, 30)]
    for mixed in (False, True):
        ops = [OPS[1], *ours, *([_recv(3.5, "c1", "their-id")] if mixed else [])]
        path = tmp_path / f"h{mixed}.jsonl"
        write_history(path, ops)
        lean = read_lean(path)
        assert isinstance(lean.rows, Columns) is not mixed
        names = lean.names or ()
        whole = [
            expand(i, names) if isinstance(i, list) and isinstance(i[1], int) else i for i in lean
        ]
        assert whole == list(parse_lean(path.read_bytes().splitlines(keepends=True)))
        assert list(facts_of(lean).deliveries) == list(facts_of(read_history(path)).deliveries)
