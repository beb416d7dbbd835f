"""The scenario grammar, written once as typed models (pydantic v2).

Why pydantic and not msgspec: a scenario must report *every* problem at once, each with its
path, and pydantic collects all errors of a document with their `loc`, while msgspec stops at
the first. Pydantic also emits the JSON Schema from the same models (`harness schema`), dumps
them back (the resolved `scenario.yaml`), and takes a validation context, which carries the
cluster's nodes and links and the run's length so the cross-field rules (an unknown link, a
fault after the run's end) are ordinary field validators, located like the rest.

The fault union comes from `harness.faults` (one model per kind, discriminated by `kind`); the
`checks:` section from `harness.checkers` (one options model per checker).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    create_model,
    field_validator,
)

from ..checkers import DEFAULT_CHECKS, REGISTRY
from ..faults import AnyFault, Fault, conflict
from ..grammar.behaviour import ClientsSpec, WorkloadSpec
from ..grammar.contract import AppSpec
from ..grammar.section import Section
from ..grammar.units import Bounded, Duration, kind_of
from ._cluster import ClusterSpec

MAX_NAME = 80


CHECK_TAGS = ("check_options", "check_off")  # union tags in error locations, not keys


def _check_tag(value: Any) -> str | None:
    return CHECK_TAGS[1] if isinstance(value, str) else CHECK_TAGS[0]


def _check_options(value: Any) -> Any:
    """`{}` or nothing: the check with its defaults; `off` (or false): the check removed."""
    if value is None:
        return {}
    if value is False:
        return "off"
    return value


if TYPE_CHECKING:
    ChecksSpec = Section
else:
    ChecksSpec = create_model(
        "ChecksSpec",
        __base__=Section,
        __doc__=(
            "Checks added to the defaults (" + ", ".join(DEFAULT_CHECKS) + ") with their"
            " options; `off` removes a default, with a warning wherever the verdict goes"
        ),
        **{
            check.name: (
                Annotated[
                    Annotated[
                        Annotated[check.options, Tag(CHECK_TAGS[0])]
                        | Annotated[Literal["off"], Tag(CHECK_TAGS[1])],
                        Discriminator(_check_tag),
                    ]
                    | None,
                    BeforeValidator(_check_options),
                    Field(description=check.description),
                ],
                None,
            )
            for check in REGISTRY
        },
    )


def _name(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {kind_of(value)}")
    if len(value) > MAX_NAME:
        raise ValueError(f"at most {MAX_NAME} characters (it names a directory), got {len(value)}")
    if not re.fullmatch(r"[A-Za-z0-9._-]+", value):
        raise ValueError("use letters, digits, '.', '_' and '-' only (it names a directory)")
    return value


def _positive(duration: float) -> float:
    if duration <= 0:
        raise ValueError("must be longer than 0s")
    return duration


class Scenario(Section):
    """A channel chaos scenario: the cluster, the clients, the workload, the faults, the checks."""

    name: Annotated[
        str,
        BeforeValidator(_name),
        Field(json_schema_extra={"pattern": r"^[A-Za-z0-9._-]+$"}),
    ]
    description: Annotated[str, BeforeValidator(str)] = ""
    seed: Annotated[int, Bounded(0)] = 0
    duration: Duration
    settle: Duration = 3.0
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    clients: ClientsSpec = Field(default_factory=ClientsSpec)
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec)
    app: AppSpec = Field(default_factory=AppSpec)
    faults: tuple[AnyFault, ...] = ()
    checks_spec: ChecksSpec | None = Field(default=None, alias="checks")
    _source: str = PrivateAttr("<scenario>")

    _positive_duration = field_validator("duration")(_positive)

    @field_validator("cluster", "clients", "workload", "app", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("faults", mode="before")
    @classmethod
    def _a_list(cls, value: Any) -> Any:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise ValueError(f"expected a list of faults, got {kind_of(value)}")
        return value

    @field_validator("faults")
    @classmethod
    def _one_at_a_time(cls, faults: tuple[Fault, ...]) -> tuple[Fault, ...]:
        for i, fault in enumerate(faults):
            clash = conflict(faults[:i], fault)
            if clash is not None:
                j, node = clash
                raise ValueError(
                    f"faults[{i}] ({fault.kind_name()} at {fault.at:g}s) holds {node} while"
                    f" faults[{j}] ({faults[j].kind_name()} at {faults[j].at:g}s) still does;"
                    " one node fault at a time per node"
                )
        return faults

    @property
    def source(self) -> str:
        return self._source

    @property
    def links(self) -> tuple[str, ...]:
        return self.cluster.links

    @property
    def checks(self) -> dict[str, dict[str, Any]]:
        """Check name -> its options (seconds and fractions), in the registry's order: the
        defaults, plus every check the scenario names, less those it turns `off`. Naming a
        check only adds (a latency threshold never drops at_most_once); removing one takes an
        explicit `off`, which `checks_off` lists for the warnings."""
        named: dict[str, Any] = {}
        if self.checks_spec is not None:
            named = {
                name: getattr(self.checks_spec, name)
                for name in type(self.checks_spec).model_fields
                if getattr(self.checks_spec, name) is not None
            }
        out: dict[str, dict[str, Any]] = {}
        for check in REGISTRY:
            options = named.get(check.name)
            if options == "off":
                continue
            if options is not None:
                out[check.name] = options.model_dump(exclude_none=True)
            elif check.name in DEFAULT_CHECKS:
                out[check.name] = {}
        return out

    @property
    def checks_off(self) -> tuple[str, ...]:
        """Default checks the scenario turned off (`at_most_once: off`)."""
        if self.checks_spec is None:
            return ()
        return tuple(
            name
            for name in type(self.checks_spec).model_fields
            if getattr(self.checks_spec, name) == "off" and name in DEFAULT_CHECKS
        )

    def with_faults(self, faults: tuple[Fault, ...], seed: int) -> Scenario:
        scenario = self.model_copy(update={"faults": faults, "seed": seed})
        scenario._source = self._source
        return scenario
