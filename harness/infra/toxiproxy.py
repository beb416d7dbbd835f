"""Toxiproxy: the one adapter between the harness and a real `toxiproxy-server`.

Why not toxiproxy-python (0.1.1, the library this project was first specified with), from
reading its code (`research/toxiproxy.md` part B):

* no timeout on any call: a hung API (a reset_peer toxic blocking an interrupt, the server's
  25 s handler timeout) would hang a run for ever;
* answers other than 400/404/409 are not errors to it: a 500 (port in use) or 503 comes back as
  a normal response and `create()` then dies with `KeyError: 'name'`;
* host and port are class attributes: one server per interpreter, switched globally;
* no toxic update (PATCH), `add_toxic` throws the answer away, `populate` is client-side and
  drops live connections.

The first two make "a deadline on every call, raise on every non-2xx answer" impossible through
it, so this module speaks the HTTP API directly (h11 over trio, `harness.infra.http`), async, with a
deadline per call and `ToxiproxyError` for every non-2xx answer. (The library was dropped from
the dependencies: nothing imported it.)

`open_toxiproxy()` runs the server processes the harness owns (found in `TOXIPROXY_SERVER`, next
to the running Python, or on PATH; bound to 127.0.0.1 on free ports; stopped by their process
groups): one, or one per node when one would run out of descriptors (`descriptors.place`); or it
uses the user's server at an address. `open_proxies()` creates a run's proxies under
one prefix and deletes them at the end, however the run ends, so a user's server is left clean.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from ..errors import HarnessError, ToxiproxyError
from ..faults.toxics import TOXICS, slicer_problem
from .descriptors import ONE, Placement
from .http import request
from .process import ServerProcess, free_ports, wait_ready, watch

CALL_TIMEOUT = 5.0
# Removing a toxic flushes what it holds; a stalled `bandwidth` toxic gets Toxiproxy's own 5 s
# flush deadline (since 2.5.0, #436) per connection stub, so a removal (and `/reset`, which removes
# them all) may legitimately take longer than an ordinary call: seen at 5.0x s with a 3 KB/s
# toxic on nine connections (scenarios/slow-consumer.yaml).
REMOVE_TIMEOUT = 30.0
STREAMS = ("upstream", "downstream")
TOXIC_TYPES = tuple(toxic.kind_name() for toxic in TOXICS)


@dataclass(frozen=True, slots=True)
class Toxic:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Toxic:
        return cls(
            name=data["name"],
            type=data["type"],
            stream=data["stream"],
            toxicity=float(data.get("toxicity", 1.0)),
            attributes=dict(data.get("attributes") or {}),
        )


@dataclass(frozen=True, slots=True)
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = ()

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Proxy:
        return cls(
            name=data["name"],
            listen=data["listen"],
            upstream=data["upstream"],
            enabled=bool(data["enabled"]),
            toxics=tuple(Toxic.from_api(t) for t in data.get("toxics") or ()),
        )

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


def validate_toxic(type_: str, stream: str, toxicity: float, attributes: dict[str, Any]) -> None:
    """Refuse what the server accepts silently but handles badly (research A3, A5)."""
    if type_ not in TOXIC_TYPES:
        raise ToxiproxyError(
            f"unknown toxic type {type_!r}; expected one of {', '.join(TOXIC_TYPES)}"
        )
    if stream not in STREAMS:
        raise ToxiproxyError(f"stream must be upstream or downstream, got {stream!r}")
    if not 0.0 <= toxicity <= 1.0:
        raise ToxiproxyError(f"toxicity must be within [0, 1], got {toxicity}")
    for key, value in attributes.items():
        if not isinstance(value, int) or value < 0:
            raise ToxiproxyError(
                f"toxic attribute {key} must be a non-negative integer, got {value!r}"
            )
    if type_ == "slicer":
        problem = slicer_problem(
            attributes.get("average_size", 0), attributes.get("size_variation")
        )
        if problem is not None:
            raise ToxiproxyError(problem)


class ToxiproxyClient:
    """The HTTP API of one Toxiproxy server; every call has a deadline."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8474,
        *,
        timeout: float = CALL_TIMEOUT,
        counts: bool = False,
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.counts = counts  # started with -proxy-metrics (the harness's own server is)

    async def _call(
        self, method: str, path: str, body: Any = None, *, timeout: float | None = None
    ) -> Any:
        timeout = timeout or self.timeout
        try:
            status, data = await request(method, self.host, self.port, path, body, timeout=timeout)
        except OSError as exc:
            raise ToxiproxyError(
                f"toxiproxy at {self.host}:{self.port} unreachable: {exc}"
            ) from exc
        except trio.TooSlowError:
            raise ToxiproxyError(f"toxiproxy {method} {path} took longer than {timeout}s") from None
        if not 200 <= status < 300:
            detail = data.get("error") if isinstance(data, dict) else data
            raise ToxiproxyError(f"toxiproxy {method} {path} -> {status}: {detail}", status)
        return data

    async def version(self) -> str:
        data = await self._call("GET", "/version")
        return str(data["version"]) if isinstance(data, dict) else str(data).strip()

    async def proxies(self) -> dict[str, Proxy]:
        data = await self._call("GET", "/proxies")
        return {name: Proxy.from_api(p) for name, p in data.items()}

    async def create_proxy(
        self, name: str, upstream: str, listen: str | None = None, *, host: str = "127.0.0.1"
    ) -> Proxy:
        """A proxy listening on `listen`; by default on `host` and a port below the ephemeral
        range, so that re-enabling it after a `down` finds its port still free."""
        if listen is None:
            listen = f"{host}:{free_ports(1, host)[0]}"
        data = await self._call(
            "POST", "/proxies", {"name": name, "upstream": upstream, "listen": listen}
        )
        return Proxy.from_api(data)

    async def set_enabled(self, name: str, enabled: bool) -> Proxy:
        """Disable: stop listening and close every live connection. Enable: listen again."""
        return Proxy.from_api(await self._call("PATCH", f"/proxies/{name}", {"enabled": enabled}))

    async def delete_proxy(self, name: str) -> None:
        await self._call("DELETE", f"/proxies/{name}", timeout=max(self.timeout, REMOVE_TIMEOUT))

    async def add_toxic(
        self,
        proxy: str,
        type_: str,
        attributes: dict[str, Any],
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> Toxic:
        validate_toxic(type_, stream, toxicity, attributes)
        body = {
            "name": name or f"{type_}_{stream}",
            "type": type_,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes,
        }
        return Toxic.from_api(await self._call("POST", f"/proxies/{proxy}/toxics", body))

    async def remove_toxic(self, proxy: str, name: str) -> None:
        await self._call(
            "DELETE", f"/proxies/{proxy}/toxics/{name}", timeout=max(self.timeout, REMOVE_TIMEOUT)
        )

    async def proxy(self, name: str) -> Proxy:
        return Proxy.from_api(await self._call("GET", f"/proxies/{name}"))

    async def traffic(self, names: Iterable[str]) -> int | None:
        """Bytes the proxies named have carried since they were made, both ways (the server's
        Prometheus counters, on with `-proxy-metrics`, as the harness starts its own; a proxy
        that never carried a byte has no line, so 0); None when the server may not count (one
        the harness did not start, showing no proxy's counter)."""
        try:
            status, body = await request(
                "GET", self.host, self.port, "/metrics", timeout=self.timeout, raw=True
            )
        except (OSError, trio.TooSlowError, HarnessError):
            return None
        text = body.decode(errors="replace") if status == 200 else ""
        if not self.counts and "toxiproxy_proxy_sent_bytes_total" not in text:
            return None
        wanted, total = set(names), 0
        for line in text.splitlines():
            found = _SENT.match(line)
            if found and found.group("proxy") in wanted:
                total += int(float(found.group("bytes")))
        return total

    async def heal(self, names: Iterable[str]) -> None:
        """What `/reset` does, for these proxies only: remove their toxics (a `timeout` toxic's
        removal closes its links, as with /reset) and enable them. A Toxiproxy may be shared by
        other runs and other teams: `/reset` would undo their faults too."""
        for name in names:
            proxy = await self.proxy(name)
            for toxic in proxy.toxics:
                await self.remove_toxic(name, toxic.name)
            if not proxy.enabled:
                await self.set_enabled(name, True)

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic (closes links that had a timeout toxic).
        Every proxy of the server, not only this run's: the harness itself uses `heal`."""
        await self._call("POST", "/reset", timeout=max(self.timeout, REMOVE_TIMEOUT))


_SENT = re.compile(
    r'^toxiproxy_proxy_sent_bytes_total\{[^}]*proxy="(?P<proxy>[^"]*)"[^}]*\} (?P<bytes>[0-9.e+]+)$'
)


def find_server_binary() -> Path:
    """`$TOXIPROXY_SERVER`, then `toxiproxy-server` beside this Python, then on PATH."""
    candidates = []
    if os.environ.get("TOXIPROXY_SERVER"):
        candidates.append(Path(os.environ["TOXIPROXY_SERVER"]))
    candidates.append(Path(sys.executable).parent / "toxiproxy-server")
    found = shutil.which("toxiproxy-server")
    if found:
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise ToxiproxyError(
        "toxiproxy-server not found (looked in $TOXIPROXY_SERVER, next to python, on PATH);"
        " `harness doctor` says how to get it"
    )


class ToxiproxyServer(ServerProcess):
    """A toxiproxy-server process owned by the harness, on 127.0.0.1 and a free port."""

    def __init__(self, log_path: Path, *, binary: Path | None = None) -> None:
        super().__init__(log_path)
        self.binary = binary or find_server_binary()
        self.port = free_ports(1)[0]
        self.client = ToxiproxyClient("127.0.0.1", self.port, counts=True)

    async def start(self, *, timeout: float = 10.0) -> None:
        argv = [str(self.binary), "-host", "127.0.0.1", "-port", str(self.port), "-proxy-metrics"]
        await self.spawn(argv)

        async def answers() -> bool:
            with suppress(ToxiproxyError):
                await self.client.version()
                return True
            return False

        def died() -> str | None:
            if self.exited() is None:
                return None
            return f"toxiproxy-server exited early; see {self.log_path}"

        await wait_ready(
            answers,
            died=died,
            timeout=timeout,
            what="toxiproxy-server did not answer",
            error=ToxiproxyError,
        )


class Toxiproxy:
    """The run's Toxiproxy: one toxiproxy-server, or several (one per node) when one would run
    out of descriptors (`descriptors.place`). Every call on a proxy goes to the server that
    holds it (`holder`), so the nemesis speaks to one object whatever the spread."""

    def __init__(
        self,
        servers: Mapping[str, ToxiproxyClient],
        version: str,
        pids: Mapping[str, int] | None = None,
        home: Mapping[str, str] | None = None,
        logs: Sequence[Path] = (),
    ) -> None:
        self.servers = dict(servers)  # server key (a node, or "all") -> its API
        self.logs = tuple(logs)  # the logs of the servers the harness started
        self.version = version
        self.pids = dict(pids or {})  # the servers the harness started
        self.home = dict(home or {})  # link name -> server key
        self._holder: dict[str, ToxiproxyClient] = {}  # proxy name -> its server

    @property
    def client(self) -> ToxiproxyClient:
        """The first server (the only one, unless the proxies were spread)."""
        return next(iter(self.servers.values()))

    @property
    def pid(self) -> int | None:  # the first server's
        return next(iter(self.pids.values()), None)

    def server_for(self, link: str) -> ToxiproxyClient:
        return self.servers.get(self.home.get(link, ""), self.client)

    def holder(self, proxy: str) -> ToxiproxyClient:
        """The server a proxy of this run is on: every call on that proxy goes there."""
        return self._holder.get(proxy, self.client)

    async def proxies(self) -> dict[str, Proxy]:  # every proxy of every server
        found: dict[str, Proxy] = {}
        for server in self.servers.values():
            found.update(await server.proxies())
        return found

    async def create_proxy(self, link: str, name: str, upstream: str, host: str) -> Proxy:
        """`link`'s proxy on its server, listening on `host`."""
        server = self.server_for(link)
        self._holder[name] = server
        return await server.create_proxy(name, upstream, host=host)

    async def traffic(self, names: Iterable[str]) -> int | None:
        """Bytes the proxies named carried, summed over their servers; None when a server may
        not count."""
        total = 0
        for server, mine in self._by_server(names):
            carried = await server.traffic(mine)
            if carried is None:
                return None
            total += carried
        return total

    def accepted(self, names: Iterable[str]) -> int | None:
        """Connections the proxies named have accepted so far, by their servers' logs (None: a
        server of the user's). Toxiproxy counts a connection's bytes only when it closes: open
        connections through a fault read 0 bytes (measured: 5 bytes each way, 0 until closed)."""
        if not self.logs:
            return None
        wanted = {f'"name":"{name}"'.encode() for name in names}
        count = 0
        for log in self.logs:
            with suppress(OSError), log.open("rb") as lines:
                for line in lines:
                    if b'"message":"Accepted client"' in line and any(w in line for w in wanted):
                        count += 1
        return count

    async def heal(self, names: Iterable[str]) -> None:
        for server, mine in self._by_server(names):
            await server.heal(mine)

    def _by_server(self, names: Iterable[str]) -> list[tuple[ToxiproxyClient, list[str]]]:
        held = [
            (server, [n for n in names if self.holder(n) is server])
            for server in self.servers.values()
        ]
        return [(server, mine) for server, mine in held if mine]


@asynccontextmanager
async def open_toxiproxy(
    log_path: Path, address: str | None = None, placement: Placement | None = None
) -> AsyncIterator[Toxiproxy]:
    """The user's server at `address` (host:port), or servers of our own (one per server of
    `placement`, the first logging to `log_path`, the others beside it: `toxiproxy.n2.log`),
    stopped at the end."""
    if address:
        host, _, port = address.rpartition(":")
        client = ToxiproxyClient(host or "127.0.0.1", int(port))
        yield Toxiproxy({ONE: client}, await client.version())
        return
    keys = [load.server for load in placement.servers] if placement is not None else [ONE]
    servers: dict[str, ToxiproxyServer] = {}
    try:
        for index, key in enumerate(keys):
            log = log_path if index == 0 else log_path.with_suffix(f".{key}.log")
            server = servers[key] = ToxiproxyServer(log)
            await server.start()
        yield Toxiproxy(
            {key: server.client for key, server in servers.items()},
            await servers[keys[0]].client.version(),
            {key: server.pid for key, server in servers.items() if server.pid is not None},
            placement.home if placement is not None else None,
            [server.log_path for server in servers.values()],
        )
    finally:
        with trio.CancelScope(shield=True):
            for server in servers.values():
                await server.stop()


class Proxies:
    """The proxies of one run, named `<prefix>_<link>`; `add` returns the listening port."""

    def __init__(self, toxiproxy: Toxiproxy, prefix: str) -> None:
        self.toxiproxy = toxiproxy
        self.prefix = prefix
        self.names: dict[str, str] = {}  # link -> proxy name

    async def add(self, link: str, upstream: str, *, host: str = "127.0.0.1") -> int:
        name = f"{self.prefix}_{link.replace('->', '_to_')}"
        # named (and told to the watchdog) before it exists: a set-up cancelled mid-call must
        # still delete it
        self.names[link] = name
        server = self.toxiproxy.server_for(link)
        watch(f"proxy {server.host} {server.port} {name}")
        proxy = await self.toxiproxy.create_proxy(link, name, upstream, host)
        return proxy.port


@asynccontextmanager
async def open_proxies(toxiproxy: Toxiproxy, prefix: str) -> AsyncIterator[Proxies]:
    proxies = Proxies(toxiproxy, prefix)
    try:
        yield proxies
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            for link, name in proxies.names.items():
                server = toxiproxy.server_for(link)
                with suppress(ToxiproxyError):
                    await server.delete_proxy(name)
                    watch(f"drop proxy {server.host} {server.port} {name}")
