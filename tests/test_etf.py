"""phoenix_pubsub_redis's envelope read from bytes a real BEAM made (Debian's erlang-base:
`term_to_binary` of the adapter's 6-tuple, compressed and not), through the RESP framer as the
broadcast proxy sees a Redis `message` push; and untrusted bytes (cut, corrupted, nested too
deep, claiming sizes they do not have) never raise out of the reader."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.broadcast_proxy._etf import Atom, Envelope, NotETF, decode, envelope
from harness.broadcast_proxy._framing import Broadcast, RespFramer

BROADCAST = (
    "#{'__struct__' => 'Elixir.Phoenix.Socket.Broadcast', topic => <<\"room:1\">>,"
    ' event => <<"new_msg">>, payload => #{<<"id">> => <<"r1-p1-7">>, <<"n">> => 1.5,'
    ' <<"l">> => [1, 300, -5, 99999999999999999999, "str", {a, b}], <<"self">> => self(),'
    ' <<"ref">> => make_ref(), <<"fun">> => fun lists:sum/1}}'
)


def beam(term: str, options: str = "[]") -> bytes:
    """`term_to_binary(Term, Options)` by a real Erlang node."""
    if shutil.which("erl") is None:
        pytest.skip("erl (Debian's erlang-base) is needed")
    expr = (
        f'B = term_to_binary({term}, {options}), io:format("~s", [binary:encode_hex(B)]), halt().'
    )
    done = subprocess.run(
        ["erl", "-noshell", "-eval", expr], capture_output=True, text=True, timeout=60, check=True
    )
    return bytes.fromhex(done.stdout.strip())


@pytest.mark.parametrize("options", ["[]", "[compressed]", "[{compressed, 9}]"])
def test_the_adapters_envelope_gives_origin_topic_and_event(options):
    data = beam(
        f'{{3, except, <<"n1">>, <<"room:1">>, {BROADCAST}, \'Elixir.Phoenix.PubSub\'}}', options
    )
    assert (data[1] == 80) == (options != "[]")
    found = envelope(data)
    assert found is not None
    assert (found.origin, found.topic, found.event, found.mode) == (
        "n1",
        "room:1",
        "new_msg",
        "except",
    )
    term = decode(data)
    payload = term[4][Atom("payload")]
    assert payload[b"id"] == b"r1-p1-7"
    assert payload[b"l"][:4] == [1, 300, -5, 99999999999999999999]


def test_an_atom_node_name_and_a_direct_broadcast():
    data = beam(
        f"{{3, only, 'app@10.0.0.2', <<\"room:1\">>, {BROADCAST}, 'Elixir.Phoenix.PubSub'}}"
    )
    found = envelope(data)
    assert found is not None
    assert (found.origin, found.mode) == ("app@10.0.0.2", "only")
    # through the RESP framer, as a `message` push from Redis: a direct broadcast names its
    # target, so its origin is not known
    push = b"*3\r\n$7\r\nmessage\r\n$7\r\nphx:Pub\r\n$%d\r\n%s\r\n" % (len(data), data)
    (frame,) = RespFramer().feed(push)
    assert frame.raw == push
    assert frame.broadcast == Broadcast(None, "room:1", "new_msg")


def test_a_message_that_is_not_a_broadcast_has_no_event():
    data = beam('{3, except, <<"n2">>, <<"room:1">>, {custom, 1}, \'Elixir.Phoenix.PubSub\'}')
    found = envelope(data)
    assert found is not None
    assert (found.origin, found.topic, found.event) == ("n2", "room:1", None)


def test_bytes_that_lie_are_refused_not_followed():
    assert envelope(b"") is None
    assert envelope(b"\x83") is None
    assert envelope(b"\x83l\xff\xff\xff\xffj") is None  # four billion elements claimed
    assert envelope(b"\x83m\xff\xff\xff\xff") is None  # a 4 GB binary claimed
    bomb = b"\x83P" + (100_000_000).to_bytes(4, "big") + zlib.compress(b"\x00" * 1000)
    assert envelope(bomb) is None  # says 100 MB: not inflated
    deep = b"\x83" + b"h\x01" * 10_000 + b"j"
    with pytest.raises(NotETF, match="deep"):
        decode(deep)
    assert envelope(deep) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_are_a_broadcast_or_none(data):
    """Whatever the bytes, the reader answers or refuses with NotETF: no other exception."""
    found = envelope(b"\x83" + data)
    assert found is None or isinstance(found, Envelope)
    with contextlib.suppress(NotETF):
        decode(b"\x83" + data)
