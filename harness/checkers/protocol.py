"""`protocol`: the server speaks Phoenix Channels; every frame a client got could be read.

A frame that is not the protocol (not JSON, JSON beyond the foreign-JSON rule of
`harness.foreign`: too deep, NaN, a lone surrogate; not a five-element array; a `phx_reply`
without a status) is recorded by the client as a `bad_frame` op and dropped, as phoenix.js drops
what it cannot decode. A real Phoenix server never sends one, so each is a finding, with the
client, its node, why and the frame's first bytes. Vacuous when no client ever joined (no frame
was read that mattered).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..witness import Witness
from ._check import Check, Options, count
from ._facts import Facts
from ._result import KEPT, CheckResult, vacuous, verdict


def protocol(facts: Facts, options: Options) -> CheckResult:
    if not facts.memberships and not facts.bad_frames:
        return vacuous("protocol", "no client joined a topic")
    witnesses = []
    for op in facts.bad_frames[:KEPT]:
        v = op.value
        witnesses.append(
            Witness(
                f"{op.process} got a frame from {op.node or 'its node'} that is not Phoenix:"
                f" {v.get('error')}",
                op.time,
                op.process,
                None,
                {
                    "node": op.node,
                    "error": v.get("error"),
                    "first_bytes": v.get("head"),
                    "size": v.get("size"),
                    "faults": facts.windows_near(op.time, op.time, 1.0),
                },
            )
        )
    summary = {"bad_frames": len(facts.bad_frames)}
    return verdict("protocol", witnesses, summary, len(facts.bad_frames))


def _protocol_says(s: Mapping[str, Any]) -> str:
    bad = int(s.get("bad_frames", 0))
    return "every frame was Phoenix" if not bad else f"{count(bad)} frames that are not Phoenix"


PROTOCOL = Check(
    "protocol",
    protocol,
    Options,
    "every frame the server sent is a Phoenix Channels frame the client could read",
    nouns=("frame that is not Phoenix", "frames that are not Phoenix"),
    says=_protocol_says,
)
