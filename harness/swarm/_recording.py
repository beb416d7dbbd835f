"""A swarm client's model notices as history ops: the one translation from what the phoenix.js
model noticed (`harness.phoenix` notices) to Jepsen-style ops (`harness.history`).

Deliveries come first and take a short path (no pattern match, no dotted-path walk when the
app's message id is a plain key): they are most of any history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..history import Op
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
from ..scenario import dig

if TYPE_CHECKING:
    from ._client import SwarmClient


def record_notice(client: SwarmClient, notice: Notice, now: float) -> bool:
    """One model notice as history ops (and the client's counters and pending publishes);
    whether it may have changed the client's connection or channel states (not a delivery)."""
    if type(notice) is Received:  # most notices by far: no match, no dotted-path walk
        client.received += 1
        payload = notice.payload
        client.recorder.record(
            Op(
                now,
                client.config.client_id,
                "ok",
                "recv",
                {
                    "topic": notice.topic,
                    "event": notice.event,
                    "id": payload.get(client._id_key, None)
                    if client._id_key is not None and isinstance(payload, dict)
                    else dig(payload, client.config.deliver_id),
                    "join_ref": notice.join_ref,
                    "frame_join_ref": notice.frame_join_ref,
                    "state": notice.state.value,
                },
                client.node.name,
            )
        )
        return False
    match notice:
        case SocketOpened():
            pass  # recorded as connect ok
        case SocketClosed(code, reason, by_client, reconnect_in):
            client._record(
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
            client._joining[topic] = join_ref
            client._record(now, "invoke", "join", {"topic": topic, "join_ref": join_ref})
        case JoinReplied(topic, join_ref, status, response):
            client._joining.pop(topic, None)
            if status == "ok":
                client._record(
                    now,
                    "ok",
                    "join",
                    {"topic": topic, "join_ref": join_ref, "response": response},
                )
            else:
                client.refused = client.refused or (
                    f"{client.config.client_id}'s join of {topic} was refused: {response}"
                )
                client._record(
                    now,
                    "fail",
                    "join",
                    {"topic": topic, "join_ref": join_ref, "reason": response},
                )
        case JoinTimedOut(topic, join_ref):
            client._joining.pop(topic, None)
            client._record(
                now, "info", "join", {"topic": topic, "join_ref": join_ref, "error": "timeout"}
            )
        case ChannelErrored(topic, join_ref, reason):
            if client._joining.pop(topic, None) is not None:
                client._record(
                    now,
                    "info",
                    "join",
                    {
                        "topic": topic,
                        "join_ref": join_ref,
                        "error": "channel errored while joining",
                    },
                )
            client._record(
                now,
                "info",
                "channel_error",
                {"topic": topic, "join_ref": join_ref, "reason": reason},
            )
        case ChannelClosed(topic, join_ref, reason):
            client._joining.pop(topic, None)
            if reason == "leave":
                client._record(now, "ok", "leave", {"topic": topic, "join_ref": join_ref})
            client._record(
                now,
                "ok",
                "channel_close",
                {"topic": topic, "join_ref": join_ref, "reason": reason},
            )
        case StaleDropped(topic, event, payload, frame_join_ref, join_ref):
            client._record(
                now,
                "ok",
                "recv_stale",
                {
                    "topic": topic,
                    "event": event,
                    "id": dig(payload, client.config.deliver_id),
                    "frame_join_ref": frame_join_ref,
                    "join_ref": join_ref,
                },
            )
        case PushReplied(push_id, topic, _event, status, response):
            value = client._publishes.pop(push_id, {"topic": topic, "id": push_id})
            client._payloads.pop(push_id, None)
            if status == "ok":
                client.acknowledged += 1
                client._record(now, "ok", "publish", value)
            else:
                client._record(now, "fail", "publish", {**value, "reason": response})
        case PushTimedOut(push_id, topic, _event, sent):
            value = client._publishes.pop(push_id, {"topic": topic, "id": push_id})
            client._record(now, "info", "publish", {**value, "error": "timeout", "sent": sent})
            retry = client._payloads.pop(push_id, None)
            if retry is not None and retry[3] > 0:
                client._publish(retry[0], retry[1], retry[2], retry[3] - 1)
        case HeartbeatTimedOut(ref):
            client._record(now, "info", "heartbeat_timeout", {"ref": ref})
    return True
