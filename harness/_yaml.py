"""YAML to plain Python, keeping where every value came from.

PyYAML's `safe_load` silently keeps the second of two duplicate keys and, following YAML 1.1,
turns `on`/`yes`/`no` into booleans (`research/reports-and-ci.md` §5). Here the text is composed
into nodes and converted by hand: duplicate keys are errors, only `true`/`false` are booleans,
and every mapping value and list item gets its 1-based (line, column) in `Located.marks`, keyed
by its path, so validation errors can point at the exact spot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

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


class YamlProblem(Exception):
    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


_SCALARS = yaml.SafeLoader("")


def load(text: str) -> Located:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlProblem(line, col, f"YAML syntax: {exc.problem or exc}") from None
    located = Located(None)
    located.value = _convert(node, (), located) if node is not None else None
    return located


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _convert(node: yaml.Node, path: Path, located: Located) -> Any:
    located.marks.setdefault(path, _pos(node))
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                line, col = _pos(key_node)
                first = located.marks.get((*path, key), (0, 0))[0]
                raise YamlProblem(
                    line, col, f"duplicate key {key!r} (first defined on line {first})"
                )
            located.marks[(*path, key)] = _pos(value_node)
            out[key] = _convert(value_node, (*path, key), located)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            located.marks[(*path, i)] = _pos(item)
            items.append(_convert(item, (*path, i), located))
        return items
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        line, col = _pos(node)
        raise YamlProblem(line, col, "a key must be a plain value")
    if node.tag == "tag:yaml.org,2002:bool" and node.value.lower() not in ("true", "false"):
        return node.value  # YAML 1.1's on/off/yes/no stay strings
    return _SCALARS.construct_object(node, deep=True)
