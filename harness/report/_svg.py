"""SVG geometry as data: the report's charts are computed here (pure) and printed by a template.

A chart is a list of `Mark`s (a shape, its attributes, the tooltip every mark carries as an SVG
`<title>`, and text for labels) inside a fixed coordinate box (`viewBox`), so the page scales it
to the screen's width with no script. `Axis` maps data to that box (linear, or log10 for
latencies) and picks round tick values; `chart()` draws the frame, the ticks and the axis
titles with their units around the marks the caller made.

Why not a plotting library: the ones that emit SVG (matplotlib, plotly, altair) either need a
script to read the chart or produce megabytes per chart and no per-mark tooltip we control;
the report must be readable with scripts off and stay under 5 MB for a large run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH = 1200.0  # every chart's viewBox width; the page scales it to 100%
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 64.0, 16.0, 12.0, 34.0


@dataclass(frozen=True, slots=True)
class Mark:
    """One SVG element: `shape` (rect, line, circle, polyline, text), attributes, a tooltip."""

    shape: str
    attrs: tuple[tuple[str, str], ...]
    title: str = ""
    text: str = ""


def mark(shape: str, title: str = "", text: str = "", **attrs: float | str) -> Mark:
    """A mark; numbers rounded to 0.1 (the size of the page), `class_` for `class`."""
    items = tuple(
        (k.rstrip("_").replace("_", "-"), f"{v:.1f}" if isinstance(v, float) else str(v))
        for k, v in attrs.items()
    )
    return Mark(shape, items, title, text)


@dataclass(frozen=True, slots=True)
class Axis:
    """Data `low..high` onto pixels `start..end` (end < start for a y axis: up is more)."""

    low: float
    high: float
    start: float
    end: float
    log: bool = False

    def __call__(self, value: float) -> float:
        low, high, v = self.low, self.high, value
        if self.log:
            low, high, v = (math.log10(max(x, 1e-9)) for x in (low, high, value))
        span = (high - low) or 1.0
        return self.start + (min(max(v, low), high) - low) / span * (self.end - self.start)

    def ticks(self, count: int = 6) -> list[float]:
        if self.log:
            lo, hi = math.floor(math.log10(self.low)), math.ceil(math.log10(self.high))
            return [10.0**p for p in range(lo, hi + 1) if self.low <= 10.0**p <= self.high]
        step = nice_step((self.high - self.low) / max(count, 1))
        first = math.ceil(self.low / step) * step
        return [first + i * step for i in range(int((self.high - first) / step + 1e-9) + 1)]


def nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least `raw`."""
    if raw <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def label(value: float) -> str:
    """A tick's text: no trailing zeros, thousands separated."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


@dataclass(frozen=True, slots=True)
class Legend:
    color: str
    text: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A titled chart: its box, its marks (frame and ticks included), its legend."""

    key: str
    title: str
    caption: str
    height: float
    marks: tuple[Mark, ...]
    legend: tuple[Legend, ...] = ()
    width: float = WIDTH
    empty: str = ""  # why there is nothing to draw, said instead of the chart


@dataclass(slots=True)
class Frame:
    """The plot area of a chart and its two axes, made by `frame()`."""

    x: Axis
    y: Axis
    marks: list[Mark] = field(default_factory=list)


def frame(
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    height: float,
    *,
    x_title: str,
    y_title: str,
    x_log: bool = False,
    width: float = WIDTH,
    x_ticks: Sequence[float] | None = None,
    top: float = 0.0,
) -> Frame:
    """Axes, grid lines, tick labels and the axis titles (with units) of a plot area `height`
    tall, `top` down the chart (small multiples stack their frames); no x title when empty."""
    bottom = top + height - PAD_BOTTOM
    x = Axis(x_range[0], x_range[1], PAD_LEFT, width - PAD_RIGHT, log=x_log)
    y = Axis(y_range[0], y_range[1], bottom, top + PAD_TOP)
    marks = [
        mark("line", x1=PAD_LEFT, x2=width - PAD_RIGHT, y1=bottom, y2=bottom, class_="axis"),
        mark("line", x1=PAD_LEFT, x2=PAD_LEFT, y1=top + PAD_TOP, y2=bottom, class_="axis"),
    ]
    for value in y.ticks(4):
        marks.append(
            mark("line", x1=PAD_LEFT, x2=width - PAD_RIGHT, y1=y(value), y2=y(value), class_="grid")
        )
        marks.append(
            mark(
                "text",
                text=label(value),
                x=PAD_LEFT - 4,
                y=y(value) + 3,
                class_="tick",
                text_anchor="end",
            )
        )
    for value in x_ticks if x_ticks is not None else x.ticks(10):
        marks.append(
            mark("line", x1=x(value), x2=x(value), y1=bottom, y2=bottom + 4, class_="axis")
        )
        marks.append(
            mark(
                "text",
                text=label(value),
                x=x(value),
                y=bottom + 14,
                class_="tick",
                text_anchor="middle",
            )
        )
    if x_title:
        marks.append(
            mark(
                "text",
                text=x_title,
                x=(PAD_LEFT + width - PAD_RIGHT) / 2,
                y=top + height - 4,
                class_="axt",
                text_anchor="middle",
            )
        )
    middle = (top + PAD_TOP + bottom) / 2
    marks.append(
        mark(
            "text",
            text=y_title,
            x=12,
            y=middle,
            class_="axt",
            text_anchor="middle",
            transform=f"rotate(-90 12 {middle:.1f})",
        )
    )
    return Frame(x, y, marks)


def polyline(points: Sequence[tuple[float, float]], color: str, title: str, **attrs: str) -> Mark:
    path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    return mark(
        "polyline", title=title, points=path, fill="none", stroke=color, stroke_width="1.5", **attrs
    )
