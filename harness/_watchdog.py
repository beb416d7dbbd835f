"""The watchdog: whatever the harness started dies with it, even when it is SIGKILLed.

A run stops its nodes, toxiproxy-server, redis-server and swarm workers by process group and
removes its proxies; all of that is code in the harness, which a SIGKILL (an OOM kill, a CI
runner's timeout, `kill -9`) never lets run. Linux's `PR_SET_PDEATHSIG` does not fit: it fires
when the *thread* that forked exits, and trio forks from worker threads that come and go.

So the harness starts one small process of its own, in a session of its own (a Ctrl-C on the
terminal does not reach it), with a pipe on its stdin. The harness writes one line per thing
it starts:

    group PID          a process group it leads (pid == pgid: `start_new_session`)
    proxy HOST PORT NAME   a proxy on a Toxiproxy it may share with others
    drop proxy HOST PORT NAME  / drop group PID   removed by the harness itself

When the pipe reaches end of file, the harness has exited (normally or not: the kernel closes
its end either way), and the watchdog SIGKILLs every group still registered and DELETEs every
proxy still registered, then exits. A group is only killed if its leader is the same process
that was registered (its start time in `/proc/PID/stat` unchanged), so a recycled pid is never
hit. Stdlib only: it must start in milliseconds and have nothing to fail on.
"""

from __future__ import annotations

import http.client
import os
import signal
import sys
from contextlib import suppress


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot): with the pid, a process identity."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read().decode(errors="replace")
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()[19]


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    groups: dict[int, str] = {}
    proxies: set[tuple[str, int, str]] = set()
    for raw in sys.stdin.buffer:
        words = raw.decode(errors="replace").split()
        drop = bool(words) and words[0] == "drop"
        words = words[1:] if drop else words
        if len(words) == 2 and words[0] == "group" and words[1].isdigit():
            pid = int(words[1])
            if drop:
                groups.pop(pid, None)
            else:
                started = start_time(pid)
                if started is not None:
                    groups[pid] = started
        elif len(words) == 4 and words[0] == "proxy" and words[2].isdigit():
            key = (words[1], int(words[2]), words[3])
            proxies.discard(key) if drop else proxies.add(key)
    for pid, started in groups.items():
        if start_time(pid) == started:
            with suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
    for host, port, name in proxies:
        with suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection(host, port, timeout=5)
            connection.request("DELETE", f"/proxies/{name}")
            connection.getresponse().read()
            connection.close()


if __name__ == "__main__":
    main()
