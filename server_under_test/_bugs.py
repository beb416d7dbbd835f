"""Deliberate defects, switched on one at a time with `--bug NAME`.

Each is a mistake that happens in real channel servers. The harness's own tests start a node
with a bug and prove that the matching checker catches it; none is ever on by default or in the
demo. Code asks `bugs.on(NAME)` at the one place the defect lives.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import ConfigError

CATALOGUE: dict[str, str] = {
    "duplicate_after_rejoin": (
        "on every join the channel replays the room's recent messages, so a client that "
        "rejoins after a disconnect receives messages it has already seen (breaks at-most-once)"
    ),
    "resend_after_reconnect": (
        "a mesh link keeps the last messages it sent and sends them all again when the link "
        "comes back, 'in case they were lost': peers that had them deliver them twice"
    ),
    "forget_remote_interest_after_restart": (
        "broadcasts go only to peers known to have subscribers, and when a peer restarts its "
        "interest is forgotten and never learnt again: silent loss after the heal"
    ),
    "no_close_on_duplicate_join": (
        "a duplicate join on one connection leaves the old channel subscribed, so the client "
        "gets every broadcast twice"
    ),
    "ack_before_persist": (
        "new_msg is acknowledged and broadcast first and written to the store a moment later "
        "(write-behind): a kill in between loses acknowledged writes"
    ),
    "deliver_after_leave": (
        "a leave closes the channel but leaves its subscription in place, so the socket keeps "
        "getting broadcasts for a topic it left"
    ),
    "reorder_publisher": (
        "each new_msg is broadcast from its own background task after the write, so messages "
        "from one publisher can overtake each other"
    ),
    "broadcast_retried_publish": (
        "the store ignores a publish whose id it already has, but the channel broadcasts it "
        "anyway: a publisher that retries a timed-out push (same id) makes every subscriber "
        "receive the message twice (idempotent storage, non-idempotent fan-out)"
    ),
    "timer_once_per_user": (
        "a channel's recurring push is registered in a node-wide table keyed by user and topic "
        "and never removed when the channel dies, so a client that rejoins on the same node "
        "gets no more ticks (state that outlived its process)"
    ),
    "redis_echo": (
        "the Redis adapter does not skip its own messages when Redis sends them back, so the "
        "publishing node's subscribers get every broadcast twice (Redis PubSub only)"
    ),
    "no_link_restore_after_kill": (
        "a node restarted after a crash finds its old pid file and skips dialing its peers, so "
        "its broadcasts never reach the rest of the cluster again"
    ),
    "catch_up_off_by_one": (
        "catch-up takes `since` as inclusive: a client that rejoins with since=N is assumed to "
        "have N+1 already, so the first message it missed is never sent (at-least-once broken)"
    ),
    "catch_up_from_memory": (
        "catch-up replays from the node's own memory of the messages it saw, not the store: "
        "what other nodes published during a netsplit, or anything before a restart, is lost"
    ),
    "catch_up_subscribe_late": (
        "catch-up reads the replay before subscribing and then trusts the first live message: "
        "a message published between the read and the subscription is lost (a gap at the seam)"
    ),
    "catch_up_no_dedupe": (
        "catch-up pushes live messages as they come during the replay: one published between "
        "the subscription and the read arrives twice (duplicates at the seam)"
    ),
    "catch_up_capped": (
        "catch-up replays only the last 20 messages after `since`: a client that was away "
        "longer never gets the older ones"
    ),
}


MESH_ONLY = frozenset(
    {"resend_after_reconnect", "forget_remote_interest_after_restart", "no_link_restore_after_kill"}
)
REDIS_ONLY = frozenset({"redis_echo"})


@dataclass(frozen=True, slots=True)
class Bugs:
    """The set of defects switched on for this node."""

    names: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, names: list[str]) -> Bugs:
        unknown = [n for n in names if n not in CATALOGUE]
        if unknown:
            known = ", ".join(sorted(CATALOGUE))
            raise ConfigError(f"unknown --bug {', '.join(unknown)}; known bugs: {known}")
        return cls(frozenset(names))

    def on(self, name: str) -> bool:
        if name not in CATALOGUE:
            raise KeyError(name)
        return name in self.names
