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

from typing import TYPE_CHECKING

from ..foreign import MAX_ID, bounded, clip, id_text
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

FOREIGN_KEPT = 100  # deliveries of foreign ids recorded in full, per client

if TYPE_CHECKING:
    from ._client import SwarmClient


def record_notice(client: SwarmClient, notice: Notice, now: float) -> bool:
    """One model notice as history ops (and the client's counters and pending publishes);
    whether it may have changed the client's connection or channel states (not a delivery)."""
    if type(notice) is Received:  # most notices by far: no match, no dotted-path walk
        client.received += 1
        payload = notice.payload
        found = (
            payload.get(client._id_key, None)
            if client._id_key is not None and isinstance(payload, dict)
            else dig(payload, client.config.deliver_id)
        )
        topic, event = notice.topic, notice.event
        prefix = client.own_prefix
        if (
            prefix
            and not (type(found) is str and found.startswith(prefix))
            and event == client.config.deliver_event
        ):
            if client.foreign_recorded >= FOREIGN_KEPT:  # a flood of ids nobody published
                if not client.foreign_counts:
                    client.foreign_since = now
                client.foreign_counts[topic] = client.foreign_counts.get(topic, 0) + 1
                if now - client.foreign_since >= 1.0:
                    client.flush_foreign(now)
                return False
            client.foreign_recorded += 1
        client.recorder.record(
            Op(
                now,
                client.config.client_id,
                "ok",
                "recv",
                {
                    "topic": topic if len(topic) <= MAX_ID else id_text(topic),
                    "event": event if len(event) <= MAX_ID else id_text(event),
                    "id": found if type(found) is str and len(found) <= MAX_ID else id_text(found),
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
                    {"topic": topic, "join_ref": join_ref, "response": bounded(response)},
                )
            else:
                client.refused = client.refused or (
                    f"{client.config.client_id}'s join of {topic} was refused:"
                    f" {clip(str(bounded(response)))}"
                )
                client._record(
                    now,
                    "fail",
                    "join",
                    {"topic": topic, "join_ref": join_ref, "reason": bounded(response)},
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
                {"topic": topic, "join_ref": join_ref, "reason": bounded(reason)},
            )
        case ChannelClosed(topic, join_ref, reason):
            client._joining.pop(topic, None)
            if reason == "leave":
                client._record(now, "ok", "leave", {"topic": topic, "join_ref": join_ref})
            client._record(
                now,
                "ok",
                "channel_close",
                {"topic": topic, "join_ref": join_ref, "reason": bounded(reason)},
            )
        case StaleDropped(topic, event, payload, frame_join_ref, join_ref):
            client._record(
                now,
                "ok",
                "recv_stale",
                {
                    "topic": topic,
                    "event": event,
                    "id": id_text(dig(payload, client.config.deliver_id)),
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
                client._record(now, "fail", "publish", {**value, "reason": bounded(response)})
        case PushTimedOut(push_id, topic, _event, sent):
            value = client._publishes.pop(push_id, {"topic": topic, "id": push_id})
            client._record(now, "info", "publish", {**value, "error": "timeout", "sent": sent})
            retry = client._payloads.pop(push_id, None)
            if retry is not None and retry[3] > 0:
                client._publish(retry[0], retry[1], retry[2], retry[3] - 1)
        case HeartbeatTimedOut(ref):
            client._record(now, "info", "heartbeat_timeout", {"ref": ref})
    return True
