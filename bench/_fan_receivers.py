"""The receiving side of `bench/fanout.py`, in a process of its own: SUBSCRIBERS websockets
joined to one topic, read with one `epoll` loop that only parses frame headers and counts.

Why not trio tasks in the benchmark's process (as it once was): 500 reader tasks cost more per
frame than the server spends sending it, so both the server and the baseline were measured at
the receivers' speed and the ratio between them said little. Here a frame costs a header parse,
and a wake-up reads everything a socket has.

    python bench/_fan_receivers.py PORT SUBSCRIBERS FRAMES PARAMS_JSON

Prints "ready" once every socket is joined, then, once every socket has FRAMES frames (the join
reply and the welcome push included), the `time.monotonic()` at which the last one arrived.
Bounded: gives up after 120 s (prints "timeout").
"""

from __future__ import annotations

import json
import select
import socket
import sys
import time

import wsproto
import wsproto.events as wse

TOPIC = "room:fan"


def connect(port: int, params: dict[str, object]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    sock.sendall(ws.send(wse.Request(host="127.0.0.1", target="/socket/websocket?vsn=2.0.0")))
    accepted = False
    while not accepted:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed during the handshake")
        ws.receive_data(data)
        accepted = any(isinstance(e, wse.AcceptConnection) for e in ws.events())
    join = json.dumps(["1", "1", TOPIC, "phx_join", params])
    sock.sendall(ws.send(wse.TextMessage(data=join)))
    sock.setblocking(False)
    return sock


def frames_in(buffer: bytearray) -> int:
    """Whole unmasked frames at the start of `buffer`, removed from it."""
    pos, count, size = 0, 0, len(buffer)
    while size - pos >= 2:
        length, head = buffer[pos + 1] & 0x7F, 2
        if length == 126:
            if size - pos < 4:
                break
            length, head = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), 4
        elif length == 127:
            if size - pos < 10:
                break
            length, head = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), 10
        if size - pos < head + length:
            break
        pos += head + length
        count += 1
    del buffer[:pos]
    return count


def main(port: int, subscribers: int, frames: int, params: dict[str, object]) -> None:
    sockets = {}
    epoll = select.epoll()
    for _ in range(subscribers):
        sock = connect(port, params)
        sockets[sock.fileno()] = (sock, bytearray(), [0])
        epoll.register(sock.fileno(), select.EPOLLIN)
    print("ready", flush=True)
    waiting = subscribers
    last = 0.0
    deadline = time.monotonic() + 120
    while waiting and time.monotonic() < deadline:
        for fd, _ in epoll.poll(1.0):
            sock, buffer, count = sockets[fd]
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                continue
            if not data:
                epoll.unregister(fd)
                waiting -= 1
                continue
            buffer += data
            before = count[0]
            count[0] += frames_in(buffer)
            if before < frames <= count[0]:
                last = time.monotonic()
                waiting -= 1
                epoll.unregister(fd)
    print(f"{last:.6f}" if not waiting else "timeout", flush=True)
    for sock, _, _ in sockets.values():
        sock.close()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]))
