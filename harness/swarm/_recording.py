"""A swarm client's model notices as history ops: the one translation from what the phoenix.js model
noticed (`harness.phoenix` notices) to Jepsen-style ops (`harness.history`).

Deliveries come first and take a short path (no pattern match, no dotted-path walk when the app's
message id is a plain key): they are most of any history.

Everything the server sent is foreign (`harness.foreign`): a delivery's id becomes its canonical
string (a list or an object at the id's path is its compact JSON; a long one is cut, with its length
and a digest), refusal reasons and channel payloads are recorded `bounded`, so an op can always be
written and no history grows with what the server sends. A delivery (the app's delivery event) whose
id this run never made (it does not start with the run's id) is a phantom whatever happens next: the
first `FOREIGN_KEPT` of each client are recorded as deliveries, the rest counted by topic into
`recv_foreign` ops (one a second at most), so a server that floods phantoms costs a count, not a
history row each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..foreign import MAX_ID, bounded, clip, id_text
from ..grammar.behaviour import Behaviour
from ..grammar.templates import dig
from ..history import Op, OpName, OpType, Recorder
from ..phoenix import (
    ChannelClosed,
    ChannelErrored,
    HeartbeatTimedOut,
    JoinReplied,
    JoinSent,
    JoinTimedOut,
    Notice,
    PushReplied,
    PushTimedOut,
    Received,
    SocketClosed,
    SocketOpened,
    StaleDropped,
)

FOREIGN_KEPT = 100  # deliveries of foreign ids recorded in full, per client

Retry = Callable[[dict[str, Any], dict[str, Any], "float | None", int], None]


class Recording:
    """One client's history: its ops, and what turning notices into ops keeps (counters, the
    joins and publishes waiting for their outcome, deliveries of foreign ids counted). The
    client owns one; it knows nothing of the client but what it is given."""

    def __init__(
        self,
        client_id: str,
        behaviour: Behaviour,
        recorder: Recorder,
        node: Callable[[], str],
        retry: Retry,
    ) -> None:
        self.client_id = client_id
        self.recorder = recorder
        self.node = node  # the node it is (or was last) connected to
        self.retry = retry  # publish again (same id), with one retry fewer left
        deliver = behaviour.app.deliver
        self.deliver_event, self.deliver_id = deliver.event, deliver.id
        self.id_key = None if "." in deliver.id else deliver.id  # the short path: a plain key
        self.cursor_path = deliver.cursor
        self.cursors: dict[str, int | str] = {}  # topic -> the last cursor a delivery carried
        self.own_prefix = f"{behaviour.run_id}-" if behaviour.run_id else ""
        self.received = 0
        self.acknowledged = 0
        self.refused: str | None = None  # the first refusal of a join or of the socket
        self.joining: dict[str, str] = {}  # topic -> join_ref of a join with no outcome yet
        self.publishes: dict[str, dict[str, Any]] = {}  # push_id -> publish op value
        self.payloads: dict[str, tuple[dict[str, Any], dict[str, Any], float | None, int]] = {}
        # deliveries of ids this run never made: the first FOREIGN_KEPT recorded, the rest
        # counted by topic and recorded as `recv_foreign` ops, at most one a second
        self.foreign_recorded = 0
        self.foreign_counts: dict[str, int] = {}
        self.foreign_since = 0.0

    def record(self, time: float, type_: OpType, f: OpName, value: Mapping[str, Any]) -> None:
        self.recorder.record(Op(time, self.client_id, type_, f, value, self.node()))

    def flush_foreign(self, now: float) -> None:
        """Record the deliveries of foreign ids counted since the last time (`recv_foreign`)."""
        for topic, count in self.foreign_counts.items():
            value = {"topic": topic, "count": count, "since": round(self.foreign_since, 6)}
            self.record(now, "info", "recv_foreign", value)
        self.foreign_counts = {}
        self.foreign_since = now

    def notice(self, notice: Notice, now: float) -> bool:
        """One model notice as history ops; whether it may have changed the client's
        connection or channel states (not a delivery)."""
        return _notice(self, notice, now)


def _cursor(value: Any) -> int | str | None:
    """A position a delivery carried, as the client keeps it: an integer, or a short string
    (anything else the server sent is not a position: the client keeps the one it had)."""
    if type(value) is int and abs(value) < 2**53:
        return value
    if type(value) is str and len(value) <= MAX_ID:
        return value
    return None


def _notice(recording: Recording, notice: Notice, now: float) -> bool:
    if type(notice) is Received:  # most notices by far: no match, no dotted-path walk
        recording.received += 1
        payload = notice.payload
        found = (
            payload.get(recording.id_key, None)
            if recording.id_key is not None and isinstance(payload, dict)
            else dig(payload, recording.deliver_id)
        )
        topic, event = notice.topic, notice.event
        prefix = recording.own_prefix
        if (
            prefix
            and not (type(found) is str and found.startswith(prefix))
            and event == recording.deliver_event
        ):
            if recording.foreign_recorded >= FOREIGN_KEPT:  # a flood of ids nobody published
                if not recording.foreign_counts:
                    recording.foreign_since = now
                recording.foreign_counts[topic] = recording.foreign_counts.get(topic, 0) + 1
                if now - recording.foreign_since >= 1.0:
                    recording.flush_foreign(now)
                return False
            recording.foreign_recorded += 1
        value: dict[str, Any] = {
            "topic": topic if len(topic) <= MAX_ID else id_text(topic),
            "event": event if len(event) <= MAX_ID else id_text(event),
            "id": found if type(found) is str and len(found) <= MAX_ID else id_text(found),
            "join_ref": notice.join_ref,
            "frame_join_ref": notice.frame_join_ref,
            "state": notice.state.value,
        }
        if recording.cursor_path is not None and event == recording.deliver_event:
            cursor = _cursor(dig(payload, recording.cursor_path))
            if cursor is not None:
                recording.cursors[topic] = value["cursor"] = cursor
        recording.recorder.record(
            Op(now, recording.client_id, "ok", "recv", value, recording.node())
        )
        return False
    match notice:
        case SocketOpened():
            pass  # recorded as connect ok
        case SocketClosed(code, reason, by_client, reconnect_in):
            recording.record(
                now,
                "info",
                "disconnect",
                {
                    "code": code,
                    "reason": reason,
                    "by_client": by_client,
                    "reconnect_in": reconnect_in,
                },
            )
        case JoinSent(topic, join_ref):
            recording.joining[topic] = join_ref
            joined: dict[str, Any] = {"topic": topic, "join_ref": join_ref}
            if recording.cursor_path is not None:  # the cursor the join carried (`{cursor}`)
                joined["cursor"] = recording.cursors.get(topic)
            recording.record(now, "invoke", "join", joined)
        case JoinReplied(topic, join_ref, status, response):
            recording.joining.pop(topic, None)
            if status == "ok":
                recording.record(
                    now,
                    "ok",
                    "join",
                    {"topic": topic, "join_ref": join_ref, "response": bounded(response)},
                )
            else:
                recording.refused = recording.refused or (
                    f"{recording.client_id}'s join of {topic} was refused:"
                    f" {clip(str(bounded(response)))}"
                )
                recording.record(
                    now,
                    "fail",
                    "join",
                    {"topic": topic, "join_ref": join_ref, "reason": bounded(response)},
                )
        case JoinTimedOut(topic, join_ref):
            recording.joining.pop(topic, None)
            recording.record(
                now, "info", "join", {"topic": topic, "join_ref": join_ref, "error": "timeout"}
            )
        case ChannelErrored(topic, join_ref, reason):
            if recording.joining.pop(topic, None) is not None:
                recording.record(
                    now,
                    "info",
                    "join",
                    {
                        "topic": topic,
                        "join_ref": join_ref,
                        "error": "channel errored while joining",
                    },
                )
            recording.record(
                now,
                "info",
                "channel_error",
                {"topic": topic, "join_ref": join_ref, "reason": bounded(reason)},
            )
        case ChannelClosed(topic, join_ref, reason):
            recording.joining.pop(topic, None)
            if reason == "leave":
                recording.record(now, "ok", "leave", {"topic": topic, "join_ref": join_ref})
            recording.record(
                now,
                "ok",
                "channel_close",
                {"topic": topic, "join_ref": join_ref, "reason": bounded(reason)},
            )
        case StaleDropped(topic, event, payload, frame_join_ref, join_ref):
            recording.record(
                now,
                "ok",
                "recv_stale",
                {
                    "topic": topic,
                    "event": event,
                    "id": id_text(dig(payload, recording.deliver_id)),
                    "frame_join_ref": frame_join_ref,
                    "join_ref": join_ref,
                },
            )
        case PushReplied(push_id, topic, _event, status, response):
            value = recording.publishes.pop(push_id, {"topic": topic, "id": push_id})
            recording.payloads.pop(push_id, None)
            if status == "ok":
                recording.acknowledged += 1
                recording.record(now, "ok", "publish", value)
            else:
                recording.record(now, "fail", "publish", {**value, "reason": bounded(response)})
        case PushTimedOut(push_id, topic, _event, sent):
            value = recording.publishes.pop(push_id, {"topic": topic, "id": push_id})
            recording.record(now, "info", "publish", {**value, "error": "timeout", "sent": sent})
            retry = recording.payloads.pop(push_id, None)
            if retry is not None and retry[3] > 0:
                recording.retry(retry[0], retry[1], retry[2], retry[3] - 1)
        case HeartbeatTimedOut(ref):
            recording.record(now, "info", "heartbeat_timeout", {"ref": ref})
    return True
