"""A misbehaving channel server of the tests' own: the reference server's contract (room:*,
`new_msg` acknowledged and broadcast, `history` push, an HTTP read at `/api/messages`), one node,
and a switch for each way a buggy server hurts the harness (`--misbehave NAME`, repeatable).

    python -m tests.support.hostile_server --node n1 --port P [--misbehave NAME ...]

Frames: `deep_id` (deliveries whose id nests 300 deep), `deep_error` (a phx_error payload 300
deep, once per channel), `list_ids` (ids that are a list and an object), `inject` (ids with a
newline and a workflow command, terminal escapes, a lone CR and HTML), `inject_refusal` (every
join refused with such a reason), `big_id` (20 deliveries of a 1 MB id), `phantom_flood`
(ids nobody published, as fast as the socket takes them), `malformed` (72 frames that are not
Phoenix: too deep, NaN, lone surrogates, not arrays, a bad phx_reply), `cpu_burn` (two child
processes that spin, as a server burning its CPU would).
HTTP: `deep_health` (/health nests 100,000 deep), `deep_stats`, `deep_read`, `endless_read`
(the read answer never ends: 2 GB chunked), `slow_read` (a byte a second), `nan_read` (NaN and
1e400), `silent_read` (the `history` push is never answered).
Processes: `daemon` (a double-forked, setsid child that holds the listening port), `exit_after`
(exits by itself with status 1, two seconds after its first health answer).
Plain trio and wsproto, so nothing here is the reference server's code.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import trio
import wsproto
import wsproto.events as wse

from harness.phoenix import Join, Push, Role, V2JSONCodec, dumps

INJECT = "bad\n::error file=x::pwned\x1b]0;title\x07\x1b[2J\r|<b>x</b>"
BEHAVIOURS = [
    "deep_id",
    "deep_error",
    "list_ids",
    "inject",
    "inject_refusal",
    "big_id",
    "phantom_flood",
    "malformed",
    "cpu_burn",
    "deep_health",
    "deep_stats",
    "deep_read",
    "endless_read",
    "slow_read",
    "nan_read",
    "silent_read",
    "daemon",
    "exit_after",
]


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def malformed_frames() -> list[bytes]:
    """72 frames a Phoenix server never sends."""
    deep = "[" * 2000 + "]" * 2000
    kinds = [
        deep.encode(),
        b'[null,null,"room:1","new_msg",{"id":NaN}]',
        b'[null,null,"room:1","new_msg",{"id":1e400}]',
        b'[null,null,"room:1","new_msg",{"id":"\\ud800"}]',
        b'{"not":"an array"}',
        b'["1","1","room:1","phx_reply",{"nostatus":true}]',
        b"not json at all",
        b"[1,2]",
        b'[null,null,"",  "new_msg",{}]',
    ]
    return [kinds[i % len(kinds)] for i in range(72)]


class Hostile:
    def __init__(self, node: str, misbehave: set[str]) -> None:
        self.node = node
        self.bad = misbehave
        self.topics: dict[str, set[Socket]] = {}
        self.store: dict[str, list[dict[str, Any]]] = {}
        self.healthy = trio.Event()

    # -- http ---------------------------------------------------------------------------------

    async def http(self, stream: trio.SocketStream, path: str, query: dict[str, str]) -> None:
        if path == "/health":
            if "deep_health" in self.bad:
                await _send_body(stream, 200, b"[" * 100_000 + b"]" * 100_000)
                return
            self.healthy.set()
            await _send_body(stream, 200, b'{"status":"ok"}')
        elif path == "/stats":
            body = b"[" * 100_000 + b"]" * 100_000 if "deep_stats" in self.bad else b"{}"
            await _send_body(stream, 200, body)
        elif path == "/api/messages":
            await self.read(stream, query.get("topic", ""))
        else:
            await _send_body(stream, 404, b'{"error":"no route"}')

    async def read(self, stream: trio.SocketStream, topic: str) -> None:
        messages = self.store.get(topic, [])
        body = json.dumps({"messages": messages}).encode()
        if "deep_read" in self.bad:
            body = json.dumps({"messages": [{"id": nested(200)}]}).encode()
        elif "nan_read" in self.bad:
            body = b'{"messages": [{"id": NaN}, {"id": 1e400}]}'
        if "endless_read" in self.bad:
            head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            await stream.send_all(head + b"transfer-encoding: chunked\r\n\r\n")
            chunk = b" " * 65536
            frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            for _ in range(2 * 2**30 // len(chunk)):  # 2 GB, bounded
                await stream.send_all(frame)
            return
        if "slow_read" in self.bad:
            head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            await stream.send_all(head)
            for byte in body[:600]:  # bounded: ten minutes at most
                await stream.send_all(bytes([byte]))
                await trio.sleep(1)
            return
        await _send_body(stream, 200, body)

    # -- channels -----------------------------------------------------------------------------

    def broadcast(self, topic: str, payload: dict[str, Any]) -> None:
        frame = dumps([None, None, topic, "new_msg", payload])
        for sock in list(self.topics.get(topic, ())):
            sock.send(frame)


class Socket:
    def __init__(self, server: Hostile, stream: trio.SocketStream, ws: wsproto.WSConnection):
        self.server = server
        self.stream = stream
        self.ws = ws
        self.codec = V2JSONCodec()
        self.outgoing: list[bytes] = []
        self.joined: dict[str, str] = {}  # topic -> join_ref
        self.wake = trio.Event()
        self.closed = False

    def send(self, text: str) -> None:
        self.send_bytes(text.encode())

    def send_bytes(self, data: bytes) -> None:
        """A text frame of any bytes (not always UTF-8: the point is to be wrong)."""
        if not self.closed:
            self.outgoing.append(_text_frame(data))
            self.wake.set()

    async def writer(self) -> None:
        while not self.closed:
            await self.wake.wait()
            self.wake = trio.Event()
            while self.outgoing:
                batch, self.outgoing = b"".join(self.outgoing), []
                await self.stream.send_all(batch)

    async def reader(self) -> None:
        while True:
            data = await self.stream.receive_some(65536)
            if not data:
                return
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, wse.TextMessage):
                    self.handle(event.data)
                elif isinstance(event, wse.CloseConnection):
                    return
                elif isinstance(event, wse.Ping):
                    self.outgoing.append(self.ws.send(event.response()))
                    self.wake.set()

    def reply(self, join_ref: str | None, ref: str | None, topic: str, status: str, response: Any):
        payload = {"status": status, "response": response}
        self.send(dumps([join_ref, ref, topic, "phx_reply", payload]))

    def handle(self, text: str) -> None:
        try:
            event = self.codec.decode(text, sender=Role.CLIENT)
        except Exception:
            return
        bad = self.server.bad
        if isinstance(event, Join):
            if "inject_refusal" in bad:
                self.reply(event.join_ref, event.ref, event.topic, "error", {"reason": INJECT})
                return
            self.joined[event.topic] = event.join_ref
            self.server.topics.setdefault(event.topic, set()).add(self)
            self.reply(event.join_ref, event.ref, event.topic, "ok", {})
            self.misbehave_on_join(event.topic, event.join_ref)
        elif isinstance(event, Push) and event.topic == "phoenix":
            self.reply(None, event.ref, "phoenix", "ok", {})
        elif isinstance(event, Push) and event.event == "new_msg":
            payload = dict(event.payload) if isinstance(event.payload, dict) else {}
            self.server.store.setdefault(event.topic, []).append(payload)
            self.reply(event.join_ref, event.ref, event.topic, "ok", {"id": payload.get("id")})
            self.server.broadcast(event.topic, payload)
        elif isinstance(event, Push) and event.event == "history":
            if "silent_read" in bad:
                return
            messages = self.server.store.get(event.topic, [])
            self.reply(event.join_ref, event.ref, event.topic, "ok", {"messages": messages})
        elif isinstance(event, Push):
            self.reply(event.join_ref, event.ref, event.topic, "ok", {})

    def misbehave_on_join(self, topic: str, join_ref: str) -> None:
        bad = self.server.bad

        def deliver(message_id: Any) -> None:
            self.send(dumps([None, None, topic, "new_msg", {"id": message_id, "body": "x"}]))

        if "deep_id" in bad:
            deliver(nested(300))
        if "list_ids" in bad:
            deliver([1, 2])
            deliver({"a": [1]})
        if "inject" in bad:
            deliver(INJECT)
        if "big_id" in bad and not getattr(self.server, "big_sent", False):
            self.server.big_sent = True  # type: ignore[attr-defined]
            for _ in range(20):
                deliver("B" * 2**20)
        if "deep_error" in bad and not getattr(self, "errored", False):
            self.errored = True
            self.send(dumps([join_ref, join_ref, topic, "phx_error", {"why": nested(300)}]))
        if "malformed" in bad and not getattr(self.server, "malformed_sent", False):
            self.server.malformed_sent = True  # type: ignore[attr-defined]
            for frame in malformed_frames():
                self.send_bytes(frame)


async def _send_body(stream: trio.SocketStream, status: int, body: bytes) -> None:
    head = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
    head += f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    await stream.send_all(head.encode() + body)


def _text_frame(payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        header = bytes([0x81, size])
    elif size < 65536:
        header = bytes([0x81, 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x81, 127]) + size.to_bytes(8, "big")
    return header + payload


async def serve(server: Hostile, stream: trio.SocketStream) -> None:
    try:
        head = b""
        while b"\r\n\r\n" not in head:
            data = await stream.receive_some(65536)
            if not data:
                return
            head += data
        request, _, rest = head.partition(b"\r\n\r\n")
        lines = request.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query))
        if not any(line.lower().startswith("upgrade: websocket") for line in lines):
            await server.http(stream, parts.path, query)
            return
        ws = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        ws.receive_data(head)
        for event in ws.events():
            if isinstance(event, wse.Request):
                await stream.send_all(ws.send(wse.AcceptConnection()))
        sock = Socket(server, stream, ws)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sock.writer)
            if "phantom_flood" in server.bad:
                nursery.start_soon(flood, sock)
            await sock.reader()
            sock.closed = True
            nursery.cancel_scope.cancel()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ValueError):
        pass
    finally:
        for subscribers in server.topics.values():
            subscribers.discard(sock) if "sock" in locals() else None
        await stream.aclose()


async def flood(sock: Socket) -> None:
    """Phantoms for as long as the socket lives (bounded: ten minutes at most)."""
    deadline = trio.current_time() + 600
    n = 0
    while trio.current_time() < deadline:
        for _ in range(50):
            for topic in list(sock.joined):
                n += 1
                frame = dumps([None, None, topic, "new_msg", {"id": f"ghost-{n}", "body": "x"}])
                sock.send(frame)
        await trio.sleep(0 if len(sock.outgoing) < 2000 else 0.01)


async def watch_exit(server: Hostile) -> None:
    await server.healthy.wait()
    await trio.sleep(2)
    os._exit(1)


def daemonize_holder(listener: trio.SocketListener) -> None:
    """Double-fork a setsid child that keeps the listening socket open (as a daemon would)."""
    fd = listener.socket.fileno()
    if os.fork() == 0:  # child
        os.setsid()
        if os.fork() == 0:  # grandchild: out of our session and process group
            os.set_inheritable(fd, True)
            time.sleep(1800)  # bounded: half an hour
            os._exit(0)
        os._exit(0)
    os.wait()


def burn() -> list[subprocess.Popen[bytes]]:
    code = "import time\nend = time.time() + 600\nwhile time.time() < end: pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]


async def main(node: str, host: str, port: int, misbehave: set[str]) -> None:
    server = Hostile(node, misbehave)
    listeners = await trio.open_tcp_listeners(port, host=host)
    if "daemon" in misbehave:
        daemonize_holder(listeners[0])
    burners = burn() if "cpu_burn" in misbehave else []
    try:
        async with trio.open_nursery() as nursery:
            if "exit_after" in misbehave:
                nursery.start_soon(watch_exit, server)
            await trio.serve_listeners(lambda s: serve(server, s), listeners)
    finally:
        for p in burners:
            p.kill()


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--node", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--misbehave", action="append", default=[], choices=BEHAVIOURS)
    parser.add_argument("rest", nargs="*")  # the reference contract's other arguments
    args, _ = parser.parse_known_args(argv)
    trio.run(main, args.node, args.host, args.port, set(args.misbehave))


if __name__ == "__main__":
    cli()
