"""The final read and what durability concludes from it: a large room reads back whole, and a
room that cannot be read is `unknown` for that room, never a pile of "lost writes"."""

from __future__ import annotations

import json
import sqlite3

from harness._clock import RunClock
from harness.checkers import CHECKERS, facts_of
from harness.grammar.behaviour import Endpoint
from harness.swarm import read_rooms
from tests.support.builder import HistoryBuilder


class Ops:
    def __init__(self) -> None:
        self.ops = []

    def record(self, op) -> None:
        self.ops.append(op)


async def test_a_room_of_fifty_thousand_messages_reads_back_whole(start_node, tmp_path):
    db = tmp_path / "store.sqlite"
    node = await start_node(store=f"sqlite:///{db}")
    rows = [
        ("room:1", f"m{i}", json.dumps({"id": f"m{i}", "body": "x" * 16}), "n1", 0.0)
        for i in range(50_000)
    ]
    with sqlite3.connect(db) as conn:  # 50,000 messages: ~2.6 MB of history, over 1 MiB
        conn.executemany(
            "INSERT INTO messages (topic, id, payload, node, stored_at) VALUES (?, ?, ?, ?, ?)",
            rows,
        )
    recorder = Ops()
    endpoint = Endpoint("n1", f"ws://127.0.0.1:{node.port}")
    await read_rooms([endpoint], ["room:1"], recorder, RunClock())
    (_, done) = recorder.ops
    assert done.type == "ok", done.value
    assert len(done.value["ids"]) == 50_000


def durability(h: HistoryBuilder):
    return CHECKERS["durability"](facts_of(h.history()), {})


def two_rooms() -> HistoryBuilder:
    h = HistoryBuilder()
    h.at(0.0).join("p1", "room:1").join("p1", "room:2")
    h.at(1.0).publish("p1", "room:1", "a").publish("p1", "room:2", "b")
    return h


def test_an_unreadable_room_is_unknown_not_lost():
    h = two_rooms()
    h.at(2.0).read("room:1", ["a"])
    h.op("reader", "invoke", "read", topic="room:2")
    h.op("reader", "fail", "read", topic="room:2", error="n1: ConnectionClosed: 1009")
    result = durability(h)
    assert result.validity == "unknown"
    assert "room:2: n1: ConnectionClosed: 1009" in (result.error or "")
    assert result.summary["acknowledged_unjudged"] == 1


def test_a_lost_write_in_a_readable_room_is_still_invalid():
    h = two_rooms()
    h.at(2.0).read("room:1", [])  # "a" was acknowledged and is not there
    h.op("reader", "invoke", "read", topic="room:2")  # never answered
    result = durability(h)
    assert result.validity == "invalid"
    assert [w.evidence["id"] for w in result.witnesses] == ["a"]


def test_every_read_failed_is_unknown():
    h = two_rooms()
    for topic in ("room:1", "room:2"):
        h.op("reader", "fail", "read", topic=topic, error="no node answered")
    result = durability(h)
    assert result.validity == "unknown"
    assert "2 room(s)" in (result.error or "")
