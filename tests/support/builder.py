"""A tiny builder of hand-written histories for checker tests."""

from __future__ import annotations

from typing import Any

from harness.history import Op, merge


class HistoryBuilder:
    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.now = 0.0
        self.connected: set[str] = set()

    def at(self, time: float) -> HistoryBuilder:
        self.now = time
        return self

    def op(
        self, process: str, type_: str, f: str, node: str | None = "n1", **value: Any
    ) -> HistoryBuilder:
        self.ops.append(Op(self.now, process, type_, f, value, node))  # type: ignore[arg-type]
        return self

    def connect(self, client: str, node: str = "n1", ok: bool = True) -> HistoryBuilder:
        """A socket opened (ok) or a connect attempt that failed (reported as a disconnect too,
        as phoenix.js reports it)."""
        self.op(client, "invoke", "connect", node, url=f"ws://{node}")
        if ok:
            self.connected.add(client)
            return self.op(client, "ok", "connect", node, url=f"ws://{node}")
        self.op(client, "fail", "connect", node, url=f"ws://{node}", error="refused")
        return self.op(client, "info", "disconnect", node, code=None, reason="refused")

    def join(
        self, client: str, topic: str, jr: str = "1", ok: bool = True, node: str = "n1"
    ) -> HistoryBuilder:
        """Join (connecting first if the client has no open socket)."""
        if client not in self.connected:
            self.connect(client, node)
        self.op(client, "invoke", "join", node, topic=topic, join_ref=jr)
        if ok:
            self.op(client, "ok", "join", node, topic=topic, join_ref=jr)
        return self

    def publish(
        self,
        publisher: str,
        topic: str,
        mid: str,
        seq: int | None = None,
        outcome: str = "ok",
        took: float = 0.01,
    ) -> HistoryBuilder:
        value = {"topic": topic, "id": mid, **({"seq": seq} if seq is not None else {})}
        self.op(publisher, "invoke", "publish", **value)
        if outcome != "invoke":
            self.now += took
            self.op(publisher, outcome, "publish", **value)
        return self

    def recv(
        self,
        client: str,
        topic: str,
        mid: str,
        jr: str | None = None,
        node: str = "n1",
        event: str = "new_msg",
    ) -> HistoryBuilder:
        return self.op(client, "ok", "recv", node, topic=topic, event=event, id=mid, join_ref=jr)

    def disconnect(self, client: str, code: int | None = 1006) -> HistoryBuilder:
        self.connected.discard(client)
        return self.op(client, "info", "disconnect", code=code, reason="", by_client=False)

    def channel_error(self, client: str, topic: str, jr: str = "1") -> HistoryBuilder:
        return self.op(client, "info", "channel_error", topic=topic, join_ref=jr, reason={})

    def channel_close(self, client: str, topic: str, jr: str = "1") -> HistoryBuilder:
        return self.op(client, "ok", "channel_close", topic=topic, join_ref=jr, reason={})

    def fault(
        self,
        fid: str,
        kind: str,
        target: str,
        start: float,
        stop: float | None,
        **figures: int,
    ) -> HistoryBuilder:
        """A fault window; `figures` as the nemesis records them when it stops (link_bytes...)."""
        saved = self.now
        self.at(start).op("nemesis", "invoke", "fault", None, id=fid, kind=kind, target=target)
        if stop is not None:
            extra = {"figures": figures} if figures else {}
            self.at(stop).op(
                "nemesis", "ok", "fault", None, id=fid, kind=kind, target=target, **extra
            )
        self.now = saved
        return self

    def load(
        self,
        process: str = "swarm0",
        lag: float = 0.005,
        publish_lag: float = 0.0,
        **machine: float,
    ) -> HistoryBuilder:
        """One sample of the harness's own load (`harness.infra.gauge`), ending now."""
        return self.op(
            process, "info", "load", None, span=1.0, lag=lag, publish_lag=publish_lag, **machine
        )

    def heal(self) -> HistoryBuilder:
        return self.op("nemesis", "ok", "heal", None)

    def read(self, topic: str, ids: list[str]) -> HistoryBuilder:
        self.op("reader", "invoke", "read", topic=topic)
        return self.op("reader", "ok", "read", topic=topic, ids=ids)

    def history(self) -> list[Op]:
        return merge([self.ops])
