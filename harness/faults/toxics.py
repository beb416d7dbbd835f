"""Toxiproxy toxics on links: latency, bandwidth, slow_close, timeout, reset_peer, slicer,
limit_data.

One toxic per link and stream (`both` adds an upstream and a downstream toxic), removed when
the fault ends; removing `timeout` closes the connections it held. Durations are written as
durations in YAML (`latency: 300ms`) and sent to Toxiproxy in its unit, whole milliseconds;
`slicer.delay` is Toxiproxy's microseconds, a plain number. Toxiproxy's own surprises that a
scenario must not reach (`research/toxiproxy.md`): a slicer with `size_variation >=
average_size` panics the server, so it is refused here.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ..grammar.section import Topology, grammar_of
from ..grammar.units import Bounded, Fraction, Millis, OneOf
from ._base import Fault, FaultContext
from .links import LinkList

Stream = Literal["both", "upstream", "downstream"]
Count = Annotated[int, Bounded(0)]


class Toxic(Fault):
    """A Toxiproxy toxic on one or more links."""

    toxic_attributes: ClassVar[tuple[str, ...]] = ()
    random_attributes: ClassVar[dict[str, int | str]] = {}  # YAML values

    link: LinkList
    stream: Annotated[Stream, OneOf(("both", "upstream", "downstream"))] = "both"
    toxicity: Fraction = 1.0

    @field_validator("link")
    @classmethod
    def _through_a_proxy(cls, links: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        grammar = grammar_of(info)
        if grammar is not None:
            for link in links:
                if link in grammar.topology.links and link not in grammar.topology.proxied:
                    raise ValueError(
                        f"{link} has no proxy under network: isolated or on SSH hosts (the nodes"
                        " talk directly);"
                        " a node link takes down, partition or packet_loss there, and toxics go"
                        " on clients->nX links"
                    )
        return links

    def target(self) -> str:
        return ",".join(self.link)

    def reforms(self) -> bool:
        return any(not link.startswith("clients->") for link in self.link)

    def weaker(self) -> Iterator[tuple[str, Fault]]:
        """Each of its figures halved (a duration down to 20 ms, a count down to 1)."""
        shown = self.model_dump(mode="json")
        for name in self.toxic_attributes:
            value = getattr(self, name)
            if not isinstance(value, int) or value <= (20 if _is_ms(shown[name]) else 1):
                continue
            half = self.model_copy(update={name: value // 2})
            yield f"{name} {shown[name]} -> {half.model_dump(mode='json')[name]}", half

    def attributes(self) -> dict[str, int]:
        values = {name: getattr(self, name) for name in self.toxic_attributes}
        return {k: int(v) for k, v in values.items() if v is not None}

    @classmethod
    def draw(cls, rng: random.Random, topology: Topology, length: float) -> dict[str, Any]:
        link = rng.choice(topology.proxied)
        return {"link": (link,), "stream": "both", "toxicity": 1.0, **cls.random_attributes}

    async def apply(self, ctx: FaultContext) -> None:
        streams = ("upstream", "downstream") if self.stream == "both" else (self.stream,)
        undo = []
        for link in self.link:
            for stream in streams:
                undo.append(
                    await ctx.add_toxic(
                        link, self.kind_name(), self.attributes(), stream, self.toxicity
                    )
                )

        async def remove() -> None:
            for call in undo:
                await call()

        await ctx.hold(self.duration or 0.0, remove)


def _is_ms(shown: object) -> bool:
    return isinstance(shown, str) and shown.endswith("ms")


class Latency(Toxic):
    """delay every chunk on a link (latency, jitter)"""

    toxic_attributes = ("latency", "jitter")
    random_attributes = {"latency": "500ms", "jitter": "100ms"}  # noqa: RUF012 - read only
    kind: Literal["latency"] = "latency"
    latency: Millis
    jitter: Millis | None = None


class Bandwidth(Toxic):
    """limit a link to `rate` KB/s"""

    toxic_attributes = ("rate",)
    random_attributes = {"rate": 1}  # noqa: RUF012
    kind: Literal["bandwidth"] = "bandwidth"
    rate: Count


class SlowClose(Toxic):
    """delay the close of a link by `delay`"""

    toxic_attributes = ("delay",)
    random_attributes = {"delay": "500ms"}  # noqa: RUF012
    kind: Literal["slow_close"] = "slow_close"
    delay: Millis | None = None


class Timeout(Toxic):
    """black-hole a link; close it after `timeout` (0: never)"""

    disruptive = True
    toxic_attributes = ("timeout",)
    random_attributes = {"timeout": "0ms"}  # noqa: RUF012
    kind: Literal["timeout"] = "timeout"
    timeout: Millis | None = None


class ResetPeer(Toxic):
    """reset the connection `timeout` after data flows"""

    disruptive = True
    toxic_attributes = ("timeout",)
    random_attributes = {"timeout": "100ms"}  # noqa: RUF012
    kind: Literal["reset_peer"] = "reset_peer"
    timeout: Millis | None = None


class Slicer(Toxic):
    """slice data into ~average_size-byte pieces"""

    toxic_attributes = ("average_size", "size_variation", "delay")
    random_attributes = {"average_size": 64, "size_variation": 16, "delay": 100}  # noqa: RUF012
    kind: Literal["slicer"] = "slicer"
    average_size: Count
    size_variation: Count | None = None
    delay: Count | None = Field(default=None, description="microseconds between slices")

    @model_validator(mode="after")
    def _sizes(self) -> Slicer:
        problem = slicer_problem(self.average_size, self.size_variation)
        if problem is not None:
            raise ValueError(problem)
        return self


def slicer_problem(average_size: int, size_variation: int | None) -> str | None:
    """Either mistake panics a goroutine and kills the whole server (`research/toxiproxy.md`)."""
    if average_size <= 0 or (size_variation or 0) >= average_size:
        return (
            "slicer needs average_size > 0 and size_variation < average_size"
            " (otherwise toxiproxy-server crashes)"
        )
    return None


class LimitData(Toxic):
    """close a link after `bytes` bytes"""

    toxic_attributes = ("bytes",)
    random_attributes = {"bytes": 4096}  # noqa: RUF012
    kind: Literal["limit_data"] = "limit_data"
    bytes: Count


TOXICS: tuple[type[Toxic], ...] = (
    Latency,
    Bandwidth,
    SlowClose,
    Timeout,
    ResetPeer,
    Slicer,
    LimitData,
)
