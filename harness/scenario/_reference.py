"""What the grammar knows of the bundled reference server (`server_under_test`): its defects.

`cluster.bugs` switches on deliberate defects of the reference server, so a typo must be an
error up front, not a node that refuses to start (or, worse, a "valid" run with no defect on).
The names are copied here because the harness never imports the server it tests
(`tests/test_layers.py`); `tests/test_scenario.py` holds this list equal to the server's
catalogue. With a `cluster.command` of your own, `bugs` are passed through as `{bug_args}`
unchecked: the harness cannot know another server's switches.
"""

from __future__ import annotations

BUGS: dict[str, str] = {  # name -> what it does, in short (`harness list`)
    "duplicate_after_rejoin": "replays the room's recent messages on every join",
    "resend_after_reconnect": "a mesh link resends its last messages when it comes back",
    "forget_remote_interest_after_restart": "forgets a restarted peer's subscribers for good",
    "no_close_on_duplicate_join": "a duplicate join leaves the old channel subscribed",
    "ack_before_persist": "acknowledges and broadcasts before the write (write-behind)",
    "deliver_after_leave": "keeps the subscription of a channel that left",
    "reorder_publisher": "broadcasts each message from a task of its own (reorders)",
    "redis_echo": "the Redis adapter does not skip its own messages",
    "broadcast_retried_publish": "broadcasts a retried publish again though it is stored once",
    "timer_once_per_user": "a recurring push registered node-wide, never ticks after a rejoin",
    "no_link_restore_after_kill": "a stale pid file: a restarted node never dials its peers",
    "catch_up_off_by_one": "catch-up takes `since` as inclusive: the first missed never comes",
    "catch_up_from_memory": "catch-up replays from the node's memory, not the store",
    "catch_up_subscribe_late": "catch-up reads before subscribing: a gap at the seam",
    "catch_up_no_dedupe": "catch-up pushes live messages during the replay: seam duplicates",
    "catch_up_capped": "catch-up replays only the last 20 messages",
}
MESH_ONLY: frozenset[str] = frozenset(
    {"resend_after_reconnect", "forget_remote_interest_after_restart", "no_link_restore_after_kill"}
)
REDIS_ONLY: frozenset[str] = frozenset({"redis_echo"})
