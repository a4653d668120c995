"""Calculate: moving windows, percentiles, aggregate lines and moving standard deviation."""

from __future__ import annotations

import inspect
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import aggfuncs
from ..errors import InputError
from ..registry import Param, render_function
from ..series import fmt_g
from ..timeparse import interval_seconds
from .common import percentile
from .graph import constant_line

SERIES = Param("seriesList", "seriesList", required=True)
WINDOW = Param("windowSize", "intOrInterval", required=True,
               suggestions=(5, 7, 10, "1min", "5min", "10min", "30min", "1hour"))


def _window_values(values: np.ndarray, points: int, func: str, xff: float) -> np.ndarray:
    """Value i is ``func`` over the ``points`` values *before* point i + points (graphite's
    movingWindow: the current point is not in its own window)."""
    n = len(values)
    if points <= 0:
        return np.full(n, np.nan)
    if points >= n:
        return np.empty(0)
    valid = ~np.isnan(values)
    counts = np.concatenate(([0], np.cumsum(valid)))
    count = counts[points:n] - counts[: n - points]
    ok = (count > 0) & (count / points >= xff)
    if func in ("sum", "average", "avg_zero"):
        sums = np.concatenate(([0.0], np.cumsum(np.where(valid, values, 0.0))))
        total = sums[points:n] - sums[: n - points]
        result = total if func == "sum" else total / np.maximum(count, 1)
    elif func == "count":
        result = count.astype(np.float64)
    else:
        windows = sliding_window_view(values, points)[: n - points]
        result = np.nanprod(windows, axis=1) if func == "multiply" else aggfuncs.reduce(windows, func, 1)
    return np.where(ok, result, np.nan)


def _windowed(ctx, seriesList, windowSize, func: str):
    """The call's first argument re-read from one window before ``from``, so its first
    points have a full window: ``(seconds read early, [(series, window in points)])``.
    A time window (``"5min"``) is counted in each series' own steps; a point count reads
    early by that many steps of the coarsest series."""
    if isinstance(windowSize, str):
        preview = interval_seconds(windowSize)
    else:
        if windowSize < 0:
            raise InputError(f"{func}: windowSize must not be negative")
        preview = max(s.step for s in seriesList) * int(windowSize)
    reread = ctx.shifted(start=ctx.start - preview).reevaluate_first_argument()
    return preview, [(s, preview // s.step if isinstance(windowSize, str) else int(windowSize)) for s in reread]


def _window_name(func: str, s, windowSize) -> str:
    """graphite-web quotes a time window in the name, not a point count."""
    if isinstance(windowSize, str):
        return f'{func}({s.name},"{windowSize}")'
    return f"{func}({s.name},{windowSize})"


@render_function("Calculate", [SERIES, WINDOW, Param("func", "aggFunc", default="average"),
                               Param("xFilesFactor", "float")])
def movingWindow(ctx, seriesList, windowSize, func="average", xFilesFactor=None):
    """Each point becomes ``func`` (average, sum, min, max, median, ...) of the values in the
    window before it: ``windowSize`` points (an integer) or a time span (a string such as
    ``"5min"``). Data from before ``from`` is read so the first points have a full window. A
    window needs non-null values for at least ``xFilesFactor`` of its points (default: the
    series' own).

    Example:

    .. code-block:: none

      &target=movingWindow(Server.instance01.threads.busy,10)
      &target=movingWindow(Server.instance*.threads.idle,'5min','median',0.5)
    """
    if not seriesList:
        return []
    canonical = aggfuncs.canonical(func)
    tag = "moving" + func[:1].upper() + func[1:].lower()
    preview, windowed = _windowed(ctx, seriesList, windowSize, "movingWindow")
    out = []
    for s, points in windowed:
        xff = xFilesFactor if xFilesFactor is not None else s.xff
        values = _window_values(s.values, points, canonical, xff)
        out.append(s.with_tag(tag, windowSize, name=_window_name(tag, s, windowSize), start=s.start + preview,
                              values=values))
    return out


def _moving(func: str, name: str, what: str):
    def impl(ctx, seriesList, windowSize, xFilesFactor=None):
        return movingWindow(ctx, seriesList, windowSize, func, xFilesFactor)

    doc = f"""Each point becomes the {what} of the values in the window before it: ``windowSize``
    points (an integer) or a time span (a string such as ``"5min"``), with data read from
    before ``from`` so the first points have a full window. A window needs non-null values
    for at least ``xFilesFactor`` of its points (default: the series' own). The same as
    ``movingWindow(seriesList, windowSize, "{func}")``.

    Example:

    .. code-block:: none

      &target={name}(Server.instance01.threads.busy,10)
      &target={name}(Server.instance*.threads.idle,'5min')
    """
    return render_function("Calculate", [SERIES, WINDOW, Param("xFilesFactor", "float")], name=name,
                           doc=inspect.cleandoc(doc))(impl)


movingAverage = _moving("average", "movingAverage", "average")
movingSum = _moving("sum", "movingSum", "sum")
movingMedian = _moving("median", "movingMedian", "median")
movingMax = _moving("max", "movingMax", "maximum")
movingMin = _moving("min", "movingMin", "minimum")


@render_function("Calculate", [SERIES, Param("n", "float", required=True)])
def nPercentile(ctx, seriesList, n):
    """A horizontal line at the ``n``-th percentile (nearest rank) of each series' values over
    the requested range; series without values are dropped. ``n`` must be greater than 0.

    Example:

    .. code-block:: none

      &target=nPercentile(Server.instance01.threads.busy,95)

    draws the 95th percentile of the busy threads as a line.
    """
    if not n:
        raise InputError("nPercentile: the requested percent must be greater than 0")
    out = []
    for s in seriesList:
        value = percentile(s.values.tolist(), n)
        if value is None:
            continue
        count = int((s.end - s.start) / s.step)
        out.append(s.with_tag("nPercentile", n, name="nPercentile(%s, %s)" % (s.name, fmt_g(n)),
                              values=np.full(count, float(value))))
    return out


@render_function("Calculate", [SERIES, WINDOW])
def exponentialMovingAverage(ctx, seriesList, windowSize):
    """Exponential moving average of each series: the average of the first window (read from
    before ``from``) seeds it, then each value moves it by a constant 2 / (``windowSize`` + 1),
    ``windowSize`` counted in points, or in seconds for a time span such as ``"1min"``, as
    graphite-web does. Nulls stay null and leave the average where it was.

    Example:

    .. code-block:: none

      &target=exponentialMovingAverage(Server.instance01.threads.busy,10)
      &target=exponentialMovingAverage(Server.instance*.threads.idle,'1h')
    """
    if not seriesList:
        return []
    preview, windowed = _windowed(ctx, seriesList, windowSize, "exponentialMovingAverage")
    constant = 2.0 / ((preview if isinstance(windowSize, str) else int(windowSize)) + 1)
    out = []
    for s, points in windowed:
        name = _window_name("exponentialMovingAverage", s, windowSize)
        values = s.values.tolist()
        seed = [v for v in values[:points] if v == v]
        ema = (sum(seed) / len(seed) if seed else 0) or 0
        result = [round(ema, 6)]
        for v in values[points:]:
            if v == v:
                ema = constant * v + (1 - constant) * ema
                result.append(round(ema, 6))
            else:
                result.append(np.nan)
        out.append(s.with_tag("exponentialMovingAverage", windowSize, name=name, start=s.start + preview,
                              values=np.asarray(result, dtype=np.float64)))
    return out


@render_function("Calculate", [SERIES, Param("func", "aggFunc", default="average"),
                               Param("keepStep", "boolean", default=False)])
def aggregateLine(ctx, seriesList, func="average", keepStep=False):
    """A horizontal line at each series' ``func`` value (average by default; any aggregation
    function), named ``aggregateLine(name, value)``. Without ``keepStep`` the line has
    constantLine's three points over the range; with it, the series' own step and length.

    Example:

    .. code-block:: none

      &target=aggregateLine(server01.connections.total, 'avg')
      &target=aggregateLine(server*.connections.total, 'max', true)
    """
    aggfuncs.canonical(func)
    out = []
    for s in seriesList:
        value = aggfuncs.reduce_series(s.points(), func)
        name = "aggregateLine(%s, %s)" % (s.name, "None" if value is None else fmt_g(value))
        if keepStep:
            out.append(s.copy(name=name, values=np.full(len(s), np.nan if value is None else value),
                              values_per_point=1))
        else:
            out.append(constant_line(ctx, value).copy(name=name))
    return out


@render_function("Calculate", [SERIES, Param("points", "integer", required=True),
                               Param("windowTolerance", "float", default=0.1)])
def stdev(ctx, seriesList, points, windowTolerance=0.1):
    """Standard deviation of each series over a moving window of ``points`` points (the
    current one included); a window needs non-null values for at least ``windowTolerance``
    of its points (default 0.1), else the point is null. Computed from running sums, as
    graphite-web does, so the values are the same.

    Example:

    .. code-block:: none

      &target=stdev(server*.instance*.threads.busy,30)
      &target=stdev(server*.instance*.cpu.system,30,0.0)
    """
    if points <= 0:
        raise InputError(f"stdev: points must be positive, not {points}")
    out = []
    for s in seriesList:
        values = s.points().tolist()
        result = []
        count, total, squares = 0, 0.0, 0.0
        for i, new in enumerate(values):
            if i >= points:
                dropped = values[i - points]
                if dropped == dropped:
                    count -= 1
                    total -= dropped
                    squares -= dropped**2
            if new == new:
                count += 1
                total += new
                squares += new**2
            spread = count * squares - total**2
            if count > 0 and count / points >= windowTolerance and spread >= 0:
                result.append(math.sqrt(spread) / count)
            else:
                result.append(np.nan)
        out.append(s.with_tag("stdev", points, name="stdev(%s,%d)" % (s.name, points),
                              values=np.asarray(result, dtype=np.float64), values_per_point=1))
    return out
