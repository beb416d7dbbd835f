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
    docker RUN         containers and volumes labelled `chaos-harness.run=RUN` on the local
                       Docker engine (its unix socket; `harness.cluster._docker`)
    cgroup PATH        a node's cgroup (`harness.infra.contain`): every process in it is killed
                       (`cgroup.kill`) and the directory removed
    drop proxy HOST PORT NAME  / drop group PID / drop docker RUN / drop cgroup PATH
                       removed by the harness itself

When the pipe reaches end of file, the harness has exited (normally or not: the kernel closes
its end either way), and the watchdog SIGKILLs every group still registered, DELETEs every proxy
still registered and removes every container and volume of a registered run, then exits. A group
is only killed if its leader is the same process that was registered (its start time in
`/proc/PID/stat` unchanged), so a recycled pid is never hit. Stdlib only: it must start in
milliseconds and have nothing to fail on.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sys
import time
from contextlib import suppress
from urllib.parse import quote


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot): with the pid, a process identity."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read().decode(errors="replace")
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()[19]


class _EngineConnection(http.client.HTTPConnection):
    """HTTP on the Docker engine's unix socket (`DOCKER_HOST=unix://...` or the default)."""

    def __init__(self) -> None:
        super().__init__("localhost", timeout=10)
        host = os.environ.get("DOCKER_HOST", "")
        self.socket_path = host[7:] if host.startswith("unix://") else "/var/run/docker.sock"

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(self.socket_path)
        self.sock = sock


def _engine(method: str, path: str) -> object:
    connection = _EngineConnection()
    try:
        connection.request(method, path)
        body = connection.getresponse().read()
    finally:
        connection.close()
    return json.loads(body) if body.strip().startswith((b"[", b"{")) else None


def remove_docker_run(run: str) -> None:
    """Remove the containers labelled with the run's id (force), then its volumes and those of
    the compose projects the containers belonged to."""
    filters = quote(json.dumps({"label": [f"chaos-harness.run={run}"]}))
    containers = _engine("GET", f"/containers/json?all=1&filters={filters}")
    projects = set()
    for container in containers if isinstance(containers, list) else []:
        projects.add((container.get("Labels") or {}).get("com.docker.compose.project"))
        _engine("DELETE", f"/containers/{container['Id']}?force=1&v=1")
    selections = [filters] + [
        quote(json.dumps({"label": [f"com.docker.compose.project={p}"]})) for p in projects if p
    ]
    for selection in selections:
        volumes = _engine("GET", f"/volumes?filters={selection}")
        listed = volumes.get("Volumes") if isinstance(volumes, dict) else None
        for volume in listed or []:
            _engine("DELETE", f"/volumes/{quote(volume['Name'])}?force=1")


def remove_cgroup(path: str) -> None:
    """Kill every process of a node's cgroup, then remove it (and its run's directory)."""
    with suppress(OSError), open(os.path.join(path, "cgroup.kill"), "w") as kill:
        kill.write("1")
    for _ in range(100):  # up to a second for the kernel to empty it
        try:
            with open(os.path.join(path, "cgroup.events")) as events:
                if "populated 0" in events.read():
                    break
        except OSError:
            break
        time.sleep(0.01)
    with suppress(OSError):
        os.rmdir(path)
    with suppress(OSError):
        os.rmdir(os.path.dirname(path))


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    groups: dict[int, str] = {}
    proxies: set[tuple[str, int, str]] = set()
    runs: set[str] = set()
    cgroups: set[str] = set()
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
        elif len(words) == 2 and words[0] == "docker":
            runs.discard(words[1]) if drop else runs.add(words[1])
        elif len(words) == 2 and words[0] == "cgroup" and "/chaos-harness/" in words[1]:
            cgroups.discard(words[1]) if drop else cgroups.add(words[1])
    for pid, started in groups.items():
        if start_time(pid) == started:
            with suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
    for path in cgroups:
        remove_cgroup(path)
    for host, port, name in proxies:
        with suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection(host, port, timeout=5)
            connection.request("DELETE", f"/proxies/{name}")
            connection.getresponse().read()
            connection.close()
    for run in runs:
        with suppress(OSError, http.client.HTTPException, ValueError, KeyError, TypeError):
            remove_docker_run(run)


if __name__ == "__main__":
    main()
