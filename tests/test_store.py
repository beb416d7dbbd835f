"""The SQLite store shared by every node: idempotent publish across processes, durable rows."""

from __future__ import annotations

import sys

import pytest
import trio

from server_under_test._errors import StoreError
from server_under_test._store import Store, path_of

WRITER = """
import sys, trio
from server_under_test._store import Store
async def main():
    store = Store(sys.argv[1])
    for i in range(200):
        await store.append("room:1", f"m{i}", {"id": f"m{i}", "by": sys.argv[2]}, sys.argv[2])
trio.run(main)
"""


async def test_concurrent_writer_processes_store_each_id_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    Store(url).close()  # create the schema once
    procs = [
        await trio.lowlevel.open_process([sys.executable, "-c", WRITER, url, f"n{k}"])
        for k in range(3)
    ]
    with trio.fail_after(60):
        assert [await p.wait() for p in procs] == [0, 0, 0]
    store = Store(url)
    messages = await store.history("room:1")
    assert sorted(m.id for m in messages) == sorted(f"m{i}" for i in range(200))
    assert len({m.seq for m in messages}) == 200
    # three processes racing for positions: every one taken once, no gap
    assert sorted(m.pos for m in messages) == list(range(1, 201))
    assert [m.id for m in await store.after("room:1", 197)] == [m.id for m in messages[-3:]]
    assert await store.last_pos("room:1") == 200


async def test_concurrent_writers_of_different_ids_get_every_position_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    Store(url).close()
    procs = [
        await trio.lowlevel.open_process(
            [sys.executable, "-c", WRITER.replace('f"m{i}"', f'f"n{k}-{{i}}"'), url, f"n{k}"]
        )
        for k in range(3)
    ]
    with trio.fail_after(60):
        assert [await p.wait() for p in procs] == [0, 0, 0]
    messages = await Store(url).history("room:1")
    assert sorted(m.pos for m in messages) == list(range(1, 601))


async def test_append_reports_new_versus_repeated(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert await store.append("room:1", "a", {"id": "a", "body": "x"}, "n1") == 1
    assert await store.append("room:1", "a", {"id": "a", "body": "other"}, "n2") is None
    assert await store.append("room:2", "a", {"id": "a"}, "n1") == 1  # ids and positions per room
    assert await store.append("room:1", "b", {"id": "b"}, "n2") == 2
    assert [m.payload() for m in await store.history("room:1")] == [
        {"id": "a", "body": "x"},
        {"id": "b"},
    ]
    assert [m.id for m in await store.history("room:1", limit=0)] == []
    assert [m.id for m in await store.after("room:1", 0, limit=1, newest=True)] == ["b"]
    assert await store.last_pos("room:3") == 0


@pytest.mark.parametrize(
    "url", ["postgres://x", "sqlite://relative.db", "sqlite:///no/such/dir/x.db"]
)
def test_bad_store_urls_are_refused(url):
    with pytest.raises(StoreError):
        Store(url)


def test_memory_store_url():
    assert path_of("sqlite:///:memory:") == ":memory:"
