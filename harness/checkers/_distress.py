"""Harness distress: where the load generator (or the box under it) was too slow to judge timing.

A timing check (rejoin, delivery, latency, availability) blames the server for something that
did not happen in time. That is only fair while the harness itself kept time: a client whose
event loop fell two seconds behind misses its own heartbeat deadline, reads a broadcast late or
never (its socket timed out), and publishes in bursts. So from the `load` ops
(`harness.infra.gauge`) and the symptoms in the history this module finds *distress windows*:

* the load generator fell behind: a process's event loop woke `LAG_LIMIT` or more late, or a
  publisher sent `PUBLISH_LAG_LIMIT` or more behind its schedule;
* the machine was saturated while clients showed symptoms: CPU pressure (PSI "some", the share of
  time a runnable task waited for a CPU) of `STALL_LIMIT` or more, or the CPUs `BUSY_LIMIT`
  busy, while publishes timed out or heartbeats went unanswered with no fault active. Symptoms
  alone are not distress: a server that stops answering on an idle box is a finding, not noise.

`temper` then decides each timing check: violations that all fall in distress windows (widened by
`MARGIN`) make it `unknown` with the reason, never `invalid`; a pass over a workload that was in
distress for `SHARE_LIMIT` of its span or more is `unknown` too (the load asked for was not the
load applied). Safety checks (duplicates, phantoms, order, durability) do not depend on timing
and are left alone. The thresholds and how they were calibrated are in the README (section
"Trusting a verdict").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..history import Op, workload_clock
from ..witness import Witness
from ._facts import Distress, Facts
from ._result import CheckResult
from ._scan import facts_of

LAG_LIMIT = 0.5  # s: loop lag of one sampling period
PUBLISH_LAG_LIMIT = 1.0  # s: a publisher behind its schedule
STALL_LIMIT = 0.25  # share of wall time some runnable task waited for a CPU
BUSY_LIMIT = 0.97  # share of CPU time busy, where the kernel has no pressure figures
MARGIN = 2.0  # s a window is widened by on each side when it judges a witness
SHARE_LIMIT = 0.2  # a pass over a workload this much in distress is unknown
SYMPTOM_REACH = 5.0  # s before a heartbeat timeout that its cause may lie
SERVER_SHARE = 0.5  # the nodes' CPU, of the machine's, past which they are named as the cause
# What to do about each cause found; the one place distress advice is composed (`advice`).
ADVICE = {
    "load": "lower `clients.count` or `workload.rate`, or raise `clients.workers`",
    "descriptors": (
        "{process} ran out of file descriptors ({errors} times in {log}): connections failed"
        " in the harness, not in the server; raise that process's limit (`ulimit -n`,"
        " LimitNOFILE=) or lower clients.count"
    ),
    "server": (
        "the server's nodes had the CPU ({server:.1f} of {cpus:g} CPUs, the harness"
        " {harness:.1f}): the server was saturated, not the load generator; give the nodes"
        " more CPU or lower the load"
    ),
}


def advice(causes: dict[str, dict[str, Any]]) -> str:
    """The advice for the causes found (`ADVICE`), in one sentence: a process of the harness out
    of descriptors, then the server's saturation, replace the load generator's advice (lowering
    the load helps, but the load generator was not at fault)."""
    if "descriptors" in causes:
        return ADVICE["descriptors"].format(**causes["descriptors"])
    if "server" in causes:
        return ADVICE["server"].format(**causes["server"])
    return ADVICE["load"]


# the processes the harness runs for itself; a node out of descriptors is the server's finding
HARNESS_PROCESSES = ("toxiproxy", "redis")


def distress_of(facts: Facts) -> tuple[Distress, ...]:
    """The merged windows where the harness could not keep time, each with its reason; a
    process of the harness's own that ran out of descriptors makes the whole run one (when it
    ran out is not known)."""
    mine = [op for op in facts.exhausted if _harness_process(op)]
    if mine:
        worst = max(mine, key=lambda op: _number(op.value.get("errors")))
        cause = {
            "process": str(worst.value.get("process"))[:40],
            "errors": int(_number(worst.value.get("errors"))),
            "log": str(worst.value.get("log"))[:80],
        }
        reason = advice({"descriptors": cause})
        return (Distress(facts.start, facts.end, reason, {"exhausted": cause}),)
    symptoms = [s for s in _symptom_spans(facts) if not _in_fault(facts, s[0], s[1])]
    periods: list[tuple[float, float, dict[str, Any]]] = []
    for op in facts.load:
        if op.time > facts.end + MARGIN:
            continue
        span = _number(op.value.get("span"), 1.0)
        start = op.time - span
        figures: dict[str, Any] = {}
        lag, publish_lag = _number(op.value.get("lag")), _number(op.value.get("publish_lag"))
        if lag >= LAG_LIMIT:
            figures["loop_lag"] = {op.process: lag}
        if publish_lag >= PUBLISH_LAG_LIMIT:
            figures["publish_lag"] = {op.process: publish_lag}
        stall, busy = op.value.get("cpu_stall"), op.value.get("cpu_busy")
        saturated = (isinstance(stall, int | float) and stall >= STALL_LIMIT) or (
            stall is None and isinstance(busy, int | float) and busy >= BUSY_LIMIT
        )
        if saturated:
            hit = [s for s in symptoms if s[0] <= op.time and s[1] >= start]
            if hit:
                figures["cpu_stall"] = stall
                figures["cpu_busy"] = busy
        if figures:
            periods.append((start, op.time, figures))
    return tuple(_describe(facts, group, symptoms) for group in _merge(periods))


def explain(history: Sequence[Op]) -> str | None:
    """Why a run that failed before its checks (say, clients that did not all join in time)
    may have failed: the first distress window of its history, if any."""
    windows = distress_of(facts_of(workload_clock(history)))
    return None if not windows else f"meanwhile the harness was in distress: {windows[0].reason}"


def temper(result: CheckResult, facts: Facts) -> CheckResult:
    """A timing check's verdict, given the distress windows in `facts`."""
    windows = facts.distress
    if not windows or result.vacuous:
        return result
    reason = windows[0].reason if len(windows) == 1 else _several(windows)
    if result.validity == "invalid":
        inside = [w for w in result.witnesses if _witness_in(w, windows)]
        if len(inside) < len(result.witnesses):
            outside = [w for w in result.witnesses if not _witness_in(w, windows)]
            summary = {**result.summary, "violations_in_distress": len(inside)}
            return replace(result, summary=summary, witnesses=(*outside, *inside))
        return replace(
            result,
            validity="unknown",
            summary={**result.summary, "violations_in_distress": len(inside)},
            error=f"every violation ({len(inside)}) fell where the harness could not judge: "
            f"{reason}",
        )
    begin = facts.workload if facts.workload is not None else facts.start
    span = max(facts.end - begin, 1e-9)
    covered = sum(max(0.0, min(w.end, facts.end) - max(w.start, begin)) for w in windows)
    if covered / span < SHARE_LIMIT:
        return result
    behind = f"the harness was behind for {covered:.1f} s of the {span:.1f} s workload"
    if result.validity == "valid":
        return replace(
            result, validity="unknown", error=f"{behind}, so a pass means little: {reason}"
        )
    return replace(result, error=f"{result.error}; and {behind}: {reason}")


def _symptom_spans(facts: Facts) -> list[tuple[float, float, str]]:
    """(from, to, what) for each publish that timed out and each unanswered heartbeat."""
    spans = []
    for op in facts.symptoms:
        if op.f == "publish":
            published = facts.publishes.get(str(op.value.get("id")))
            since = published.invoked if published is not None else op.time - SYMPTOM_REACH
            spans.append((since, op.time, "publish timeouts"))
        else:
            spans.append((op.time - SYMPTOM_REACH, op.time, "heartbeat timeouts"))
    return spans


def _in_fault(facts: Facts, start: float, end: float) -> bool:
    return any(w.overlaps(start, end, MARGIN) for w in facts.windows)


def _merge(
    periods: list[tuple[float, float, dict[str, Any]]],
) -> list[list[tuple[float, float, dict[str, Any]]]]:
    groups: list[list[tuple[float, float, dict[str, Any]]]] = []
    for period in sorted(periods, key=lambda p: p[0]):
        if groups and period[0] <= max(p[1] for p in groups[-1]) + MARGIN:
            groups[-1].append(period)
        else:
            groups.append([period])
    return groups


def _describe(
    facts: Facts,
    group: list[tuple[float, float, dict[str, Any]]],
    symptoms: list[tuple[float, float, str]],
) -> Distress:
    start, end = min(p[0] for p in group), max(p[1] for p in group)
    loop: dict[str, float] = {}
    publish: dict[str, float] = {}
    stall = busy = 0.0
    for _, _, period in group:
        for process, lag in period.get("loop_lag", {}).items():
            loop[process] = max(loop.get(process, 0.0), lag)
        for process, lag in period.get("publish_lag", {}).items():
            publish[process] = max(publish.get(process, 0.0), lag)
        stall = max(stall, _number(period.get("cpu_stall")))
        busy = max(busy, _number(period.get("cpu_busy")))
    where = f"between {start:.1f} s and {end:.1f} s"
    parts = []
    worst = max([*loop.values(), *publish.values()], default=0.0)
    if loop or publish:
        who = ", ".join(sorted({*loop, *publish}))
        parts.append(f"the load generator ({who}) fell {worst:.1f} s behind {where}")
    timed_out = [s for s in symptoms if s[1] >= start - MARGIN and s[0] <= end + MARGIN]
    publishes = sum(s[2] == "publish timeouts" for s in timed_out)
    heartbeats = len(timed_out) - publishes
    if stall or busy:
        pressure = f"{stall:.0%} CPU pressure" if stall else f"{busy:.0%} CPU busy"
        parts.append(
            f"the machine was saturated ({pressure}) {where} while {publishes} publishes and "
            f"{heartbeats} heartbeats timed out with no fault active"
        )
    causes: dict[str, dict[str, float]] = {"load": {}}
    cpu = _cpu_use(facts, start, end)
    if cpu is not None:
        server, harness, cpus = cpu
        if server >= SERVER_SHARE * cpus and server > harness:
            causes["server"] = {"server": server, "harness": harness, "cpus": cpus}
    figures: dict[str, Any] = {
        "loop_lag": {k: round(v, 3) for k, v in sorted(loop.items())},
        "publish_lag": {k: round(v, 3) for k, v in sorted(publish.items())},
        "cpu_stall": round(stall, 3) if stall else None,
        "cpu_busy": round(busy, 3) if busy else None,
        "publish_timeouts": publishes,
        "heartbeat_timeouts": heartbeats,
    }
    if cpu is not None:
        figures.update(cpu_server=round(cpu[0], 3), cpu_harness=round(cpu[1], 3), cpus=cpu[2])
    return Distress(start, end, "; ".join(parts) + f"; {advice(causes)}", figures)


def _cpu_use(facts: Facts, start: float, end: float) -> tuple[float, float, float] | None:
    """The most CPU the server's nodes used in a period between `start` and `end`, and the
    harness's processes (each one's most, added up), with the machine's CPUs; None when the
    history does not have the figures."""
    server = 0.0
    mine: dict[str, float] = {}
    cpus = 0.0
    for op in facts.load:
        span = _number(op.value.get("span"), 1.0)
        if op.time < start or op.time - span > end:
            continue
        server = max(server, _number(op.value.get("cpu_server")))
        mine[op.process] = max(mine.get(op.process, 0.0), _number(op.value.get("cpu_self")))
        cpus = max(cpus, _number(op.value.get("cpus")))
    if not cpus:
        return None
    return server, sum(mine.values()), cpus


def _several(windows: tuple[Distress, ...]) -> str:
    total = sum(w.end - w.start for w in windows)
    return (
        f"the harness was in distress {len(windows)} times ({total:.1f} s in all), first: "
        f"{windows[0].reason}"
    )


def _witness_in(witness: Witness, windows: tuple[Distress, ...]) -> bool:
    """Whether the witness's own time span touches a distress window (widened by MARGIN)."""
    if witness.time is None:
        return True  # a figure over the whole run: the distress may have made it
    times = [witness.time]
    for key in ("deadline", "acknowledged_at", "published_at", "rejoined_at"):
        value = witness.evidence.get(key)
        if isinstance(value, int | float):
            times.append(float(value))
    start, end = min(times), max(times)
    return any(start <= w.end + MARGIN and end >= w.start - MARGIN for w in windows)


def _harness_process(op: Op) -> bool:
    process = str(op.value.get("process", ""))
    return any(process == p or process.startswith(f"{p}.") for p in HARNESS_PROCESSES)


def _number(value: object, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) else default


def load_figures(ops: list[Op]) -> dict[str, dict[str, float]]:
    """Per process, the worst of each `load` figure over the run (for results.json)."""
    worst: dict[str, dict[str, float]] = {}
    for op in ops:
        mine = worst.setdefault(op.process, {})
        for key in ("lag", "publish_lag", "backlog", "cpu_busy", "cpu_stall"):
            value = op.value.get(key)
            if isinstance(value, int | float):
                mine[key] = max(mine.get(key, 0.0), float(value))
    return worst
