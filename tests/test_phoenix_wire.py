"""Property tests of the sans-io codecs: round-trips, and every malformed input raises
RemoteProtocolError and nothing else."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.phoenix import (
    Broadcast,
    ChannelClose,
    ChannelError,
    Heartbeat,
    Join,
    Leave,
    LocalProtocolError,
    Message,
    Push,
    RemoteProtocolError,
    Reply,
    Role,
    V1JSONCodec,
    V2JSONCodec,
    codec_for_vsn,
)

names = st.text(min_size=1, max_size=40).filter(
    lambda s: not s.startswith("phx_") and s != "heartbeat"
)
refs = st.text(min_size=1, max_size=12)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
topics = names.filter(lambda t: t != "phoenix")

client_events = st.one_of(
    st.builds(Join, topics, objects, refs, refs),
    st.builds(Leave, topics, refs, refs),
    st.builds(Heartbeat, refs),
    st.builds(Push, topics, names, json_values, refs, st.none() | refs),
)
server_events = st.one_of(
    st.builds(
        Reply,
        topics,
        st.sampled_from(["ok", "error", "x"]),
        objects,
        st.none() | refs,
        st.none() | refs,
    ),
    st.builds(Message, topics, names, objects, refs),
    st.builds(Broadcast, topics, names, objects),
    st.builds(ChannelError, topics, refs, objects),
    st.builds(ChannelClose, topics, refs, objects),
)


@given(client_events)
def test_v2_client_frames_round_trip(event):
    codec = V2JSONCodec()
    assert codec.decode(codec.encode(event), sender=Role.CLIENT) == event


@given(server_events)
def test_v2_server_frames_round_trip(event):
    codec = V2JSONCodec()
    assert codec.decode(codec.encode(event), sender=Role.SERVER) == event


@given(client_events)
def test_v1_client_frames_round_trip(event):
    codec = V1JSONCodec()
    assert codec.decode(codec.encode(event), sender=Role.CLIENT) == event


binary_client = st.builds(
    Push,
    topics.filter(lambda t: len(t.encode()) <= 255),
    names.filter(lambda n: len(n.encode()) <= 255),
    st.binary(max_size=64),
    refs,
    refs,
)
binary_server = st.one_of(
    st.builds(
        Reply,
        topics.filter(lambda t: len(t.encode()) <= 255),
        st.sampled_from(["ok", "error"]),
        st.binary(max_size=64),
        refs,
        refs,
    ),
    st.builds(
        Message,
        topics.filter(lambda t: len(t.encode()) <= 255),
        names.filter(lambda n: len(n.encode()) <= 255),
        st.binary(max_size=64),
        refs,
    ),
    st.builds(
        Broadcast,
        topics.filter(lambda t: len(t.encode()) <= 255),
        names.filter(lambda n: len(n.encode()) <= 255),
        st.binary(max_size=64),
    ),
)


@given(binary_client)
def test_v2_binary_client_push_round_trips(event):
    codec = V2JSONCodec()
    wire = codec.encode(event)
    assert isinstance(wire, bytes)
    assert wire[0] == 0
    assert codec.decode(wire, sender=Role.CLIENT) == event


@given(binary_server)
def test_v2_binary_server_frames_round_trip(event):
    codec = V2JSONCodec()
    assert codec.decode(codec.encode(event), sender=Role.SERVER) == event


def test_binary_header_over_255_bytes_is_a_local_error():
    with pytest.raises(LocalProtocolError):
        V2JSONCodec().encode(Broadcast("t" * 256, "e", b"x"))


def test_server_payload_must_be_an_object():
    with pytest.raises(LocalProtocolError):
        V2JSONCodec().encode(Broadcast("room:1", "e", [1, 2]))


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
@settings(max_examples=500)
def test_arbitrary_input_decodes_or_raises_remote_error(data):
    for codec in (V2JSONCodec(), V1JSONCodec()):
        for sender in Role:
            with contextlib.suppress(RemoteProtocolError):
                codec.decode(data, sender=sender)


wrong_shapes = st.one_of(
    json_values.filter(lambda v: not isinstance(v, list)),
    st.lists(json_values, max_size=4),
    st.tuples(json_values, json_values, json_values, json_values, json_values).map(list),
)


@given(wrong_shapes)
@settings(max_examples=300)
def test_wrong_arity_and_types_raise_remote_error(value):
    text = json.dumps(value)
    try:
        V2JSONCodec().decode(text, sender=Role.CLIENT)
    except RemoteProtocolError:
        return
    # It decoded: then it really had the shape of a frame.
    assert isinstance(value, list)
    assert len(value) >= 5
    assert isinstance(value[2], str)
    assert value[2]
    assert isinstance(value[3], str)
    assert value[3]


@pytest.mark.parametrize(
    ("text", "sender"),
    [
        ("[" * 100_000 + "]" * 100_000, Role.CLIENT),  # too deep for the JSON parser
        ('[null, "1", "room:1", "x", NaN]', Role.CLIENT),  # not JSON
        ('[null, 1, "room:1", "x", {}]', Role.CLIENT),  # ref is not a string
        ('[null, "1", "", "x", {}]', Role.CLIENT),  # empty topic
        ('[null, "1", "room:1", "phx_join", {}, 1]', None),  # extra elements are fine...
        ('[null, null, "room:1", "phx_join", {}]', Role.CLIENT),  # ...a join without a ref is not
        ('[null, "1", "room:1", "phx_reply", []]', Role.SERVER),  # reply without a status
        ('[null, "1", "room:1", "phx_reply", {"status": 1}]', Role.SERVER),
    ],
)
def test_specific_malformed_frames(text, sender):
    codec = V2JSONCodec()
    if sender is None:
        codec.decode(text, sender=Role.CLIENT)
        return
    with pytest.raises(RemoteProtocolError):
        codec.decode(text, sender=sender)


def test_huge_frame_is_refused_before_parsing():
    codec = V2JSONCodec(max_size=1000)
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        codec.decode(
            json.dumps([None, "1", "room:1", "x", {"pad": "x" * 2000}]), sender=Role.CLIENT
        )


@pytest.mark.parametrize(
    ("vsn", "expected"),
    [(None, "1.0.0"), ("1.0.0", "1.0.0"), ("2.0.0", "2.0.0"), ("2.0.7", "2.0.0")],
)
def test_codec_for_vsn(vsn, expected):
    assert codec_for_vsn(vsn).vsn == expected


@pytest.mark.parametrize("vsn", ["2.1.0", "3.0.0", "", "2.0", "x.y.z"])
def test_codec_for_unsupported_vsn(vsn):
    with pytest.raises(RemoteProtocolError):
        codec_for_vsn(vsn)
