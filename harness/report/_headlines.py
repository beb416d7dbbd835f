"""One sentence per check that did not hold: what happened, to whom, around which fault.

A reader of a failed run should not have to work out the cause from dots on a timeline. From a
check's witnesses alone (and the fault windows each witness carries) this says e.g.

    at_most_once: 361 duplicate deliveries; the 20 shown: to 6 clients (c2, c4, c6, ...) of n2,
    each 0.8 s to 0.9 s after `kill n2` (3.0 s to 4.7 s)

Counts come from the check's summary (`violations`: every witness, not only the 20 kept in
results.json); clients, nodes and faults from the witnesses at hand, said as "the N shown" when
they are a sample. An `unknown` check's sentence is its reason (the harness's own distress,
nothing to judge). Pure: the report, the terminal, JUnit and the pytest plugin print the same
sentence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from ..checkers import CheckResult
from ..history import Witness

NOUNS = {
    "at_most_once": ("duplicate delivery", "duplicate deliveries"),
    "no_phantom": ("phantom delivery", "phantom deliveries"),
    "delivery": ("message lost outside the faults", "messages lost outside the faults"),
    "order": ("delivery out of publish order", "deliveries out of publish order"),
    "durability": ("acknowledged write missing", "acknowledged writes missing"),
    "rejoin": ("client not joined again in time", "clients not joined again in time"),
    "pushes": ("channel push missing after a join", "channel pushes missing after joins"),
}
NAMED = 3  # clients named in a sentence before "..."


def headlines(results: Iterable[CheckResult]) -> list[str]:
    """`check: sentence` for every check that is not valid, in the results' order."""
    out = []
    for result in results:
        sentence = headline(result)
        if sentence is not None:
            out.append(f"{result.name}: {sentence}")
    return out


def headline(result: CheckResult) -> str | None:
    if result.validity == "valid":
        return None
    if result.validity == "unknown" or not result.witnesses:
        return result.error or f"{result.validity}, with no witness"
    if result.limits:
        return "; ".join(limit.text for limit in result.limits if not limit.ok)
    count = int(result.summary.get("violations", len(result.witnesses)))
    one, many = NOUNS.get(result.name, ("violation", "violations"))
    what = f"{count} {one if count == 1 else many}"
    facts = ", ".join(p for p in (_who(result.witnesses), _when(result.witnesses)) if p)
    if count > len(result.witnesses):
        return f"{what}; the {len(result.witnesses)} shown: {facts}"
    return f"{what}, {facts}"


def _who(witnesses: Sequence[Witness]) -> str:
    clients = sorted({w.client for w in witnesses if w.client}, key=_natural)
    if not clients:
        topics = sorted({w.topic for w in witnesses if w.topic})
        return f"on {_list(topics)}" if topics else ""
    nodes = sorted({n for w in witnesses for n in _nodes(w)}, key=_natural)
    named = ", ".join(clients[:NAMED]) + (", ..." if len(clients) > NAMED else "")
    whom = f"to {len(clients)} client{'s' if len(clients) != 1 else ''} ({named})"
    if len(clients) == 1:
        whom = f"to {clients[0]}"
    return f"{whom} of {_list(nodes)}" if nodes else whom


def _when(witnesses: Sequence[Witness]) -> str:
    """Relative to the fault most witnesses name; or "outside every fault" when none does."""
    near: Counter[tuple[str, str, float, float]] = Counter()
    for w in witnesses:
        for f in _faults(w):
            near[(str(f.get("kind")), str(f.get("target")), _num(f, "start"), _num(f, "end"))] += 1
    if not near:
        return "outside every fault window"
    (kind, target, start, end), hits = near.most_common(1)[0]
    fault = f"`{kind} {target}` ({start:.1f} s to {end:.1f} s)".replace(" )", ")")
    times = [w.time for w in witnesses if w.time is not None and _names(w, kind, target, start)]
    if not times:
        return f"around {fault}"
    after = [t - end for t in times]
    share = "" if hits == len(witnesses) else f" ({hits} of {len(witnesses)})"
    if all(t < start for t in times):
        return f"before {fault}{share}"
    if all(start <= t <= end for t in times):
        return f"during {fault}{share}"
    if all(a >= 0 for a in after):
        low, high = min(after), max(after)
        span = f"{low:.1f} s" if high - low < 0.05 else f"{low:.1f} s to {high:.1f} s"
        return f"each {span} after {fault}{share}"
    return f"around {fault}{share}"


def _faults(w: Witness) -> list[dict[str, Any]]:
    faults = w.evidence.get("faults")
    return [f for f in faults if isinstance(f, dict)] if isinstance(faults, list) else []


def _names(w: Witness, kind: str, target: str, start: float) -> bool:
    return any(
        str(f.get("kind")) == kind and str(f.get("target")) == target and _num(f, "start") == start
        for f in _faults(w)
    )


def _nodes(w: Witness) -> set[str]:
    found = set()
    if isinstance(w.evidence.get("node"), str):
        found.add(w.evidence["node"])
    for d in w.evidence.get("deliveries") or ():
        if isinstance(d, dict) and isinstance(d.get("node"), str):
            found.add(d["node"])
    return found


def _num(record: dict[str, Any], key: str) -> float:
    value = record.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def _list(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _natural(name: str) -> tuple[str, int]:
    head = name.rstrip("0123456789")
    tail = name[len(head) :]
    return head, int(tail) if tail else -1
