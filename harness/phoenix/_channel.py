"""The channel's states, its transition table, and the client's timings (phoenix.js's, as data).

`TRANSITIONS[(state, trigger)]` is every move a channel can make (phoenix.js `channel.js`);
`ClientSocket` looks every move up here. `Timings` holds the reconnect and rejoin backoff
schedules, the heartbeat interval and the push timeout, in milliseconds as phoenix.js states
them (`research/phoenix-protocol.md` §3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class ChannelState(Enum):
    CLOSED = "closed"
    JOINING = "joining"
    JOINED = "joined"
    LEAVING = "leaving"
    ERRORED = "errored"


S = ChannelState
TRANSITIONS: dict[tuple[ChannelState, str], ChannelState] = {
    (S.CLOSED, "join"): S.JOINING,
    (S.JOINING, "rejoin"): S.JOINING,
    (S.ERRORED, "rejoin"): S.JOINING,
    (S.JOINING, "join_ok"): S.JOINED,
    (S.JOINING, "join_error"): S.ERRORED,
    (S.JOINING, "join_timeout"): S.ERRORED,
    (S.JOINING, "error"): S.ERRORED,
    (S.JOINED, "error"): S.ERRORED,
    (S.JOINING, "leave"): S.LEAVING,
    (S.JOINED, "leave"): S.LEAVING,
    (S.ERRORED, "leave"): S.LEAVING,
    (S.LEAVING, "left"): S.CLOSED,
    (S.JOINING, "close"): S.CLOSED,
    (S.JOINED, "close"): S.CLOSED,
    (S.ERRORED, "close"): S.CLOSED,
    (S.LEAVING, "close"): S.CLOSED,
}
"""(state, trigger) -> next state. A trigger with no entry is ignored in that state."""


def _schedule(steps_ms: tuple[int, ...], tries: int) -> float:
    return steps_ms[min(tries, len(steps_ms)) - 1] / 1000


@dataclass(frozen=True, slots=True)
class Timings:
    """phoenix.js defaults; every one can be set per scenario."""

    reconnect_after_ms: tuple[int, ...] = (10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000)
    rejoin_after_ms: tuple[int, ...] = (1000, 2000, 5000, 10000)
    heartbeat_interval_ms: int = 30000
    timeout_ms: int = 10000

    def reconnect_after(self, tries: int) -> float:
        return _schedule(self.reconnect_after_ms, tries)

    def rejoin_after(self, tries: int) -> float:
        return _schedule(self.rejoin_after_ms, tries)

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat_interval_ms / 1000

    @property
    def timeout(self) -> float:
        return self.timeout_ms / 1000


DEFAULT_TIMINGS = Timings()


@dataclass
class PendingPush:
    """A push waiting for its reply (or, until the channel joins, in its buffer)."""

    push_id: str
    topic: str
    event: str
    payload: Any
    timeout: float
    deadline: float
    ref: str | None = None


@dataclass
class ChannelRecord:
    """The client's record of one channel."""

    topic: str
    params: Any  # the join payload, or (phoenix.js) a function called for it on every join
    state: ChannelState = ChannelState.CLOSED
    join_ref: str | None = None
    rejoin_tries: int = 0
    leave_ref: str | None = None
    buffer: list[PendingPush] = field(default_factory=list)

    def payload(self) -> Any:
        """The payload of a join sent now: a closure's is made at each join and rejoin, so it
        can carry what the client saw since (`since: last`, for an app that catches up)."""
        return self.params() if callable(self.params) else self.params
