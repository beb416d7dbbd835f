"""Foreign data (`harness.foreign`): what the server sends never crashes the harness, never
reaches a sink unescaped, never grows without bound. Unit tests of the rule and of each sink,
and Hypothesis feeding any JSON value, and any bytes, to the decoding layer as server frames
(through a real swarm client's receive path, into a real history file) and as HTTP answers."""

from __future__ import annotations

import contextlib
import json
import tracemalloc
import xml.etree.ElementTree as ET
from functools import partial

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness._clock import RunClock
from harness.foreign import (
    CLIP,
    MAX_DEPTH,
    MAX_ID,
    BadAnswer,
    bounded,
    id_text,
    loads,
    safe,
    safe_lines,
)
from harness.grammar.behaviour import Endpoint
from harness.history import Op
from harness.infra.http import decode_answer
from harness.phoenix import dumps
from harness.run.rundir import HistoryWriter, read_history
from harness.swarm import SwarmClient
from tests.support.plans import swarm_plan

INJECT = "bad\n::error file=x::pwned\x1b]0;title\x07\x1b[2J\r|<b>x</b>\x00\x85\u2028"


def nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "not strict JSON"),  # deeper than orjson reads
        (json.dumps(nested(300)).encode(), f"deeper than {MAX_DEPTH}"),
        (b'{"id": NaN}', "not strict JSON"),
        (b'{"id": 1e400}', "not strict JSON"),
        (b'{"id": "\\ud800"}', "not strict JSON"),
        (b"\xff\xfe", "not strict JSON"),
    ],
)
def test_one_json_rule_refuses_what_the_history_cannot_hold(data, words):
    with pytest.raises(BadAnswer, match=words):
        loads(data)


def test_an_answer_over_its_limit_is_refused_with_its_size():
    with pytest.raises(BadAnswer, match="over the limit of 10"):
        loads(b"[1,2,3,4,5,6,7]", limit=10)


def test_ids_are_canonical_strings_bounded_and_distinct():
    assert id_text("r1-p1-3") == "r1-p1-3"
    assert id_text(None) is None
    assert id_text([1, 2]) == "[1,2]"
    assert id_text({"b": 1, "a": [2]}) == '{"a":[2],"b":1}'
    assert id_text(7) == "7"
    one, two = id_text("A" * 2**20), id_text("A" * (2**20 - 1) + "B")
    assert one is not None
    assert two is not None
    assert len(one) < MAX_ID + 100
    assert one != two
    assert "1,048,576 characters" in one
    deep = id_text(nested(500))
    assert deep is not None
    assert len(deep) <= MAX_ID + 100


def test_bounded_values_can_always_be_written_to_the_history():
    value = {
        "deep": nested(1000),
        "big": "x" * 10**6,
        "many": list(range(10**5)),
        "raw": b"\x00\x01",
        "nan": float("nan"),
    }
    op = Op(1.0, "c1", "info", "channel_error", bounded(value), "n1")
    line = op.to_line()
    assert len(line) < 20_000
    assert b"1,000,000 characters" in line


def test_each_sink_gets_text_it_can_carry():
    terminal = safe(INJECT, "terminal")
    assert "\n" not in terminal
    assert "\x1b" not in terminal
    assert "\r" not in terminal
    assert "\\x1b" in terminal
    assert "\\n::error" in terminal
    assert safe("::error::x", "terminal").startswith(" ::")
    lines = safe_lines(f"ours\n{INJECT}")
    assert all(not line.startswith("::") for line in lines.split("\n"))
    element = ET.Element("failure", {"message": safe(INJECT, "xml")})
    element.text = safe(INJECT, "xml")
    ET.fromstring(ET.tostring(element))  # well-formed: nothing XML 1.0 forbids
    cell = safe(INJECT, "markdown")
    assert "<b>" not in cell
    assert "\\|" in cell
    assert "\r" not in cell
    annotation = safe(INJECT, "annotation")
    assert "\n" not in annotation
    assert "\r" not in annotation
    long = safe("y" * 10_000, "terminal")
    assert len(long) < CLIP + 40
    assert "10,000 characters" in long


# -- Hypothesis: any value as a frame, any bytes as an answer -----------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


def joined_client(tmp_path, writer: HistoryWriter) -> SwarmClient:
    """A swarm client whose model is connected and joined to room:1 (no socket: frames are
    handed to its receive path directly, as its socket hub would)."""
    endpoint = Endpoint("n1", "ws://127.0.0.1:1/socket")
    plan = swarm_plan([endpoint], clients=1, publishers=0, run_id="r1")
    client = SwarmClient(plan.clients[0], plan.behaviours["client"], [endpoint], writer, RunClock())
    client.model.join("room:1", {}, 0.0)
    client.model.connect()
    client.model.opened(0.0)
    join = client.model.take_outgoing()[-1]
    reply = dumps(
        [join.join_ref, join.ref, "room:1", "phx_reply", {"status": "ok", "response": {}}]
    )
    client._on_messages([(True, reply.encode())])
    return client


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    id_value=json_values,
    depth=st.integers(0, 1200),
    raw=st.binary(max_size=300),
    payload=json_values,
)
def test_any_frame_is_recorded_or_a_bad_frame_never_an_exception(
    tmp_path, id_value, depth, raw, payload
):
    writer = HistoryWriter(tmp_path / "h.jsonl")
    client = joined_client(tmp_path, writer)
    frames = [
        dumps([None, None, "room:1", "new_msg", {"id": id_value, "body": payload}]),
        json.dumps([None, None, "room:1", "new_msg", {"id": nested(depth)}]),
        dumps(["1", "1", "room:1", "phx_error", {"reason": payload}]),
        dumps(["1", "9", "room:1", "phx_reply", {"status": payload, "response": payload}]),
    ]
    messages = [(True, f.encode()) for f in frames] + [(True, raw), (False, raw)]
    client._on_messages(messages)
    writer.close()
    ops = read_history(tmp_path / "h.jsonl")  # every line written can be read back
    assert ops
    (tmp_path / "h.jsonl").unlink()


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=2000) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_http_answer_decodes_or_is_a_bad_answer(body):
    with contextlib.suppress(BadAnswer):
        decode_answer(body, "n1:4000/health", 2**20)


async def test_an_answer_that_never_ends_is_refused_at_its_limit(nursery):
    """2 GB of chunked answer: read up to the limit, refused, never buffered."""
    import trio

    from harness.infra.http import get_json

    async def endless(stream: trio.SocketStream) -> None:
        await stream.receive_some(4096)
        head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        chunk = b" " * 65536
        try:
            await stream.send_all(head)
            for _ in range(2 * 2**30 // len(chunk)):
                await stream.send_all(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return

    listeners = await nursery.start(partial(trio.serve_tcp, endless, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    tracemalloc.start()
    try:
        with pytest.raises(BadAnswer, match="over 1 MB"):
            await get_json("127.0.0.1", port, "/api/messages", max_body=2**20, timeout=30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20
