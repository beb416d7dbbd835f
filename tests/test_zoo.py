"""The zoo: each deliberate defect is caught by its checker, and the correct server never is.

Every row is a real defect (`server_under_test/_bugs.py`, plus one client defect) run in the
short zoo scenario that provokes it. The checker named must report invalid with a witness that
names the symptom; the correct server must pass every check over 3 seeds of every zoo scenario
(and every library scenario, `tests/test_library.py`, at its own seed).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.report import headline
from harness.run.runner import RunOptions, run_scenario
from harness.scenario import AppSpec, parse_scenario

ZOO = Path(__file__).resolve().parent.parent / "scenarios" / "zoo"

MATRIX = [
    # defect, scenario, the checker that must catch it, a regular expression its first witness matches
    ("duplicate_after_rejoin", "kill", "at_most_once", r"delivered \d+ times"),
    ("resend_after_reconnect", "partition", "at_most_once", r"delivered \d+ times"),
    ("forget_remote_interest_after_restart", "kill", "delivery", "never received"),
    ("no_close_on_duplicate_join", "duplicate-join", "at_most_once", r"delivered \d+ times"),
    ("ack_before_persist", "kill", "durability", "acknowledged"),
    ("deliver_after_leave", "leave", "no_phantom", "after it had left"),
    ("reorder_publisher", "steady", "order", "was acknowledged before"),
    ("no_link_restore_after_kill", "kill", "delivery", "never received"),
    ("redis_echo", "redis", "at_most_once", r"delivered \d+ times"),
    ("duplicate_after_rejoin", "redis", "at_most_once", r"delivered \d+ times"),
    ("client:no_rejoin", "kill", "rejoin", "was not joined again"),
    # the catch-up's own defects (`server_under_test/_catchup.py`), under at_least_once
    ("catch_up_off_by_one", "catch-up", "delivery", "never got"),
    ("catch_up_from_memory", "catch-up", "delivery", "never got"),
    ("catch_up_subscribe_late", "catch-up", "delivery", "never got"),
    ("catch_up_no_dedupe", "catch-up", "at_most_once", r"delivered \d+ times"),
    ("catch_up_capped", "catch-up", "delivery", "never got"),
]


def load(name: str):
    path = ZOO / f"{name}.yaml"
    return parse_scenario(path.read_text(), str(path))


@pytest.mark.parametrize(
    ("defect", "scenario", "check", "symptom"), MATRIX, ids=[f"{r[0]}@{r[1]}" for r in MATRIX]
)
async def test_each_defect_is_caught(tmp_path, defect, scenario, check, symptom):
    s = load(scenario)
    if defect == "client:no_rejoin":
        s = s.model_copy(update={"clients": s.clients.model_copy(update={"rejoin": False})})
    else:
        s = s.model_copy(update={"cluster": s.cluster.model_copy(update={"bugs": (defect,)})})
    result = await run_scenario(s, RunOptions(out=tmp_path))
    assert result.error is None, result.error
    by_name = {r.name: r for r in result.results}
    assert by_name[check].validity == "invalid", by_name[check].summary
    assert re.search(symptom, by_name[check].witnesses[0].problem), by_name[check].witnesses[0]
    assert result.exit_code == 1
    # the first screen's sentence names the symptom and the fault around it
    line = headline(by_name[check])
    assert line is not None
    assert line.split(",")[0].split(";")[0].split()[0].isdigit(), line  # "N duplicate ..."
    around = AROUND.get((scenario, check))
    if around is not None:
        assert around in line, line


# The fault each zoo defect's witnesses sit next to, as the sentence must name it
AROUND = {
    ("kill", "at_most_once"): "`kill n2`",
    ("kill", "durability"): "`kill n2`",
    ("partition", "at_most_once"): "`partition",
    ("leave", "no_phantom"): "`client_leave",
    ("redis", "at_most_once"): "`",
}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    "scenario", ["kill", "partition", "duplicate-join", "leave", "steady", "redis", "catch-up"]
)
async def test_the_correct_server_is_never_flagged(tmp_path, scenario, seed):
    result = await run_scenario(load(scenario), RunOptions(out=tmp_path, seed=seed))
    assert result.error is None, result.error
    flagged = {
        r.name: (r.validity, r.error, [w.problem for w in r.witnesses[:3]])
        for r in result.results
        if r.validity != "valid"
    }
    assert not flagged, f"{scenario} seed {seed}: {flagged} (run dir {result.run_dir})"
    assert result.exit_code == 0


# Defects under another app's contract (`--app chat`, see scenarios/chat.yaml): one per checker
# whose defect does not live in the rooms app itself (ack_before_persist and reorder_publisher
# do), and the Redis adapter's; what differs there is the contract (events, id path, read), not
# the checkers, which the matrix above covers whole.
CHAT_ROWS = {
    ("duplicate_after_rejoin", "kill"),
    ("forget_remote_interest_after_restart", "kill"),
    ("deliver_after_leave", "leave"),
    ("client:no_rejoin", "kill"),
    ("redis_echo", "redis"),
}
CHAT_MATRIX = [row for row in MATRIX if (row[0], row[1]) in CHAT_ROWS]
CHAT = parse_scenario((ZOO.parent / "chat.yaml").read_text(), "chat.yaml")


def under_chat(s):
    """A zoo scenario spoken in the chat contract: chat:* topics, its socket, events and read,
    the node command of the chat app (defects passed through {bug_args})."""
    topics = tuple(t.replace("room:", "chat:") for t in s.clients.topics)
    cluster = s.cluster.model_copy(
        update={"command": CHAT.cluster.command, "env": CHAT.cluster.env}
    )
    app: AppSpec = CHAT.app
    return s.model_copy(
        update={
            "cluster": cluster,
            "clients": s.clients.model_copy(update={"topics": topics}),
            "app": app,
        }
    )


@pytest.mark.parametrize(
    ("defect", "scenario", "check", "symptom"),
    CHAT_MATRIX,
    ids=[f"{r[0]}@{r[1]}" for r in CHAT_MATRIX],
)
async def test_each_defect_is_caught_under_another_contract(
    tmp_path, defect, scenario, check, symptom
):
    s = under_chat(load(scenario))
    if defect == "client:no_rejoin":
        s = s.model_copy(update={"clients": s.clients.model_copy(update={"rejoin": False})})
    else:
        s = s.model_copy(update={"cluster": s.cluster.model_copy(update={"bugs": (defect,)})})
    result = await run_scenario(s, RunOptions(out=tmp_path))
    assert result.error is None, result.error
    by_name = {r.name: r for r in result.results}
    assert by_name[check].validity == "invalid", by_name[check].summary
    assert re.search(symptom, by_name[check].witnesses[0].problem), by_name[check].witnesses[0]
    assert result.exit_code == 1


@pytest.mark.parametrize("scenario", ["kill", "partition", "leave", "redis"])
async def test_the_correct_server_is_never_flagged_under_another_contract(tmp_path, scenario):
    result = await run_scenario(under_chat(load(scenario)), RunOptions(out=tmp_path))
    assert result.error is None, result.error
    flagged = {r.name: (r.validity, r.error) for r in result.results if r.validity != "valid"}
    assert not flagged, f"{scenario} (chat): {flagged} (run dir {result.run_dir})"


# Message-level faults (`harness.faults.broadcasts`, the broadcast proxy) on both PubSubs: what
# each must do to the verdicts. A drop is a loss inside the fault window (never a duplicate), a
# duplicate is caught by at_most_once unless the app deduplicates (the `dedupe` join parameter,
# a handle_out intercept), a reorder by order, a delay is only latency.
BROADCAST_ROWS = [
    # kind (and its parameters), zoo scenario, join payload, the check that fails (or None)
    ("drop_broadcast", "broadcast", None, None),
    ("drop_broadcast", "broadcast-redis", None, None),
    ("duplicate_broadcast", "broadcast", None, "at_most_once"),
    ("duplicate_broadcast", "broadcast-redis", None, "at_most_once"),
    ("duplicate_broadcast", "broadcast", "{dedupe: true}", None),
    ("reorder_broadcast", "broadcast", None, "order"),
    ("reorder_broadcast", "broadcast-redis", None, "order"),
    ("delay_broadcast, delay: 200ms", "broadcast", None, None),
    ("delay_broadcast, delay: 200ms", "broadcast-redis", None, None),
]


@pytest.mark.parametrize(
    ("kind", "scenario", "join", "fails"),
    BROADCAST_ROWS,
    ids=[f"{r[0].split(',')[0]}@{r[1]}{'+dedupe' if r[2] else ''}" for r in BROADCAST_ROWS],
)
async def test_message_level_faults_say_what_they_should(tmp_path, kind, scenario, join, fails):
    text = (ZOO / f"{scenario}.yaml").read_text()
    text = text.replace("kind: drop_broadcast, every: 3", f"kind: {kind}, every: 3")
    if join:
        text = text.replace("checks:", f"app:\n  join: {{payload: {join}}}\nchecks:")
    result = await run_scenario(parse_scenario(text, f"{scenario}.yaml"), RunOptions(out=tmp_path))
    assert result.error is None, result.error
    by_name = {r.name: r for r in result.results}
    stop = [
        line
        for line in (result.run_dir / "history.jsonl").read_text().splitlines()
        if '"f":"fault"' in line and '"type":"ok"' in line and "broadcast" in line
    ]
    assert stop  # the fault took broadcasts, and says so
    assert '"broadcasts_taken":' in stop[0]
    assert '"broadcasts_taken":0' not in stop[0]
    if kind == "drop_broadcast":
        assert by_name["delivery"].summary["lost_inside_faults"] > 0
        assert by_name["delivery"].summary["lost_outside_faults"] == 0
    flagged = {n for n, r in by_name.items() if r.validity != "valid"}
    assert flagged == ({fails} if fails else set()), {n: by_name[n].summary for n in flagged}
    if fails == "at_most_once":
        assert re.search(r"delivered 2 times", by_name[fails].witnesses[0].problem)
    if fails == "order":
        assert "was acknowledged before" in by_name[fails].witnesses[0].problem
    assert result.exit_code == (1 if fails else 0)
