"""What the grammar knows of the bundled reference server (`server_under_test`): its defects.

`cluster.bugs` switches on deliberate defects of the reference server, so a typo must be an
error up front, not a node that refuses to start (or, worse, a "valid" run with no defect on).
The names are copied here because the harness never imports the server it tests
(`tests/test_layers.py`); `tests/test_scenario.py` holds this list equal to the server's
catalogue. With a `cluster.command` of your own, `bugs` are passed through as `{bug_args}`
unchecked: the harness cannot know another server's switches.
"""

from __future__ import annotations

BUGS: frozenset[str] = frozenset(
    {
        "duplicate_after_rejoin",
        "resend_after_reconnect",
        "forget_remote_interest_after_restart",
        "no_close_on_duplicate_join",
        "ack_before_persist",
        "deliver_after_leave",
        "reorder_publisher",
        "redis_echo",
        "broadcast_retried_publish",
        "timer_once_per_user",
        "no_link_restore_after_kill",
    }
)
MESH_ONLY: frozenset[str] = frozenset(
    {"resend_after_reconnect", "forget_remote_interest_after_restart", "no_link_restore_after_kill"}
)
REDIS_ONLY: frozenset[str] = frozenset({"redis_echo"})
