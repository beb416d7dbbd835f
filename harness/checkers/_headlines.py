"""One sentence per check that did not hold: what happened, to whom, around which fault.

A reader of a failed run should not have to work out the cause from dots on a timeline. From a
check's witnesses alone (and the fault windows each witness carries) this says e.g.

    at_most_once: 361 messages delivered again; the 20 shown: to 6 clients (c2, c4, c6, ...) of n2,
    each 0.8 s to 0.9 s after `kill n2` ended (3.0 s to 4.7 s)

Counts come from the check's summary (`violations`: every witness, not only the 20 kept in
results.json); clients, nodes and faults from the witnesses at hand, said as "the N shown" when
they are a sample. An `unknown` check's sentence is its reason (the harness's own distress,
nothing to judge). Each check's words (the noun of one violation and of several) are its own
(`Check.nouns`, beside the check). Pure: the report, the terminal, JUnit and the pytest plugin
print the same sentence, and `named` gives the clients it names in its order, so the report's
drill-down opens on the same clients.

`figures` is a check's summary in words with units (`Check.says`), for the terminal and the
report alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from ..vocabulary import natural
from ..witness import Witness
from ._registry import CHECKS
from ._result import CheckResult

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
    check = CHECKS.get(result.name)
    nouns = check.nouns if check is not None else ("violation", "violations")
    one, many = nouns(result.summary) if callable(nouns) else nouns
    what = f"{count} {one if count == 1 else many}"
    who = _who(result.witnesses, "for" if check is not None and check.for_clients else "to")
    when = _reforming(result.witnesses) or _when(result.witnesses)
    facts = ", ".join(p for p in (who, when) if p)
    if count > len(result.witnesses):
        return f"{what}; the {len(result.witnesses)} shown: {facts}"
    return f"{what}, {facts}"


def named(result: CheckResult) -> list[str]:
    """Every client the check's witnesses name, in the order its sentence names them."""
    return named_in(result.witnesses)


def named_in(witnesses: Sequence[Witness]) -> list[str]:
    return sorted({w.client for w in witnesses if w.client}, key=natural)


def figures(result: CheckResult) -> str:
    """The check's summary in words with units (its `Check.says`), or its raw figures."""
    check = CHECKS.get(result.name)
    if check is not None and check.says is not None:
        return check.says(result.summary)
    return ", ".join(f"{k}={v}" for k, v in result.summary.items() if not isinstance(v, dict))


def _who(witnesses: Sequence[Witness], to: str) -> str:
    clients = named_in(witnesses)
    if not clients:
        topics = sorted({w.topic for w in witnesses if w.topic})
        return f"on {_list(topics)}" if topics else ""
    nodes = sorted({n for w in witnesses for n in _nodes(w)}, key=natural)
    named = ", ".join(clients[:NAMED]) + (", ..." if len(clients) > NAMED else "")
    whom = f"{to} {len(clients)} client{'s' if len(clients) != 1 else ''} ({named})"
    if len(clients) == 1:
        whom = f"{to} {clients[0]}"
    return f"{whom} of {_list(nodes)}" if nodes else whom


def _when(witnesses: Sequence[Witness]) -> str:
    """Relative to the fault most witnesses sit next to (for each witness, the last fault that
    began before it, else the first after it), or "outside every fault window" when none does."""
    near: Counter[tuple[str, str, float, float]] = Counter()
    times: dict[tuple[str, str, float, float], list[float]] = {}
    for w in witnesses:
        key = _nearest(w)
        if key is not None:
            near[key] += 1
            if w.time is not None:
                times.setdefault(key, []).append(w.time)
    if not near:
        return "outside every fault window"
    key, hits = near.most_common(1)[0]
    kind, target, start, end = key
    name, window = f"`{kind} {target}`", f"({start:.1f} s to {end:.1f} s)"
    fault = f"{name} {window}"
    share = "" if hits == len(witnesses) else f" ({hits} of {len(witnesses)})"
    at = times.get(key, [])
    if not at:
        return f"around {fault}{share}"
    if all(t < start for t in at):
        before = [start - t for t in at]
        return f"each {_span(before)} before {fault}{share}"
    if all(start <= t <= end for t in at):
        return f"during {fault}{share}"
    if all(t >= end for t in at):
        return f"each {_span([t - end for t in at])} after {name} ended {window}{share}"
    return f"around {fault}{share}"


def _reforming(witnesses: Sequence[Witness]) -> str:
    """A loss published while the cluster was still re-forming after a heal (the readiness
    probe's figure, longer than `settle`): say how long it took against `settle`."""
    found: Counter[tuple[str, float | None, float, float]] = Counter()
    for w in witnesses:
        r = w.evidence.get("reforming")
        if isinstance(r, dict):
            seconds = r.get("seconds")
            found[
                (
                    str(r.get("after") or "a heal"),
                    float(seconds) if isinstance(seconds, int | float) else None,
                    _num(r, "timeout"),
                    _num(r, "settle"),
                )
            ] += 1
    if not found:
        return ""
    (after, seconds, timeout, settle), hits = found.most_common(1)[0]
    share = "" if hits == len(witnesses) else f" ({hits} of {len(witnesses)})"
    fault = after if after == "the final heal" else f"`{after}`"
    if seconds is None:
        return (
            f"published while the cluster had not re-formed after {fault} (not within {timeout:g} s"
            f" of the heal; settle is {settle:g} s){share}"
        )
    took = f"published in the {seconds:.1f} s the cluster took to re-form after {fault}"
    return f"{took} (settle is {settle:g} s){share}"


def _nearest(w: Witness) -> tuple[str, str, float, float] | None:
    keys = [
        (str(f.get("kind")), str(f.get("target")), _num(f, "start"), _num(f, "end"))
        for f in _faults(w)
    ]
    if not keys:
        return None
    if w.time is None:
        return keys[0]
    before = [k for k in keys if k[2] <= w.time]
    return max(before, key=lambda k: k[2]) if before else min(keys, key=lambda k: k[2])


def _span(values: Sequence[float]) -> str:
    low, high = f"{min(values):.1f} s", f"{max(values):.1f} s"
    return low if low == high else f"{low} to {high}"


def _faults(w: Witness) -> list[dict[str, Any]]:
    faults = w.evidence.get("faults")
    return [f for f in faults if isinstance(f, dict)] if isinstance(faults, list) else []


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
