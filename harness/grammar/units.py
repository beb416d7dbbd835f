"""The value types of the scenario grammar: durations, rates, fractions, counts, choices.

Each is a pydantic `Annotated` type: a before-validator that parses the YAML value (and says in
plain words what it expected), and the JSON Schema an editor sees for it. They are the one home
of the duration and rate syntax: the scenario models, the fault kinds and the checkers' options
all use them, and the published schema is generated from them.

    Duration   `800ms`, `5s`, `2m`, `1h` or a number of seconds -> seconds (float)
    Millis     the same, kept as whole milliseconds (Toxiproxy's unit)
    Rate       `50/s`, `3000/m` or a number per second -> messages per second
    Fraction   a number within [0, 1] or a percentage (`90%`)
    ClientShare  a count of clients (`3`) or a percentage of them (`10%`)

Pure: no I/O. The dump side (`seconds_text`, `millis_text`) writes a value back the way a person
would, so a resolved scenario reads like the one it came from.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic_core import core_schema

DURATION_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$"
RATE_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m)\s*$"
SHARE_PATTERN = r"^\d+(\.\d+)?%$"
_DURATION = re.compile(DURATION_PATTERN)
_RATE = re.compile(RATE_PATTERN)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def kind_of(value: Any) -> str:
    """How a YAML value is named in an error message."""
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


MAX_WHOLE = 2**53  # every count and seed stays exact in JSON and fits Toxiproxy's int64
MAX_DURATION = 7 * 24 * 3600.0  # a week: longer is a typo, and 1e300 s overflows every clock
MAX_RATE = 100_000.0  # messages/s: ten times what one reference node fans out to a room


def _number(value: int | float, what: str, bound: float) -> float:
    if isinstance(value, int) and value.bit_length() > 64:
        raise ValueError(f"{what} {str(value)[:12]}... is out of range (at most {bound:g})")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    if number < 0:
        raise ValueError(f"{what} cannot be negative")
    if number > bound:
        raise ValueError(f"{what} {number:g} is out of range (at most {bound:g})")
    return number


def parse_duration(value: Any) -> float:
    """`800ms`, `5s`, `2m`, `1h`, or a number of seconds -> seconds (at most a week)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 800ms, 5s or 2m")
    if isinstance(value, int | float):
        return _number(value, "a duration", MAX_DURATION)
    match = _DURATION.match(str(value)[:64])
    if not match:
        raise ValueError(f"expected a duration like 800ms, 5s or 2m, got {str(value)[:40]!r}")
    return _number(float(match.group(1)) * _UNITS[match.group(2)], "a duration", MAX_DURATION)


def parse_rate(value: Any) -> float:
    """`50/s`, `3000/m`, or a number per second -> messages per second (at most 100,000/s)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number(value, "a rate", MAX_RATE)
    match = _RATE.match(str(value)[:64])
    if not match:
        raise ValueError(f"expected a rate like 50/s or 3000/m, got {str(value)[:40]!r}")
    per = 1.0 if match.group(2) == "s" else 60.0
    return _number(float(match.group(1)) / per, "a rate", MAX_RATE)


def parse_fraction(value: Any) -> float:
    if isinstance(value, str) and value.endswith("%"):
        with contextlib.suppress(ValueError):
            value = float(value[:-1]) / 100
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        # (NaN fails `0 <= value` too)
        raise ValueError(f"expected a fraction between 0 and 1 (or a percentage), got {value!r}")
    return float(value)


def whole(low: int, high: int | None = None) -> Callable[[Any], int]:
    """A whole number within [low, high]; booleans are not numbers here."""

    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {kind_of(value)} {value!r}")
        if high is None and value > MAX_WHOLE:
            raise ValueError(f"{str(value)[:12]}... is out of range (at most 2**53)")
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"must be {bound}, got {value}")
        return value

    return convert


def one_of(options: Sequence[str]) -> Callable[[Any], str]:
    """One of `options`, with a did-you-mean for a near miss."""

    def convert(value: Any) -> str:
        if value not in options:
            hint = difflib.get_close_matches(str(value), list(options), n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(f"expected one of {', '.join(options)}, got {value!r}{suggestion}")
        return str(value)

    return convert


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {kind_of(value)}")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _share(value: Any) -> int | str:
    if isinstance(value, str) and re.fullmatch(SHARE_PATTERN, value):
        if not 0 < float(value[:-1]) <= 100:
            raise ValueError("a percentage of clients must be within (0, 100]")
        return value
    return whole(1)(value)


def _millis(value: Any) -> int:
    return round(parse_duration(value) * 1000)


def seconds_text(value: float) -> str:
    return f"{value:g}s"


def millis_text(value: int) -> str:
    return f"{value}ms"


DURATION_SCHEMA: dict[str, Any] = {
    "description": "a duration: 800ms, 5s, 2m, or a number of seconds",
    "anyOf": [
        {"type": "string", "pattern": DURATION_PATTERN},
        {"type": "number", "minimum": 0},
    ],
}

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(seconds_text, when_used="json"),
    WithJsonSchema(DURATION_SCHEMA),
]
Millis = Annotated[
    int,
    BeforeValidator(_millis),
    PlainSerializer(millis_text, when_used="json"),
    WithJsonSchema(DURATION_SCHEMA),
]
Rate = Annotated[
    float,
    BeforeValidator(parse_rate),
    PlainSerializer(lambda rate: f"{rate:g}/s", when_used="json"),
    WithJsonSchema(
        {
            "description": "messages per second: 50/s, 3000/m, or a number",
            "anyOf": [
                {"type": "string", "pattern": RATE_PATTERN},
                {"type": "number", "minimum": 0},
            ],
        }
    ),
]
Fraction = Annotated[
    float,
    BeforeValidator(parse_fraction),
    WithJsonSchema(
        {
            "description": "a fraction within [0, 1], or a percentage such as 90%",
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 1},
                {"type": "string", "pattern": r"^\d+(\.\d+)?%$"},
            ],
        }
    ),
]
ClientShare = Annotated[
    int | str,
    BeforeValidator(_share),
    WithJsonSchema(
        {
            "description": "a number of clients, or a percentage of them (10%)",
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": SHARE_PATTERN},
            ],
        }
    ),
]
Text = Annotated[str, BeforeValidator(_text)]
Flag = Annotated[bool, BeforeValidator(_flag)]


@dataclass(frozen=True, slots=True)
class Bounded:
    """`Annotated[int, Bounded(1, 9)]`: a whole number within the bounds (no booleans)."""

    low: int
    high: int | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(
            whole(self.low, self.high), handler(source)
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer", "minimum": self.low}
        if self.high is not None:
            out["maximum"] = self.high
        return out


@dataclass(frozen=True, slots=True)
class OneOf:
    """`Annotated[Literal[...], OneOf(options)]`: the Literal's enum, with a did-you-mean."""

    options: tuple[str, ...]

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(one_of(self.options), handler(source))
