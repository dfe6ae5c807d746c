"""Trend charts as server-rendered SVG: no script, styled by the static style sheet.

:func:`layout` turns series of dated values into coordinates; ``templates/_chart.html``
draws them (polyline per series, the reference band, the threshold line, axis labels).
The chart is an image with a text alternative; the same numbers are in a table next to
it for screen readers and for reading exact values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from phr.web.service import Series

__all__ = ["Chart", "layout"]

WIDTH, HEIGHT = 640, 260
# Markers for each value only while they stay distinguishable; the line carries the trend.
MAX_MARKERS = 60
# The table under a chart: the latest values (every value is in the results by year).
TABLE_ROWS = 24
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 36


@dataclass
class Plotted:
    index: int
    code: str
    points: list[tuple[float, float, str, float, str]]  # x, y, date, value, flag

    @property
    def path(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y, *_ in self.points)


@dataclass
class Chart:
    width: int
    height: int
    series: list[Plotted]
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    markers: bool
    band: tuple[float, float] | None  # y top, y bottom of the reference (target) range
    thresholds: list[tuple[float, str]]  # y, label
    empty: bool
    first: str
    last: str
    unit: str
    # The latest numbers as a table, newest first: (date, [value text per series], source).
    rows: list[tuple[str, list[tuple[str, str]], str]]


def _nice_step(span: float) -> float:
    raw = span / 4 or 1.0
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) >= 1 or v == 0 else f"{v:.2g}"


def layout(all_series: list[Series]) -> Chart:
    points = [p for s in all_series for p in s.points]
    unit = next((s.unit for s in all_series if s.unit), "")
    if not points:
        return Chart(WIDTH, HEIGHT, [], [], [], False, None, [], True, "", "", unit, [])
    limits = [v for s in all_series for v in (s.high_from, s.low_below) if v is not None]
    values = [p.value for p in points] + limits
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or max(abs(hi) * 0.1, 1.0)
    lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo)
    lo = math.floor(lo / step) * step
    hi = math.ceil(hi / step) * step
    days = [date.fromisoformat(p.when).toordinal() for p in points]
    d0, d1 = min(days), max(days)
    if d0 == d1:
        d0, d1 = d0 - 30, d1 + 30
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM

    def x(d: int) -> float:
        return LEFT + (d - d0) / (d1 - d0) * plot_w

    def y(v: float) -> float:
        return TOP + (hi - v) / (hi - lo) * plot_h

    plotted = [
        Plotted(
            i,
            s.code,
            [
                (x(date.fromisoformat(p.when).toordinal()), y(p.value), p.when, p.value, p.flag)
                for p in s.points
            ],
        )
        for i, s in enumerate(all_series)
    ]
    y_ticks = []
    v = lo
    while v <= hi + step / 2:
        y_ticks.append((y(v), _fmt(round(v, 6))))
        v += step
    first_year, last_year = date.fromordinal(d0).year, date.fromordinal(d1).year
    years = range(first_year, last_year + 2)
    stride = max(1, math.ceil(len(years) / 8))
    x_ticks = [
        (x(date(yr, 1, 1).toordinal()), str(yr))
        for yr in years[::stride]
        if d0 <= date(yr, 1, 1).toordinal() <= d1
    ]
    band = None
    thresholds = []
    # The target range of the first series (blood pressure: systolic), drawn as a band.
    main = all_series[0]
    if main.high_from is not None:
        band = (y(min(main.high_from, hi)), y(lo))
    elif main.low_below is not None:
        band = (y(hi), y(max(main.low_below, lo)))
    for s in all_series:
        for limit in (s.high_from, s.low_below):
            if limit is not None and lo <= limit <= hi:
                thresholds.append((y(limit), _fmt(limit)))
    return Chart(
        WIDTH,
        HEIGHT,
        plotted,
        y_ticks,
        x_ticks,
        max(len(s.points) for s in all_series) <= MAX_MARKERS,
        band,
        thresholds,
        False,
        min(p.when for p in points),
        max(p.when for p in points),
        unit,
        _rows(all_series),
    )


def _rows(all_series: list[Series]) -> list[tuple[str, list[tuple[str, str]], str]]:
    """One row per date; a value and its flag ("high"/"low"/"") per series."""
    by_date: dict[str, tuple[list[tuple[str, str]], str]] = {}
    n = len(all_series)
    for i, s in enumerate(all_series):
        for p in s.points:
            values = by_date.setdefault(p.when, ([("", "")] * n, p.source))[0]
            values[i] = (f"{p.value:g}", p.flag)
    newest = sorted(by_date.items())[::-1][:TABLE_ROWS]
    return [(when, values, source) for when, (values, source) in newest]
