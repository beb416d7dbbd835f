"""Foreign data: what the server under test sends is untrusted input, and this is its one rule.

The server a team points the harness at is buggy by assumption: that is why they test it. So
nothing it sends may crash the harness, reach a terminal, a CI log, a JUnit file or a report
unescaped, or grow memory and artefacts without bound. Pure: bytes and values in, values out.

**JSON** (`loads`), everywhere the server's bytes are decoded (websocket frames through the
protocol codec with `MAX_DEPTH`, HTTP health, stats and read answers, push reads): strict JSON
(orjson: no NaN or Infinity, no number beyond a double, valid UTF-8, no lone surrogate), at most
`MAX_DEPTH` levels deep (orjson reads 1,024 but writes about 254, so a deeper value could never
be written to the history), within a size limit. Anything else is a `BadAnswer` (an HTTP
answer) or a bad frame (`harness.phoenix.RemoteProtocolError`), with its reason.

**Values** recorded in the history (`bounded`): strings past `MAX_TEXT` characters are cut (with
their length said), containers past `MAX_ITEMS` items and `MAX_DEPTH` levels are cut, bytes are
described, so an op can always be written and no artefact grows with what the server sends.

**Ids** (`id_text`): the harness's own message ids are strings; a server may put anything at the
id's path. Every value gets one canonical string (a string is itself; anything else its compact
JSON, `[1,2]`), cut past `MAX_ID` characters with its length and a digest (two different long
ids stay two ids), so a checker never meets an unhashable id.

**Text** (`safe(text, sink)`): the one function that makes foreign text safe for a sink, used by
every sink. Common to all: cut to `CLIP` characters with the full length said, control
characters (C0, DEL, C1, line and paragraph separators, bidirectional overrides) shown escaped,
so a text is one line. Then per sink: `terminal` (no line may start a GitHub workflow command:
`::` gets a leading space), `xml` (nothing XML 1.0 forbids; ElementTree escapes the markup),
`markdown` (a table cell: pipes and HTML escaped), `annotation` (GitHub's `%`, CR and LF
escaping), `html` (Jinja2's autoescape does the markup; this does the rest).
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, Literal

import orjson

from .errors import HarnessError
from .phoenix import within_depth

MAX_DEPTH = 64  # levels of foreign JSON taken in (an op adds ~3; orjson writes ~254)
# bytes of an answer (a final read: ~200,000 messages); orjson takes up to 12 bytes of memory
# a byte of the worst JSON (`[[[[...`), so this also bounds the memory a read may cost
MAX_ANSWER = 16 * 2**20
MAX_SMALL_ANSWER = 2**20  # bytes of a health or stats answer
MAX_TEXT = 1000  # characters of one foreign string kept in the history
MAX_ITEMS = 100  # items of one foreign list or object kept in the history
MAX_ID = 256  # characters of a foreign id kept (past it: a prefix, the length and a digest)
CLIP = 200  # characters of foreign text in any message a person reads

Sink = Literal["terminal", "xml", "markdown", "annotation", "html"]


class BadAnswer(HarnessError, ConnectionError):
    """An HTTP answer the harness will not take: over its size limit, deeper than `MAX_DEPTH`,
    not strict JSON where JSON was required. A `ConnectionError`, so a caller that treats a
    broken answer as "no answer" (a health probe) needs nothing new."""


def loads(data: bytes | str, *, what: str = "answer", limit: int = MAX_ANSWER) -> Any:
    """Strict JSON within `limit` bytes and `MAX_DEPTH` levels; `BadAnswer` otherwise."""
    if len(data) > limit:
        raise BadAnswer(f"{what} of {len(data):,} bytes is over the limit of {limit:,}")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadAnswer(f"{what} is not strict JSON: {clip(str(exc))}") from None
    if not within_depth(data, value, MAX_DEPTH):
        raise BadAnswer(f"{what} is nested deeper than {MAX_DEPTH} levels")
    return value


def id_text(value: Any) -> str | None:
    """A message id as one canonical string (None stays None: no id at the path)."""
    if value is None:
        return None
    if type(value) is str:
        text = value
    else:
        try:
            text = orjson.dumps(bounded(value), option=orjson.OPT_SORT_KEYS).decode()
        except (TypeError, orjson.JSONEncodeError):
            text = repr(value)
    if len(text) <= MAX_ID:
        return text
    digest = hashlib.sha256(text.encode(errors="surrogatepass")).hexdigest()[:16]
    return f"{text[:CLIP]}… ({len(text):,} characters, sha256 {digest})"


def bounded(value: Any, *, max_depth: int = MAX_DEPTH) -> Any:
    """A JSON-writable copy of a foreign value with every string, container and level cut to
    the limits above (a value within them comes back equal)."""
    return _bounded(value, max_depth)


def _bounded(value: Any, levels: int) -> Any:
    if value is None or isinstance(value, bool | int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return repr(value)  # never from orjson; from elsewhere, say what it was
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else _cut(value, MAX_TEXT)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value):,} bytes>"
    if levels <= 1:
        return f"<{type(value).__name__} nested deeper than {MAX_DEPTH} levels>"
    if isinstance(value, dict):
        items = list(value.items())
        out = {str(k)[:MAX_TEXT]: _bounded(v, levels - 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["…"] = f"{len(items) - MAX_ITEMS:,} more keys"
        return out
    if isinstance(value, list | tuple):
        out_list = [_bounded(v, levels - 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            out_list.append(f"… {len(value) - MAX_ITEMS:,} more items")
        return out_list
    return clip(repr(value))


def _cut(text: str, keep: int) -> str:
    return f"{text[:keep]}… ({len(text):,} characters)"


def clip(text: str, limit: int = CLIP) -> str:
    """`text` cut to `limit` characters, saying its full length when it was cut."""
    return text if len(text) <= limit else _cut(text, limit)


# C0 and C1 controls, DEL, line/paragraph separators, bidirectional embeddings and isolates
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_control(match: re.Match[str]) -> str:
    c = match.group()
    if c in _ESCAPES:
        return _ESCAPES[c]
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def one_line(text: str) -> str:
    """Control characters shown escaped (a newline as `\\n`, ESC as `\\x1b`): one line of text
    that moves no cursor, rings no bell and sets no title."""
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return _CONTROL.sub(_escape_control, text)


def safe(text: Any, sink: Sink, *, limit: int = CLIP) -> str:
    """Foreign text made safe for `sink` (see the module's docstring)."""
    shown = one_line(clip(str(text), limit))
    if sink == "terminal":
        return " " + shown if shown.startswith("::") else shown
    if sink == "markdown":  # `<` and `&` could open HTML; `>` reads as itself
        return shown.replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|")
    if sink == "annotation":
        return shown.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return shown  # xml, html: the writer escapes the markup


def safe_lines(text: str, sink: Sink = "terminal", *, limit: int = 4000) -> str:
    """A text of several lines (the harness's own line breaks) with each line made safe."""
    return "\n".join(safe(line, sink, limit=limit) for line in str(text).split("\n"))
