"""The sans-io client model against phoenix.js's documented behaviour, on a fake clock."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.phoenix import (
    TRANSITIONS,
    Broadcast,
    ChannelClose,
    ChannelError,
    ChannelErrored,
    ChannelState,
    ClientSocket,
    Heartbeat,
    HeartbeatTimedOut,
    Join,
    JoinTimedOut,
    Leave,
    Message,
    Push,
    PushReplied,
    PushTimedOut,
    Received,
    Reply,
    SocketClosed,
    StaleDropped,
    Timings,
)

S = ChannelState


def run_until(client: ClientSocket, now: float, until: float) -> float:
    """Advance timer by timer up to `until`; return the time reached."""
    while (deadline := client.next_deadline()) is not None and deadline <= until:
        now = max(now, deadline)
        client.advance(now)
    return until


def joined_client(topic="room:1") -> tuple[ClientSocket, str]:
    c = ClientSocket()
    c.connect()
    c.opened(0.0)
    c.join(topic, {}, 0.0)
    join = c.take_outgoing()[-1]
    c.receive(Reply(topic, "ok", {}, join.ref, join.join_ref), 0.0)
    return c, join.join_ref


def test_reconnect_backoff_follows_the_js_schedule_and_resets_on_open():
    c = ClientSocket()
    c.connect()
    assert c.want_connect
    now, delays = 0.0, []
    for _ in range(12):
        c.closed(now, None)  # a refused connection attempt
        assert not c.want_connect  # not before the backoff delay
        delays.append(round(c.next_deadline() - now, 3))
        now = c.next_deadline()
        c.advance(now)
        assert c.want_connect
    assert delays == [0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 5.0, 5.0]
    c.opened(now)
    c.closed(now, 1006)
    assert round(c.next_deadline() - now, 3) == 0.01


def test_join_before_connect_is_flushed_on_open():
    c = ClientSocket()
    c.join("room:1", {"a": 1}, 0.0)
    assert c.take_outgoing() == []
    c.connect()
    c.opened(0.1)
    assert c.take_outgoing() == [Join("room:1", {"a": 1}, "1", "1")]
    assert c.state("room:1") is S.JOINING


def test_push_while_joined_is_sent_and_replied():
    c, jr = joined_client()
    c.take_notices()
    c.push("room:1", "new_msg", {"id": "m1"}, 1.0, push_id="p1")
    (frame,) = c.take_outgoing()
    assert frame == Push("room:1", "new_msg", {"id": "m1"}, frame.ref, jr)
    c.receive(Reply("room:1", "ok", {"id": "m1"}, frame.ref, jr), 1.1)
    assert PushReplied("p1", "room:1", "new_msg", "ok", {"id": "m1"}) in c.take_notices()


def test_pushes_buffer_until_join_ok_and_expire_from_when_they_were_pushed():
    c = ClientSocket(Timings(timeout_ms=1000))
    c.connect()
    c.opened(0.0)
    c.join("room:1", {}, 0.0)
    join = c.take_outgoing()[0]
    c.push("room:1", "a", {}, 0.0, push_id="early")
    c.push("room:1", "b", {}, 0.6, push_id="late", timeout=5.0)
    c.advance(1.0)  # "early" times out while buffered; the join times out too
    notices = c.take_notices()
    assert PushTimedOut("early", "room:1", "a", False) in notices
    assert JoinTimedOut("room:1", join.ref) in notices
    c.take_outgoing()
    c.advance(2.0)  # rejoin after 1 s
    rejoin = c.take_outgoing()[0]
    assert isinstance(rejoin, Join)
    assert rejoin.join_ref != join.join_ref
    c.receive(Reply("room:1", "ok", {}, rejoin.ref, rejoin.join_ref), 2.0)
    sent = c.take_outgoing()
    assert [f.event for f in sent] == ["b"]  # only the push that had not expired


def test_refused_join_is_retried_forever_on_the_rejoin_schedule():
    c = ClientSocket()
    c.connect()
    c.opened(0.0)
    c.join("room:1", {}, 0.0)
    now, times, refs = 0.0, [], []
    for _ in range(6):
        join = [f for f in c.take_outgoing() if isinstance(f, Join)][-1]
        times.append(now)
        refs.append(join.join_ref)
        c.receive(Reply("room:1", "error", {"reason": "no"}, join.ref, join.join_ref), now)
        assert c.state("room:1") is S.ERRORED
        now = c.next_deadline()
        c.advance(now)
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert gaps == [1.0, 2.0, 5.0, 10.0, 10.0]
    assert len(set(refs)) == 6


def test_join_timeout_sends_a_leave_with_the_old_join_ref_then_rejoins():
    c = ClientSocket()
    c.connect()
    c.opened(0.0)
    c.join("room:1", {}, 0.0)
    join = c.take_outgoing()[0]
    c.advance(10.0)
    (leave,) = c.take_outgoing()
    assert isinstance(leave, Leave)
    assert leave.join_ref == join.join_ref
    assert c.state("room:1") is S.ERRORED
    c.advance(11.0)  # rejoin_after(1) = 1 s
    (rejoin,) = c.take_outgoing()
    assert isinstance(rejoin, Join)
    assert rejoin.join_ref not in (join.join_ref, leave.ref)


def test_the_servers_answer_to_a_timed_out_joins_leave_is_stale_and_the_channel_rejoins():
    """phoenix.js resets its join push on a timeout: the reply to the leave and the phx_close
    that follows carry the old join_ref and are dropped (the model once closed the channel for
    good here, so under load a slow join left a client deaf for the rest of the run)."""
    c = ClientSocket()
    c.connect()
    c.opened(0.0)
    c.join("room:1", {}, 0.0)
    join = c.take_outgoing()[0]
    c.advance(10.0)
    (leave,) = c.take_outgoing()
    c.receive(Reply("room:1", "ok", {}, join.ref, join.join_ref), 10.01)  # the join, late
    c.receive(Reply("room:1", "ok", {}, leave.ref, leave.join_ref), 10.02)
    c.receive(ChannelClose("room:1", leave.join_ref, {}), 10.02)
    assert c.state("room:1") is S.ERRORED
    assert [type(n) for n in c.take_notices() if isinstance(n, StaleDropped)] == []
    c.advance(11.0)
    (rejoin,) = c.take_outgoing()
    assert isinstance(rejoin, Join)
    c.receive(Reply("room:1", "ok", {}, rejoin.ref, rejoin.join_ref), 11.01)
    assert c.state("room:1") is S.JOINED


def test_a_leave_queued_for_a_join_that_timed_out_offline_is_not_flushed():
    c = ClientSocket()
    c.join("room:1", {}, 0.0)
    c.connect()
    c.advance(10.0)  # the join timed out before the socket ever opened
    c.opened(12.0)
    assert not any(isinstance(f, Leave) for f in c.take_outgoing())


def test_transport_loss_errors_channels_and_open_rejoins_at_once_with_a_new_join_ref():
    c, jr = joined_client()
    c.closed(5.0, 1006)
    assert c.state("room:1") is S.ERRORED
    run_until(c, 5.0, 5.005)
    assert c.take_outgoing() == []  # no rejoin while the socket is down
    c.advance(5.01)
    assert c.want_connect
    c.opened(5.02)
    (rejoin,) = c.take_outgoing()
    assert isinstance(rejoin, Join)
    assert rejoin.join_ref != jr
    assert c.state("room:1") is S.JOINING


def test_client_that_forgets_to_rejoin_stays_connected_but_deaf():
    c = ClientSocket(rejoin_on_reconnect=False)
    c.connect()
    c.opened(0.0)
    c.join("room:1", {}, 0.0)
    join = c.take_outgoing()[0]
    c.receive(Reply("room:1", "ok", {}, join.ref, join.join_ref), 0.0)
    c.closed(1.0, 1006)
    c.advance(1.01)
    c.opened(1.02)
    assert c.take_outgoing() == []
    assert c.state("room:1") is S.ERRORED


def test_heartbeat_ack_schedules_the_next_and_a_missing_ack_is_a_timeout():
    c = ClientSocket(Timings(heartbeat_interval_ms=1000))
    c.connect()
    c.opened(0.0)
    c.join("room:1", {}, 0.0)
    c.take_outgoing()
    c.advance(1.0)
    (hb,) = c.take_outgoing()
    assert hb == Heartbeat(hb.ref)
    c.receive(Reply("phoenix", "ok", {}, hb.ref, None), 1.2)
    c.advance(2.1)
    assert c.take_outgoing() == []  # next heartbeat is 1 s after the ack, at 2.2
    c.advance(2.2)
    (hb2,) = c.take_outgoing()
    c.take_notices()
    c.advance(3.2)  # no ack within the interval
    notices = c.take_notices()
    assert HeartbeatTimedOut(hb2.ref) in notices
    assert any(
        isinstance(n, ChannelErrored) and n.reason["reason"] == "heartbeat_timeout" for n in notices
    )
    assert c.close_request == (1000, "heartbeat timeout")
    c.closed(3.3, 1000, "heartbeat timeout")
    (closed,) = [n for n in c.take_notices() if isinstance(n, SocketClosed)]
    assert closed.by_client
    assert closed.reconnect_in == 0.01


@pytest.mark.parametrize(("legacy", "reconnects"), [(False, True), (True, False)])
def test_clean_1000_close_from_the_server(legacy, reconnects):
    c = ClientSocket(legacy_close_1000=legacy)
    c.connect()
    c.opened(0.0)
    c.closed(1.0, 1000, "bye")
    assert (c.next_deadline() is not None) is reconnects


def test_stale_join_ref_frames_are_dropped_and_broadcasts_always_delivered():
    c, jr = joined_client()
    c.take_notices()
    c.receive(Message("room:1", "new_msg", {"id": "x"}, "old"), 1.0)
    c.receive(Message("room:1", "new_msg", {"id": "y"}, jr), 1.0)
    c.receive(Broadcast("room:1", "new_msg", {"id": "z"}), 1.0)
    notices = c.take_notices()
    assert notices[0] == StaleDropped("room:1", "new_msg", {"id": "x"}, "old", jr)
    assert [n.payload["id"] for n in notices if isinstance(n, Received)] == ["y", "z"]


def test_phx_close_is_final_and_phx_error_rejoins_after_a_second():
    c, jr = joined_client()
    c.receive(ChannelError("room:1", jr, {"reason": "channel_crash"}), 2.0)
    assert c.state("room:1") is S.ERRORED
    c.take_outgoing()
    c.advance(3.0)
    rejoin = c.take_outgoing()[0]
    c.receive(Reply("room:1", "ok", {}, rejoin.ref, rejoin.join_ref), 3.0)
    c.receive(ChannelClose("room:1", rejoin.join_ref, {}), 4.0)
    assert c.state("room:1") is S.CLOSED
    run_until(c, 4.0, 100.0)
    assert [f for f in c.take_outgoing() if isinstance(f, Join)] == []


def test_leave_closes_on_the_ok_reply():
    c, jr = joined_client()
    c.leave("room:1", 1.0)
    (leave,) = c.take_outgoing()
    assert leave == Leave("room:1", leave.ref, jr)
    assert c.state("room:1") is S.LEAVING
    c.receive(Reply("room:1", "ok", {}, leave.ref, jr), 1.1)
    assert c.state("room:1") is S.CLOSED
    c.take_notices()
    c.receive(ChannelClose("room:1", jr, {}), 1.2)  # the server's phx_close after the leave reply
    assert c.take_notices() == []


def test_disconnect_stays_down():
    c, _ = joined_client()
    c.disconnect()
    assert c.close_request == (1000, "disconnect")
    c.closed(1.0, 1000)
    assert c.next_deadline() is None


inputs = st.lists(
    st.one_of(
        st.tuples(st.just("open")),
        st.tuples(st.just("close"), st.sampled_from([None, 1000, 1006, 1012])),
        st.tuples(st.just("advance"), st.floats(0, 20)),
        st.tuples(st.just("reply"), st.sampled_from(["ok", "error"])),
        st.tuples(st.just("push")),
        st.tuples(st.just("leave")),
        st.tuples(st.just("error")),
        st.tuples(st.just("phx_close")),
        st.tuples(st.just("message"), st.sampled_from([None, "stale", "current"])),
    ),
    max_size=40,
)


@settings(max_examples=300)
@given(inputs)
def test_any_input_sequence_keeps_the_model_consistent(steps):
    c = ClientSocket(Timings(heartbeat_interval_ms=3000, timeout_ms=2000))
    c.connect()
    c.join("room:1", {}, 0.0)
    now, pushes = 0.0, 0
    for step in steps:
        kind = step[0]
        jr = c.join_ref("room:1")
        if kind == "open" and not c.connected:
            c.opened(now)
        elif kind == "close" and c.connected:
            c.closed(now, step[1])
        elif kind == "advance":
            now += step[1]
            c.advance(now)
        elif kind == "reply":
            sent = [f for f in c.take_outgoing() if isinstance(f, Join | Push | Leave)]
            for frame in sent:
                c.receive(Reply("room:1", step[1], {}, frame.ref, frame.join_ref), now)
        elif kind == "push":
            pushes += 1
            c.push("room:1", "e", {}, now, push_id=f"p{pushes}")
        elif kind == "leave":
            c.leave("room:1", now)
        elif kind == "error":
            c.receive(ChannelError("room:1", jr, {}), now)
        elif kind == "phx_close":
            c.receive(ChannelClose("room:1", jr, {}), now)
        elif kind == "message":
            ref = {"stale": "nope", "current": jr, None: None}[step[1]]
            c.receive(Message("room:1", "m", {}, ref) if ref else Broadcast("room:1", "m", {}), now)
        for notice in c.take_notices():
            if hasattr(notice, "old"):
                assert (notice.old, notice.trigger) in TRANSITIONS
        # invariants
        assert c.state("room:1") in set(ChannelState)
        if c.connected:
            assert not c.want_connect
        deadline = c.next_deadline()
        assert deadline is None or deadline >= 0
