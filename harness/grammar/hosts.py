"""Machines the harness drives over SSH, as the grammar names them: a node's host
(`cluster.hosts`, `backend: ssh`) and a host of swarm workers (`clients.hosts`). One home for how
a host is reached, so both sections say it the same way."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from .units import Bounded, Flag, Text

MAX_WORKERS = 64  # swarm worker processes on one machine (this one's or a host's)


class HostSpec(BaseModel):
    """A machine reached with the system's OpenSSH client by key (BatchMode: never a password),
    its host key checked against `known_hosts` (or the user's own) unless `check_host_key:
    false`. `python` is `{python}` in a node's command there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$")]
    port: Annotated[int, Bounded(1, 65535)] = 22
    user: Annotated[str | None, Field(pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")] = None
    identity: Text | None = None
    known_hosts: Text | None = None
    check_host_key: Flag = True
    python: Text = "python3"


class WorkerHostSpec(HostSpec):
    """A machine that runs swarm workers: `workers` processes there, the harness installed under
    `directory` from the wheelhouse this machine ships (a virtual environment made with `python`
    there, reused while its version matches)."""

    workers: Annotated[int, Bounded(1, MAX_WORKERS)] = 1
    directory: Text = "~/.cache/chaos-harness"


__all__ = ["MAX_WORKERS", "HostSpec", "WorkerHostSpec"]
