"""Templates: the strings of a scenario that carry placeholders (`{client}`, `{id}`, `{run}`),
and dotted paths into a JSON value (`msg.id`). Pure and stdlib only, so every layer can use them
(the grammar checks them, the swarm fills them) without importing the grammar.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

_WHOLE = re.compile(r"^\{([a-z_]+)\}$")


def placeholders(value: Any) -> set[str]:
    """Every `{name}` in the strings of a JSON-like value (keys included)."""
    found: set[str] = set()
    if isinstance(value, str):
        for _, name, _, _ in string.Formatter().parse(value):
            if name is not None:
                found.add(name)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            found |= placeholders(key) | placeholders(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= placeholders(item)
    return found


def render(value: Any, values: Mapping[str, Any]) -> Any:
    """The template with its placeholders filled; `"{seq}"` alone keeps the value's type."""
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return value.format_map(values) if "{" in value else value
    if isinstance(value, Mapping):
        return {render(k, values): render(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, values) for item in value]
    return value


def dig(value: Any, path: str) -> Any:
    """The value at a dotted path (`msg.id`), or None."""
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value
