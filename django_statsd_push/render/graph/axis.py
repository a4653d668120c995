"""Axis arithmetic, independent of drawing: round y steps, unit-system labels, and the
time grid of the x axis. Mirrors graphite-web's choices so a graph keeps its look."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from ..errors import InputError

EPSILON = 1e-4  # fraction of a step tolerated as rounding error when placing ticks

UNITS: dict[str, tuple[tuple[str, float], ...]] = {
    "si": (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)),
    "binary": (("Pi", 1024.0 ** 5), ("Ti", 1024.0 ** 4), ("Gi", 1024.0 ** 3), ("Mi", 1024.0 ** 2), ("Ki", 1024.0)),
    "sec": (("Y", 31_536_000), ("M", 2_592_000), ("D", 86_400), ("H", 3_600), ("m", 60)),
    "msec": (("Y", 31_536_000_000), ("M", 2_592_000_000), ("D", 86_400_000), ("H", 3_600_000), ("m", 60_000),
             ("s", 1_000)),
    "none": (),
}


def scaled(value: float, step: float | None, system: str) -> tuple[float, str]:
    """``value`` in the largest unit of ``system`` that both it and the tick step reach
    (so 1500 with a 500 step stays "1500", not "1.5k" beside "1k" and "2k")."""
    for prefix, size in UNITS[system]:
        if abs(value) >= size and (step is None or step >= size):
            return value / size, prefix
    return value, ""


def tick_label(value: float, step: float | None, span: float, system: str) -> str:
    v, prefix = scaled(value, step, system)
    span_v, span_prefix = scaled(span, step, system)
    unit = prefix + " " if prefix else ""
    if v < 0.1:
        return f"{float(v):g} {unit}"
    if v < 1.0:
        return f"{v:.2f} {unit}"
    if span_v > 3 or span_prefix != prefix:
        return f"{v:.1f} {unit}"
    if span_v > 0.1:
        return f"{v:.2f} {unit}"
    return f"{float(v):g} {unit}"


@dataclass
class YAxis:
    bottom: float
    top: float
    step: float | None
    values: list[float]
    labels: list[str]
    log_base: float | None = None


def _steps(min_step: float, binary: bool):
    base, mantissas = (2.0, (1.0,)) if binary else (10.0, (1.0, 2.0, 5.0))
    exponent = math.floor(math.log(min_step, base) - EPSILON)
    while True:
        for m in mantissas:
            step = m * base ** exponent
            if step >= min_step * (1 - EPSILON):
                yield step
        exponent += 1


def _round_step(lo: float, hi: float, divisors: list[int], binary: bool) -> float:
    """The step, among 1/2/5 x 10^n (powers of two for binary units), that with one of
    ``divisors`` ticks covers [lo, hi] with the least empty space outside it."""
    spread = hi - lo
    best_step, best_slop = None, math.inf
    for step in _steps(spread / max(divisors), binary):
        if best_step is not None and step * min(divisors) >= 2 * best_slop + spread:
            return best_step
        bottom = step * math.floor(lo / step + EPSILON)
        for n in divisors:
            top = bottom + step * n
            if top >= hi - EPSILON * step:
                slop = max(top - hi, lo - bottom)
                if slop < best_slop:
                    best_step, best_slop = step, slop


def y_axis(lo: float | None, hi: float | None, *, y_min=None, y_max=None, y_limit=None, y_step=None,
           divisors=(4, 5, 6), unit_system="si", log_base=None) -> YAxis:
    """The axis for data in [lo, hi] (None: no finite data), with the user's limits."""
    if lo is None or hi is None:
        lo, hi = 0.0, 1.0
    min_fixed = y_min is not None
    max_fixed = y_max is not None and y_max != "max"
    if min_fixed:
        lo = float(y_min)
    if max_fixed:
        hi = float(y_max)
    if y_limit is not None and y_limit < hi:
        hi, max_fixed, y_limit = float(y_limit), True, None
    if lo >= hi:
        if min_fixed and max_fixed:
            raise InputError(f"graph: yMin ({lo:g}) must be less than yMax ({hi:g})")
        widen = lambda x: 1.0 if abs(x) < 1e-9 else 0.1 * abs(x)  # noqa: E731
        if min_fixed:
            hi = lo + widen(lo)
        elif max_fixed:
            lo = hi - widen(hi)
        else:
            mid, half = (lo + hi) / 2, widen(max(abs(lo), abs(hi)))
            lo, hi = mid - half, mid + half
    if log_base:
        if lo <= 0:
            raise InputError(f"graph: logBase needs values above zero, but the lowest is {lo:g} (set yMin)")
        bottom = log_base ** math.floor(math.log(lo, log_base))
        top = log_base ** math.ceil(math.log(hi, log_base))
        if top == bottom:
            top *= log_base
        values, v = [], log_base ** math.ceil(math.log(bottom, log_base) - EPSILON)
        while v < top * (1 + EPSILON):
            values.append(v)
            v *= log_base
        return YAxis(bottom, top, None, values, [tick_label(v, None, top - bottom, unit_system) for v in values],
                     log_base)
    step = float(y_step) if y_step else _round_step(lo, hi, list(divisors), unit_system == "binary")
    bottom = lo if min_fixed else step * math.floor(lo / step + EPSILON)
    top = hi if max_fixed or y_max == "max" else step * math.ceil(hi / step - EPSILON)
    if y_limit is not None and top > y_limit + EPSILON * step:
        top = float(y_limit)
    if top - bottom > 1000 * step:  # a user's yStep far too small for the range
        step = _round_step(bottom, top, [4, 5, 6], unit_system == "binary")
    first = step * math.ceil(bottom / step - EPSILON)
    count = int(math.floor((top - first) / step + EPSILON)) + 1
    values = [first + i * step for i in range(max(count, 0))]
    span = top - bottom
    return YAxis(bottom, top, step, values, [tick_label(v, step, span, unit_system) for v in values])


SEC, MIN, HOUR, DAY = 1, 60, 3600, 86400
DATE = "%m/%d"
# seconds-per-pixel threshold, minor grid, major grid, label (unit, step), label format, widest range
X_GRIDS = (
    (0.0, (SEC, 5), (MIN, 1), (SEC, 5), "%H:%M:%S", 10 * MIN),
    (0.07, (SEC, 10), (MIN, 1), (SEC, 10), "%H:%M:%S", 20 * MIN),
    (0.14, (SEC, 15), (MIN, 1), (SEC, 15), "%H:%M:%S", 30 * MIN),
    (0.27, (SEC, 30), (MIN, 2), (MIN, 1), "%H:%M", 2 * HOUR),
    (0.5, (MIN, 1), (MIN, 2), (MIN, 1), "%H:%M", 2 * HOUR),
    (1.2, (MIN, 1), (MIN, 4), (MIN, 2), "%H:%M", 3 * HOUR),
    (2, (MIN, 1), (MIN, 10), (MIN, 5), "%H:%M", 6 * HOUR),
    (5, (MIN, 2), (MIN, 10), (MIN, 10), "%H:%M", 12 * HOUR),
    (10, (MIN, 5), (MIN, 20), (MIN, 20), "%H:%M", DAY),
    (30, (MIN, 10), (HOUR, 1), (HOUR, 1), "%H:%M", 2 * DAY),
    (60, (MIN, 30), (HOUR, 2), (HOUR, 2), "%H:%M", 2 * DAY),
    (100, (HOUR, 2), (HOUR, 4), (HOUR, 4), "%a %H:%M", 6 * DAY),
    (255, (HOUR, 6), (HOUR, 12), (HOUR, 12), DATE + " %H:%M", 10 * DAY),
    (600, (HOUR, 6), (DAY, 1), (DAY, 1), DATE, 14 * DAY),
    (1000, (HOUR, 12), (DAY, 1), (DAY, 1), DATE, 365 * DAY),
    (2000, (DAY, 1), (DAY, 2), (DAY, 2), DATE, 365 * DAY),
    (4000, (DAY, 2), (DAY, 4), (DAY, 4), DATE, 365 * DAY),
    (8000, (DAY, 3.5), (DAY, 7), (DAY, 7), DATE, 365 * DAY),
    (16000, (DAY, 7), (DAY, 14), (DAY, 14), DATE, 365 * DAY),
    (32000, (DAY, 15), (DAY, 30), (DAY, 30), DATE, 365 * DAY),
    (64000, (DAY, 30), (DAY, 60), (DAY, 60), DATE + " %Y", math.inf),
    (100000, (DAY, 60), (DAY, 120), (DAY, 120), DATE + " %Y", math.inf),
    (120000, (DAY, 120), (DAY, 240), (DAY, 240), DATE + " %Y", math.inf),
)


@dataclass
class XAxis:
    minor: tuple[float, float]
    major: tuple[float, float]
    label: tuple[float, float]
    format: str


def x_axis(time_range: float, pixels: float) -> XAxis:
    per_pixel = time_range / pixels
    chosen = X_GRIDS[-1]
    for row in X_GRIDS:
        if row[0] <= per_pixel and row[5] >= time_range:
            chosen = row
    return XAxis(chosen[1], chosen[2], chosen[3], chosen[4])


def x_ticks(start: int, end: int, tz: tzinfo, unit_step: tuple[float, float]) -> list[int]:
    """Epoch seconds of the ticks in [start, end) on round local times (a 2 h grid falls
    on even hours of the request's time zone)."""
    unit, step = unit_step
    first = datetime.fromtimestamp(start, tz)
    if unit == SEC:
        t = first.replace(microsecond=0, second=first.second - first.second % int(step))
    elif unit == MIN:
        t = first.replace(microsecond=0, second=0, minute=first.minute - first.minute % int(step))
    elif unit == HOUR:
        t = first.replace(microsecond=0, second=0, minute=0, hour=first.hour - first.hour % int(step))
    else:
        t = first.replace(microsecond=0, second=0, minute=0, hour=0)
    delta = timedelta(seconds=unit * step)
    out = []
    while t.timestamp() < end and len(out) < 10_000:
        if t.timestamp() >= start:
            out.append(int(t.timestamp()))
        t += delta
    return out
