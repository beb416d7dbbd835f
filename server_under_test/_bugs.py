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
        "a mesh link keeps what it could not send while the peer was unreachable and sends "
        "it all when the link comes back (replays stale, possibly duplicated broadcasts)"
    ),
    "no_close_on_duplicate_join": (
        "a duplicate join on one connection leaves the old channel subscribed, so the client "
        "gets every broadcast twice"
    ),
}


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
