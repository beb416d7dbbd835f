"""Reading a scenario: YAML text -> a `Scenario`, or every problem at once, located.

`parse_scenario(text, source)` composes the YAML with positions (`harness.grammar.yaml`: duplicate
keys are errors, YAML 1.1 booleans stay strings), reads the cluster and the run's length first
(the validation context: which nodes and links exist, when the run ends), then validates the
whole document against the models. Each pydantic error becomes a `Problem` at
`file:line:col: dotted.path: message` (GCC style, so editors jump there), in words a person
would use, with "did you mean" for misspelt keys and kinds.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import InvalidScenario, Problem
from ..faults import KINDS, Grammar
from ..grammar.contract import READ_TAGS
from ..grammar.units import kind_of, parse_duration
from ..grammar.yaml import Located, YamlProblem, load
from ._cluster import PROBE_TAGS, ClusterSpec
from ._model import CHECK_TAGS, Scenario


def parse_scenario(
    text: str, source: str = "<scenario>", overrides: Sequence[str] = ()
) -> Scenario:
    """`overrides` are `KEY=VALUE` (`clients.count=50`, the value read as YAML), applied over the
    document before it is validated, as `harness run --set` gives them."""
    try:
        located = load(text)
    except YamlProblem as exc:
        raise InvalidScenario([Problem(source, exc.line, exc.column, "", exc.message)]) from None
    for override in overrides:
        _override(located.value, override)
    if not isinstance(located.value, dict):
        line, column = located.mark(())
        raise InvalidScenario(
            [
                Problem(
                    source,
                    line,
                    column,
                    "",
                    "a scenario is a YAML mapping (name, duration, cluster, clients, ...)",
                )
            ]
        )
    data = located.value
    try:
        scenario = Scenario.model_validate(data, context=_grammar(data))
    except ValidationError as exc:
        problems = [_problem(error, located, source) for error in exc.errors()]
        keys = [o.partition("=")[0] for o in overrides]
        problems = [_from_override(p, keys) for p in problems]
        raise InvalidScenario(problems) from None
    scenario._source = source
    return scenario


def read_scenario(path: Path, overrides: Sequence[str] = ()) -> Scenario:
    """`parse_scenario` of a file; bytes that are not UTF-8 are a problem at their line, not a
    traceback. OSError (missing, unreadable) is the caller's to report."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        message = f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded"
        raise InvalidScenario([Problem(str(path), line, column, "", message)]) from None
    return parse_scenario(text, str(path), overrides)


def _from_override(problem: Problem, keys: Sequence[str]) -> Problem:
    """A problem in a value that `--set` gave is placed there, not at the file's old line."""
    for key in keys:
        if problem.path == key or problem.path.startswith((key + ".", key + "[")):
            return Problem("--set", 1, 1, problem.path, problem.message)
    return problem


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+|\+)\]")


def _path(key: str) -> list[str | int] | None:
    """`faults[0].at` -> ["faults", 0, "at"]; `faults[+]` appends (-1); None if malformed."""
    steps: list[str | int] = []
    at = 0
    while at < len(key):
        if key[at] == "." and steps and at + 1 < len(key) and key[at + 1] != "[":
            at += 1
        match = _STEP.match(key, at)
        if match is None:
            return None
        name, index = match.groups()
        steps.append(name if name is not None else (-1 if index == "+" else int(index)))
        at = match.end()
    return steps or None


def _override(data: Any, override: str) -> None:
    """`KEY=VALUE` over the document: KEY a dotted path that may index a list (`faults[0].at`,
    `faults[+]` to append one), VALUE read as YAML; a problem is placed at `--set`."""
    key, sep, raw = override.partition("=")
    steps = _path(key) if sep else None
    if not steps:
        message = "expected KEY=VALUE, e.g. clients.count=50 or 'faults[0].at=5s'"
        raise InvalidScenario([Problem("--set", 1, 1, key, message)])
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise InvalidScenario([Problem("--set", 1, 1, key, f"not a YAML value: {exc}")]) from None
    node = data
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        where = _dotted(steps[:i]) or "the scenario"
        if isinstance(step, str):
            if not isinstance(node, dict):
                raise InvalidScenario([Problem("--set", 1, 1, key, f"{where} is not a mapping")])
            if last:
                node[step] = value
            else:
                node = node.setdefault(step, [] if isinstance(steps[i + 1], int) else {})
            continue
        if not isinstance(node, list):
            raise InvalidScenario([Problem("--set", 1, 1, key, f"{where} is not a list")])
        if step == -1:  # `[+]`: a new item at the end
            node.append(value if last else {})
            node = node[-1]
        elif step < len(node):
            if last:
                node[step] = value
            else:
                node = node[step]
        else:
            said = f"{where} has {len(node)} items; [{step}] is not one (use [+] to add one)"
            raise InvalidScenario([Problem("--set", 1, 1, key, said)])


def _grammar(data: dict[str, Any]) -> Grammar:
    """The cluster and the run's length, as far as they can be read on their own."""
    try:
        cluster = ClusterSpec.model_validate(data.get("cluster") or {})
    except ValidationError:
        cluster = ClusterSpec()
    try:
        duration: float | None = parse_duration(data.get("duration"))
    except ValueError:
        duration = None
    return Grammar(cluster.topology, duration)


def _problem(error: Any, located: Located, source: str) -> Problem:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind = error["type"]
    path = _data_path(loc, located.value)
    ctx = error.get("ctx") or {}
    if kind == "value_error":
        message = str(ctx.get("error", error["msg"]))
    elif kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1], located.value)
        key = str(loc[-1])
        hint = difflib.get_close_matches(key, allowed, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        message = f"unknown key {key!r}{suggestion}"
    elif kind == "missing":
        message = _missing(path, str(loc[-1]), located.value)
    elif kind == "union_tag_invalid":
        tag = str(ctx.get("tag"))
        hint = difflib.get_close_matches(tag, list(KINDS), n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        message = f"expected one of {', '.join(KINDS)}, got {tag!r}{suggestion}"
        path = (*path, "kind")
    elif kind == "union_tag_not_found":
        message = "missing required key 'kind' (the fault's kind)"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"expected a mapping, got {kind_of(error.get('input'))}"
    elif kind == "literal_error" and len(path) == 2 and path[0] == "checks":
        message = f"expected the check's options (a mapping) or off, got {error.get('input')!r}"
    elif kind in ("tuple_type", "list_type"):
        message = f"expected a list, got {kind_of(error.get('input'))}"
    else:
        message = str(error["msg"])
    line, column = located.mark(path)
    return Problem(source, line, column, _dotted(path), message)


def _missing(path: tuple[str | int, ...], key: str, data: Any) -> str:
    parent = _at(path, data)
    if len(path) == 2 and path[0] == "faults" and isinstance(parent, dict):
        return f"a {parent.get('kind')} fault needs {key!r}"
    return f"missing required key {key!r}"


def _data_path(loc: Sequence[str | int], data: Any) -> tuple[str | int, ...]:
    """The part of pydantic's `loc` that names places in the document (union tags and the
    index that a lone value was wrapped in are not in it)."""
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        tag = i > 0 and isinstance(loc[i - 1], int)
        if tag and isinstance(node, dict) and node.get("kind") == part:
            continue  # the fault union's tag
        if part in READ_TAGS or part in PROBE_TAGS or part in CHECK_TAGS:
            continue  # a union's tag (the app's read, the readiness probe)
        if isinstance(node, dict) and part in node:  # noqa: SIM114 - typed apart for mypy
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break  # a missing key: the problem is placed at its mapping
        path.append(part)
    return tuple(path)


def _at(path: Sequence[str | int], data: Any) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _allowed_keys(loc: Sequence[str | int], data: Any) -> list[str]:
    """The keys the model at `loc` takes (its fields' YAML names)."""
    models: list[type[BaseModel]] = [Scenario]
    for part in loc:
        if isinstance(part, int):
            continue
        tagged: list[type[BaseModel]] = [m for m in models if part in KINDS and m is KINDS[part]]
        if tagged:
            models = tagged
            continue
        following: list[type[BaseModel]] = []
        for model in models:
            for name, field in model.model_fields.items():
                if part in (name, field.alias):
                    following.extend(_models_in(field.annotation))
        models = following
    keys: list[str] = []
    for model in models:
        keys.extend(field.alias or name for name, field in model.model_fields.items())
    return keys


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = get_origin(annotation)
    if origin is Annotated:
        return _models_in(get_args(annotation)[0])
    if origin in (Union, types.UnionType, tuple, list):
        return [m for arg in get_args(annotation) if arg is not Ellipsis for m in _models_in(arg)]
    return []


def _dotted(path: Sequence[str | int]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")
