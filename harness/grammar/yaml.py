"""YAML to plain Python, keeping where every value came from.

PyYAML's `safe_load` silently keeps the second of two duplicate keys and, following YAML 1.1,
turns `on`/`yes`/`no` into booleans (`research/reports-and-ci.md` §5). Here the text is composed
into nodes and converted by hand: duplicate keys are errors, only `true`/`false` are booleans,
and every mapping value and list item gets its 1-based (line, column) in `Located.marks`, keyed
by its path, so validation errors can point at the exact spot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import HarnessError

Path = tuple[str | int, ...]


@dataclass
class Located:
    value: Any
    marks: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def mark(self, path: Path) -> tuple[int, int]:
        """The position of `path`, or of its nearest ancestor that has one."""
        while path not in self.marks and path:
            path = path[:-1]
        return self.marks.get(path, (1, 1))


class YamlProblem(HarnessError):
    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


MAX_BYTES = 1_000_000  # a scenario is a page of YAML; 1 MB is a thousand times that
MAX_DEPTH = 24  # the grammar nests 5 deep (faults[i].groups[j][k]); the rest is hostile
MAX_VALUES = 100_000  # after alias expansion: a billion laughs stops here, not at 3 GB


@dataclass
class _State:
    constructor: yaml.constructor.SafeConstructor
    values: int = 0
    open: set[int] = field(default_factory=set)  # nodes being converted (an alias loop)


def load(text: str) -> Located:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise YamlProblem(1, 1, f"the file is {size:,} bytes; a scenario may have {MAX_BYTES:,}")
    try:
        _check_depth(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlProblem(line, col, f"YAML syntax: {exc.problem or exc}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        message = f"character {char!r} is not allowed in YAML"
        raise YamlProblem(line, col, message) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(1, 1, f"YAML: {exc}") from None
    located = Located(None)
    # a constructor per file: PyYAML's keeps every node it ever constructed
    state = _State(yaml.constructor.SafeConstructor())
    located.value = _convert(node, (), located, state) if node is not None else None
    return located


def _check_depth(text: str) -> None:
    """Refuse deep nesting from the event stream, before the (recursive) composer sees it."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
                raise YamlProblem(line, col, f"nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _convert(node: yaml.Node, path: Path, located: Located, state: _State) -> Any:
    state.values += 1
    if state.values > MAX_VALUES:
        raise YamlProblem(*_pos(node), f"more than {MAX_VALUES:,} values (aliases expanding?)")
    if len(path) > MAX_DEPTH:
        raise YamlProblem(*_pos(node), f"nested deeper than {MAX_DEPTH} levels (through aliases)")
    if id(node) in state.open:
        raise YamlProblem(*_pos(node), "an alias refers to a value that contains it")
    located.marks.setdefault(path, _pos(node))
    if isinstance(node, yaml.MappingNode):
        state.open.add(id(node))
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, state)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                line, col = _pos(key_node)
                first = located.marks.get((*path, key), (0, 0))[0]
                raise YamlProblem(
                    line, col, f"duplicate key {key!r} (first defined on line {first})"
                )
            located.marks[(*path, key)] = _pos(value_node)
            out[key] = _convert(value_node, (*path, key), located, state)
        state.open.discard(id(node))
        return out
    if isinstance(node, yaml.SequenceNode):
        state.open.add(id(node))
        items = []
        for i, item in enumerate(node.value):
            located.marks[(*path, i)] = _pos(item)
            items.append(_convert(item, (*path, i), located, state))
        state.open.discard(id(node))
        return items
    return _scalar(node, state)


def _scalar(node: yaml.Node, state: _State) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        line, col = _pos(node)
        raise YamlProblem(line, col, "a key must be a plain value")
    if node.tag == "tag:yaml.org,2002:bool" and node.value.lower() not in ("true", "false"):
        return node.value  # YAML 1.1's on/off/yes/no stay strings
    if node.tag.startswith("!") or not node.tag.startswith("tag:yaml.org,2002:"):
        raise YamlProblem(*_pos(node), f"unknown YAML tag {node.tag!r}")
    try:
        value = state.constructor.construct_object(node, deep=True)
    except Exception:  # !!int abc, 2001-13-45, !!binary garbage: any constructor's refusal
        tag = node.tag.rsplit(":", 1)[-1]
        raise YamlProblem(*_pos(node), f"{node.value[:40]!r} is not a valid {tag}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise YamlProblem(*_pos(node), f"{node.value!r}: only finite numbers are allowed")
    if isinstance(value, bytes | set):
        raise YamlProblem(*_pos(node), f"a {type(value).__name__} value is not allowed here")
    return value
