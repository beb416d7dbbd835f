"""Final reads: after the heal, ask a node for every room's stored messages (`history`).

The reader talks to a node directly (not through a proxy), once per topic, and records `read`
invoke/ok/fail ops with the ids it got, which the durability checker compares with the
acknowledged publishes.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from .._clock import RunClock
from ..history import Op, Recorder
from ..phoenix import Join, ProtocolError, Push, Reply, Role, V2JSONCodec
from ._client import Endpoint

READ_TIMEOUT = 10.0


async def read_rooms(
    nodes: Sequence[Endpoint], topics: Sequence[str], recorder: Recorder, clock: RunClock
) -> None:
    codec = V2JSONCodec()
    for topic in topics:
        recorder.record(Op(clock.now(), "reader", "invoke", "read", {"topic": topic}))
        error = "no node answered"
        for node in nodes:
            try:
                with trio.fail_after(READ_TIMEOUT):
                    async with open_websocket_url(f"{node.url}/websocket?vsn=2.0.0") as ws:
                        await ws.send_message(codec.encode(Join(topic, {}, "1", "1")))
                        await ws.send_message(codec.encode(Push(topic, "history", {}, "2", "1")))
                        while True:
                            event = codec.decode(await ws.get_message(), sender=Role.SERVER)
                            if (
                                isinstance(event, Reply)
                                and event.ref == "1"
                                and event.status != "ok"
                            ):
                                raise ProtocolError(f"join refused: {event.response}")
                            if isinstance(event, Reply) and event.ref == "2":
                                messages = event.response.get("messages", [])
                                ids = [m.get("id") for m in messages if isinstance(m, dict)]
                                recorder.record(
                                    Op(
                                        clock.now(),
                                        "reader",
                                        "ok",
                                        "read",
                                        {"topic": topic, "ids": ids},
                                        node.name,
                                    )
                                )
                                break
                break
            except (
                OSError,
                HandshakeError,
                ConnectionClosed,
                ProtocolError,
                trio.TooSlowError,
            ) as exc:
                error = f"{node.name}: {type(exc).__name__}: {exc}"
        else:
            recorder.record(
                Op(clock.now(), "reader", "fail", "read", {"topic": topic, "error": error})
            )
