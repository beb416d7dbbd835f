"""Every error the harness raises on purpose, under one root.

    HarnessError
    ├── ClusterError       a node, Redis or the cluster backend did not start, answer or stop
    ├── InvalidScenario    the YAML cannot run; every problem located (file:line:col: path)
    ├── ToxiproxyError     toxiproxy missing, unreachable, slow, or a non-2xx answer
    ├── HistoryError       a history line that cannot be read
    ├── WorkerFailed       a swarm worker process died or did not answer
    ├── BadAnswer          an answer of the server over its limits (`foreign`; a ConnectionError)
    ├── LiveError          a fault or client asked of a live cluster that it cannot have (`live`)
    ├── YamlProblem        YAML that cannot be read, located (`_yaml`; becomes InvalidScenario)
    ├── ConnectionClosed   a swarm client's websocket ended (`swarm._websocket`)
    └── HandshakeFailed    its handshake did not finish (HandshakeRejected: an HTTP refusal)

The CLI turns `InvalidScenario` into exit 2 and every other `HarnessError` (and `OSError`) into
exit 3 with its message, never a traceback (`harness.exits`). `harness.phoenix` keeps its own
root (`ProtocolError`) because it is a leaf that may be lifted out on its own.
"""

from __future__ import annotations

from dataclasses import dataclass


class HarnessError(Exception):
    """Root of every error the harness raises on purpose."""


class ClusterError(HarnessError):
    """A node of the cluster under test (or a helper server) misbehaved at the process level."""


class ToxiproxyError(HarnessError):
    """Toxiproxy is missing, unreachable, too slow, or answered with an error."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HistoryError(HarnessError):
    """A history line that cannot be read."""


class WorkerFailed(HarnessError):
    """A swarm worker process died or did not answer."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a scenario, where it is (GCC style, so editors jump there)."""

    source: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return visible(f"{self.source}:{self.line}:{self.column}: {where}{self.message}")


def visible(text: str) -> str:
    """Control characters (a newline inside a YAML key, an escape sequence) shown escaped, so a
    problem is one line on a terminal and cannot pose as another line of output."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class InvalidScenario(HarnessError):
    """The scenario cannot run; `problems` says where and why, all at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def where(exc: BaseException) -> str:
    """An unexpected exception in one line: its type, message and the harness frame that
    raised it (`TypeError: ... at harness/history.py:167 in to_line`)."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/harness/" in f.filename] or frames
    at = ""
    if ours:
        last = ours[-1]
        path = last.filename.rsplit("/harness/", 1)[-1]
        at = f" at harness/{path}:{last.lineno} in {last.name}"
    text = visible(str(exc))[:300]
    return f"{type(exc).__name__}: {text}{at}"
