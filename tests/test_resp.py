"""RESP2 without I/O: values read the same however TCP cuts them; bad input is one error."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server_under_test._resp import RespError, RespProtocolError, RespReader, command


def encode(value: Any) -> bytes:
    """What a Redis server would send for `value` (the test's own encoder)."""
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, RespError):
        return b"-" + value.message.encode() + b"\r\n"
    if isinstance(value, str):
        return b"+" + value.encode() + b"\r\n"
    if isinstance(value, int):
        return b":" + str(value).encode() + b"\r\n"
    if isinstance(value, bytes):
        return b"$" + str(len(value)).encode() + b"\r\n" + value + b"\r\n"
    return b"*" + str(len(value)).encode() + b"\r\n" + b"".join(encode(v) for v in value)


line_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=20
)
values = st.recursive(
    st.none()
    | st.binary(max_size=64)
    | st.integers(-(2**63), 2**63 - 1)
    | line_text
    | line_text.map(RespError),
    lambda inner: st.lists(inner, max_size=5),
    max_leaves=20,
)


@given(st.lists(values, max_size=6), st.data())
def test_values_survive_any_split(sent, data):
    wire = b"".join(encode(v) for v in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    reader = RespReader()
    got = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        reader.feed(wire[start:end])
        got += reader.values()
    assert got == sent


def test_a_command_is_an_array_of_bulk_strings():
    wire = command("PUBLISH", "phx:reference", b'{"x":"\r\n"}')
    reader = RespReader()
    reader.feed(wire)
    assert reader.values() == [[b"PUBLISH", b"phx:reference", b'{"x":"\r\n"}']]


@pytest.mark.parametrize(
    "wire",
    [
        b"?what\r\n",
        b"$abc\r\n",
        b"*-5\r\n",
        b"$3\r\nabcXY",
        b"\r\n",
        b":12x\r\n",
        b"$999999999999\r\n",
        b"+" + b"x" * 70_000,
        b"*1\r\n" * 5_000,
    ],
)
def test_malformed_input_is_a_protocol_error(wire):
    reader = RespReader()
    reader.feed(wire)
    with pytest.raises(RespProtocolError):
        reader.values()


@given(st.binary(max_size=200))
def test_garbage_raises_only_the_protocol_error(wire):
    reader = RespReader()
    reader.feed(wire)
    with contextlib.suppress(RespProtocolError):
        reader.values()
