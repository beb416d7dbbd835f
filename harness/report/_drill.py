"""Drill-down: for each client a check's sentence names, its own events around its witness.

A witness says what went wrong; the client's connects, joins, closes and deliveries around it
say how (a rejoin that came late, a delivery on the old join_ref, a publish that was retried).
One small table per client, in the order the check's sentence names them (`checkers.named`), so
the page opens on the clients the terminal named; at most `MAX_CLIENTS`.

The window spans every moment the witness names (its time, its evidence's times such as a rejoin
deadline, each delivery it lists: the first delivery of a duplicate, however long before), `PAD`
seconds either side. Rows: every event but the traffic (connects, joins, closes: not deliveries and
publishes), each delivery or publish of the witnessed message (marked: the rows the witness is
about), and the `CONTEXT` deliveries and publishes nearest each named moment; at most `MAX_ROWS`. A
reconnect loop (failed attempts one after another, each with its disconnect) is one row: how many
attempts, until when, the commonest error; the events between two rows that are not shown are one
row saying how many.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..checkers import CheckResult, named
from ..history import Op

PAD = 0.5
MAX_CLIENTS = 8
OPEN = 3  # tables open on the page (as many clients as a check's sentence names); the rest folded
MAX_ROWS = 40
CONTEXT = 4  # deliveries kept nearest each moment the witness names
CAPTION = (
    f"each client's own events from {PAD:g} s before the first moment its witness names (the"
    f" first delivery of a duplicate, however early) to {PAD:g} s after the last; the witnessed"
    " message's deliveries highlighted, a reconnect loop one row"
)
TRAFFIC = frozenset({"recv", "publish"})  # shown near the witness only; the rest always
SHOWN = ("topic", "event", "id", "join_ref", "code", "reason", "error", "url")


@dataclass(frozen=True, slots=True)
class Row:
    time: float
    type: str
    f: str
    node: str
    detail: str
    at_witness: bool = False
    repeats: int = 1  # failed connect attempts this row stands for (a reconnect loop)
    gap: int = 0  # > 0: a row standing for this many events not shown


@dataclass(frozen=True, slots=True)
class ClientEvents:
    client: str
    check: str
    witness: str  # the problem, as the witness says it
    anchor: str  # the witness block's id on the page (`w-<check>`)
    start: float
    end: float
    rows: tuple[Row, ...]
    hidden: int  # events in the window not shown
    open: bool


def drill(ops: Sequence[Op], results: dict[str, Any]) -> list[ClientEvents]:
    chosen: dict[str, tuple[str, dict[str, Any]]] = {}
    for check in results.get("checks", []):
        if check.get("validity") == "valid" or not check.get("witnesses"):
            continue
        result = CheckResult.from_json(check)
        for client in named(result):
            if len(chosen) >= MAX_CLIENTS:
                break
            if client in chosen:
                continue
            first = next(w for w in check["witnesses"] if w.get("client") == client)
            chosen[client] = (str(check["name"]), first)
    spans = {client: _span(w) for client, (_, w) in chosen.items()}
    by_client: dict[str, list[Op]] = {c: [] for c in chosen}
    for op in ops:
        span = spans.get(op.process)
        if span is not None and span[0] <= op.time <= span[1]:
            by_client[op.process].append(op)
    out: list[ClientEvents] = []
    for client, (check, w) in chosen.items():
        start, end = spans[client]
        events = by_client[client]
        rows = _rows(events, w)
        hidden = sum(row.gap for row in rows)
        out.append(
            ClientEvents(
                client,
                check,
                str(w.get("problem", "")),
                f"w-{check}",
                start,
                end,
                tuple(rows),
                hidden,
                len(out) < OPEN,
            )
        )
    return out


def _moments(w: Mapping[str, Any]) -> list[float]:
    """The times a witness names: its own, its evidence's (`deadline` and the keys ending in
    `_at`: rejoined_at, published_at, ...) and each listed delivery to its client."""
    found = [float(w["time"])] if isinstance(w.get("time"), int | float) else []
    found += [
        float(v)
        for k, v in w.items()
        if (k == "deadline" or k.endswith("_at")) and isinstance(v, int | float)
    ]
    for d in w.get("deliveries") or ():
        if (
            isinstance(d, dict)
            and isinstance(d.get("time"), int | float)
            and d.get("client") in (None, w.get("client"))
        ):
            found.append(float(d["time"]))
    return found


def _span(w: Mapping[str, Any]) -> tuple[float, float]:
    moments = _moments(w) or [0.0]
    return min(moments) - PAD, max(moments) + PAD


def _rows(events: Sequence[Op], w: Mapping[str, Any]) -> list[Row]:
    """The rows of one client's window (`events`, in history order)."""
    moments = _moments(w)
    wanted = w.get("id")
    witnessed = {
        i
        for i, op in enumerate(events)
        if op.f in TRAFFIC and wanted and op.value.get("id") == wanted
    }
    if not witnessed and moments and events:  # no message named: the event nearest its time
        t = moments[0]
        witnessed = {min(range(len(events)), key=lambda i: abs(events[i].time - t))}
    picked = set(witnessed) | {i for i, op in enumerate(events) if op.f not in TRAFFIC}
    traffic = [i for i, op in enumerate(events) if op.f in TRAFFIC and i not in witnessed]
    for t in moments:
        picked.update(sorted(traffic, key=lambda i: abs(events[i].time - t))[:CONTEXT])
    spans = _collapse(events, sorted(picked), witnessed)
    if len(spans) > MAX_ROWS:  # the witnessed rows, then the rest nearest a named moment
        keep = [s for s in spans if s[0].at_witness]
        rest = sorted(
            (s for s in spans if not s[0].at_witness),
            key=lambda s: min((abs(s[0].time - t) for t in moments), default=0.0),
        )
        spans = sorted(keep + rest[: MAX_ROWS - len(keep)], key=lambda s: s[1])
    rows: list[Row] = []
    shown_to = -1  # the last event position a row stands for
    for row, first, last in [*spans, (None, len(events), len(events))]:
        if first - shown_to > 1:
            n = first - shown_to - 1
            rows.append(
                Row(
                    events[shown_to + 1].time,
                    "",
                    "...",
                    "",
                    f"{n} more event{'s' if n != 1 else ''}",
                    gap=n,
                )
            )
        if row is not None:
            rows.append(row)
        shown_to = last
    return rows


def _collapse(
    events: Sequence[Op], picked: Sequence[int], witnessed: set[int]
) -> list[tuple[Row, int, int]]:
    """Rows of the picked events (positions in `events`), each with the first and last position
    it stands for; a run of failed reconnect attempts one row."""
    spans: list[tuple[Row, int, int]] = []
    k = 0
    while k < len(picked):
        i = picked[k]
        op = events[i]
        if op.f == "connect" and op.type == "fail":
            j, failures = k, []
            while j < len(picked) and events[picked[j]].f in ("connect", "disconnect"):
                e = events[picked[j]]
                if e.f == "connect" and e.type == "ok":
                    break
                if e.f == "connect" and e.type == "fail":
                    failures.append(e)
                j += 1
            if j < len(picked) and events[picked[j]].f == "connect":
                while (
                    j > k
                    and events[picked[j - 1]].f == "connect"
                    and (events[picked[j - 1]].type == "invoke")
                ):
                    j -= 1  # the successful attempt's own start stays a row
            if len(failures) > 1:
                errors = Counter(str(f.value.get("error", "")) for f in failures)
                error, times = errors.most_common(1)[0]
                detail = (
                    f"{len(failures)} attempts failed until {failures[-1].time:.3f} s;"
                    f" {times} of them: {error}"
                )
                row = Row(
                    op.time, "fail", "connect", op.node or "", detail[:200], repeats=len(failures)
                )
                spans.append((row, i, picked[j - 1]))
                k = j
                continue
        row = Row(op.time, op.type, op.f, op.node or "", _detail(op.value), i in witnessed)
        spans.append((row, i, i))
        k += 1
    return spans


def _detail(value: Mapping[str, Any]) -> str:
    parts = [f"{k}={value[k]}" for k in SHOWN if value.get(k) not in (None, "")]
    return " ".join(parts)[:160]
