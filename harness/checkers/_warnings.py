"""Warnings: reasons a pass may mean less than it says, Jepsen-style.

A check with nothing to judge is not a warning but a verdict (vacuous: unknown). These are the
weaker cases that leave a pass standing but should reach the reader wherever the verdict does
(terminal, JUnit, report): no fault at all, faults meant to cut connections that cut none, a
check that had nothing outside the fault windows, harness distress that did not change a verdict,
a default check the scenario turned off, and what the cluster's set-up noticed (a stale node
image, containers a dead run left behind).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..faults import DISRUPTIVE
from ..history import Op
from ._facts import Facts
from ._result import CheckResult


def exited(op: Op) -> str:
    """ "n1 exited by itself at 2.3 s with status 1": a node that no fault stopped."""
    status = op.value.get("status")
    how = (
        f"killed by signal {-status}"
        if isinstance(status, int) and status < 0
        else f"with status {status}"
    )
    return f"{op.value.get('node')} exited by itself at {op.time:.1f} s {how} (no fault stopped it)"


def warnings_of(
    facts: Facts, results: Sequence[CheckResult], off: Sequence[str] = ()
) -> tuple[str, ...]:
    warnings: list[str] = [exited(op) for op in facts.node_exits]
    warnings += facts.notices  # set-up: a stale image, a dead run's leftovers
    for op in facts.exhausted:
        warnings.append(
            f"{op.value.get('process')} ran out of file descriptors: {op.value.get('log')} says"
            f" so {op.value.get('errors')} times"
        )
    for name in off:
        warnings.append(f"{name} was turned off (checks.{name}: off): this run does not judge it")
    if not facts.windows:
        warnings.append("no fault was injected: this run shows steady-state behaviour only")
    for w in facts.windows:
        if w.link_bytes == 0:
            warnings.append(
                f"{w.id} `{w.kind} {w.target}` cut nothing: no byte ever crossed its links"
                " through Toxiproxy (the nodes' traffic does not pass through the proxies, as a"
                " cluster on Erlang distribution or an app that does not read {pubsub} does);"
                " its window excuses no delivery"
            )
        elif w.packets_dropped == 0:
            warnings.append(
                f"{w.id} `{w.kind} {w.target}` cut nothing: its packet rules dropped no packet"
                " (nothing was sent between those nodes in its window); its window excuses no"
                " delivery"
            )
        elif w.broadcasts_taken == 0:
            warnings.append(
                f"{w.id} `{w.kind} {w.target}` took no broadcast (its rules matched nothing"
                " they could take); its window excuses no delivery"
            )
    kinds = {w.kind for w in facts.windows}
    if kinds & DISRUPTIVE and not facts.losses:
        warnings.append(
            f"faults ran ({', '.join(sorted(kinds & DISRUPTIVE))}) but no client lost its"
            " connection: reconnect and rejoin were not exercised"
        )
    by_name = {r.name: r for r in results}
    rejoin = by_name.get("rejoin")
    if rejoin is not None and rejoin.summary.get("losses") == 0 and facts.windows:
        warnings.append(
            "rejoin: no client lost a connection or channel, so only the end state was judged"
        )
    changed = {r.name for r in results if r.summary.get("violations_in_distress")}
    if facts.distress:
        first = facts.distress[0]
        also = f" (and {len(facts.distress) - 1} more)" if len(facts.distress) > 1 else ""
        warnings.append(
            f"harness distress {first.start:.1f}-{first.end:.1f} s{also}: {first.reason}"
            + (f"; set aside violations of {', '.join(sorted(changed))}" if changed else "")
        )
    return tuple(warnings)
