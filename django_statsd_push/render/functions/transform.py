"""Transform: functions that change each series' values one series at a time."""

from __future__ import annotations

import math

import numpy as np

from .. import aggfuncs
from ..errors import InputError
from ..registry import Param, render_function
from ..series import Series, fmt_g, matrix
from ..timeparse import interval_seconds, parse_offset

SERIES = Param("seriesList", "seriesList", required=True)


@render_function("Transform", [SERIES, Param("factor", "float", required=True)])
def scale(ctx, seriesList, factor):
    """Multiply every value by the constant ``factor``.

    Example:

    .. code-block:: none

      &target=scale(Server.instance01.threads.busy,10)
    """
    return [s.with_tag("scale", factor, name=f"scale({s.name},{fmt_g(factor)})", values=s.values * factor)
            for s in seriesList]


@render_function("Transform", [SERIES, Param("seconds", "float", required=True)])
def scaleToSeconds(ctx, seriesList, seconds):
    """Turn values per step into values per ``seconds`` seconds: each value times ``seconds`` /
    the series' step (rounded to 6 decimals), e.g. a per-10-second count into a per-minute one.

    Example:

    .. code-block:: none

      &target=scaleToSeconds(Server.instance01.requests,60)
    """
    return [s.with_tag("scaleToSeconds", seconds, name="scaleToSeconds(%s,%d)" % (s.name, seconds),
                       values=np.round(s.values * (seconds / s.step), 6)) for s in seriesList]


@render_function("Transform", [SERIES, Param("factor", "float", required=True)])
def offset(ctx, seriesList, factor):
    """Add the constant ``factor`` to every value.

    Example:

    .. code-block:: none

      &target=offset(Server.instance01.threads.busy,10)
    """
    return [s.with_tag("offset", factor, name=f"offset({s.name},{fmt_g(factor)})", values=s.values + factor)
            for s in seriesList]


@render_function("Transform", [SERIES])
def absolute(ctx, seriesList):
    """The absolute value of every point.

    Example:

    .. code-block:: none

      &target=absolute(Server.instance01.threads.busy)
    """
    return [s.with_tag("absolute", 1, name=f"absolute({s.name})", values=np.abs(s.values)) for s in seriesList]


@render_function("Transform", [SERIES])
def derivative(ctx, seriesList):
    """The change from the previous point to this one; null after a null. For counters that wrap
    or reset, use nonNegativeDerivative.

    Example:

    .. code-block:: none

      &target=derivative(company.server.application01.ifconfig.TXPackets)
    """
    out = []
    for s in seriesList:
        v = s.points()
        values = np.concatenate(([np.nan], np.diff(v))) if len(v) else v
        out.append(s.with_tag("derivative", 1, name=f"derivative({s.name})", values=values))
    return out


def non_negative_delta(v: np.ndarray, max_value=None, min_value=None) -> np.ndarray:
    """graphite's _nonNegativeDelta applied along a series: counter resets give null,
    or the wrapped delta when maxValue/minValue bound the counter."""
    v = np.asarray(v, dtype=np.float64)
    ok = ~np.isnan(v)
    if max_value is not None:
        ok &= ~(v > max_value)
    if min_value is not None:
        ok &= ~(v < min_value)
    bounded = np.where(ok, v, np.nan)
    prev = np.concatenate(([np.nan], bounded[:-1])) if len(v) else bounded
    with np.errstate(invalid="ignore"):
        delta = bounded - prev
        grew = delta >= 0
    if max_value is not None:
        wrapped = max_value + 1 + bounded - prev - (min_value or 0)
    elif min_value is not None:
        wrapped = bounded - min_value
    else:
        wrapped = np.full(len(v), np.nan)
    return np.where(np.isnan(delta), np.nan, np.where(grew, delta, wrapped))


COUNTER_PARAMS = [SERIES, Param("maxValue", "float"), Param("minValue", "float")]


@render_function("Transform", COUNTER_PARAMS)
def nonNegativeDerivative(ctx, seriesList, maxValue=None, minValue=None):
    """The change from the previous point, for counters: a decrease is a counter reset and gives
    null, or, with ``maxValue``, a wrap past it (the change is computed through ``maxValue``);
    values below ``minValue`` or above ``maxValue`` are treated as missing.

    Example:

    .. code-block:: none

      &target=nonNegativeDerivative(company.server.application01.ifconfig.TXPackets)
      &target=nonNegativeDerivative(company.server.application01.ifconfig.TXPackets, 4294967295)
    """
    return [s.with_tag("nonNegativeDerivative", 1, name=f"nonNegativeDerivative({s.name})",
                       values=non_negative_delta(s.points(), maxValue, minValue)) for s in seriesList]


@render_function("Transform", COUNTER_PARAMS)
def perSecond(ctx, seriesList, maxValue=None, minValue=None):
    """A counter's rate per second: nonNegativeDerivative divided by the step (rounded to 6
    decimals). ``maxValue`` and ``minValue`` handle wraps and bounds as in nonNegativeDerivative.

    Example:

    .. code-block:: none

      &target=perSecond(company.server.application01.ifconfig.TXPackets)
    """
    return [s.with_tag("perSecond", 1, name=f"perSecond({s.name})",
                       values=np.round(non_negative_delta(s.points(), maxValue, minValue) / s.step, 6))
            for s in seriesList]


@render_function("Transform", [SERIES])
def integral(ctx, seriesList):
    """The running total of the values from ``from``; nulls stay null and add nothing.

    Example:

    .. code-block:: none

      &target=integral(company.sales.perMinute)
    """
    out = []
    for s in seriesList:
        v = s.points()
        total = np.cumsum(np.nan_to_num(v, nan=0.0))
        out.append(s.with_tag("integral", 1, name=f"integral({s.name})", values=np.where(np.isnan(v), np.nan, total)))
    return out


@render_function("Transform", [SERIES, Param("steps", "integer", required=True)])
def delay(ctx, seriesList, steps):
    """Shift the values ``steps`` points later (earlier if negative), filling with nulls, so a
    series can be compared with its own past.

    Example:

    .. code-block:: none

      &target=delay(server.load.avg,1)
    """
    out = []
    for s in seriesList:
        v, n = s.values, len(s.values)
        k = min(abs(steps), n)
        if steps >= 0:
            values = np.concatenate((np.full(k, np.nan), v[: n - k] if steps else v))
        else:
            values = np.concatenate((v[k:], np.full(k, np.nan)))
        out.append(s.with_tag("delay", steps, name="delay(%s,%d)" % (s.name, steps), values=values))
    return out


@render_function("Transform", [SERIES, Param("limit", "intOrInf", default=float("inf"))])
def keepLastValue(ctx, seriesList, limit=float("inf")):
    """Fill each run of nulls of at most ``limit`` points (no limit by default) with the last
    value before it; runs at the very start stay null.

    Example:

    .. code-block:: none

      &target=keepLastValue(Server01.connections.handled)
      &target=keepLastValue(Server01.connections.handled, 10)
    """
    out = []
    for s in seriesList:
        values = s.values.copy()
        last = math.nan
        run = 0
        for i, value in enumerate(values.tolist()):
            if value != value:
                run += 1
                continue
            if 0 < run <= limit and last == last:
                values[i - run : i] = last
            run, last = 0, value
        if 0 < run <= limit and last == last:
            values[len(values) - run :] = last
        out.append(s.copy(name=f"keepLastValue({s.name})", values=values))
    return out


@render_function("Transform", [SERIES, Param("default", "float", default=0),
                               Param("referenceSeries", "seriesList")])
def transformNull(ctx, seriesList, default=0, referenceSeries=None):
    """Replace nulls with ``default`` (0 by default). With ``referenceSeries``, only where at
    least one of those series has a value, so a missing period stays missing.

    Example:

    .. code-block:: none

      &target=transformNull(webapp.pages.*.views,-1)
    """
    fill = None
    if referenceSeries:
        ref = matrix([r.values for r in referenceSeries])
        fill = np.where((~np.isnan(ref)).any(axis=0), float(default), np.nan)
    out = []
    for s in seriesList:
        v = s.values
        if fill is not None:
            v, f = matrix([v, fill])  # the longer one's length, the other padded with nulls
            values = np.where(np.isnan(v), f, v)
            name = "transformNull(%s,%s,referenceSeries)" % (s.name, fmt_g(default))
        else:
            values = np.where(np.isnan(v), float(default), v)
            name = "transformNull(%s,%s)" % (s.name, fmt_g(default))
        tags = dict(s.tags, transformNull=str(default))
        if fill is not None:
            tags["referenceSeries"] = "1"
        out.append(s.copy(name=name, values=values, tags=tags))
    return out


def _positive_interval(func: str, interval: str) -> int:
    """Seconds in one bucket: "0min" would divide by zero, so it is a 400."""
    seconds = interval_seconds(interval)
    if seconds <= 0:
        raise InputError(f"{func}: interval {interval!r} must be positive")
    return seconds


def _check_buckets(ctx, count: int, func: str) -> None:
    if count > ctx.limits.max_points:
        raise InputError(f"{func}: {count} buckets is more than {ctx.limits.max_points} points (--max-points)")


def _summarize_values(s: Series, func: str, interval: int, new_start: int, new_end: int):
    """graphite's _summarizeValues, vectorised: bucket k holds the points whose timestamps
    fall in [new_start + k*interval, +interval); a bucket needs non-null values for at
    least xFilesFactor of interval/step points."""
    n_buckets = max(-(-(new_end - new_start) // interval), 0)
    count = min(len(s.values), len(range(int(s.start), int(s.end), int(s.step))))
    times = s.start + s.step * np.arange(count, dtype=np.int64)
    index = (times - new_start) // interval
    keep = (index >= 0) & (index < n_buckets)
    index, values = index[keep], s.values[:count][keep]
    sizes = np.bincount(index, minlength=n_buckets)[:n_buckets]
    width = max(int(sizes.max()) if len(sizes) else 0, 1)
    rows = np.full((n_buckets, width), np.nan)
    if len(index):
        first = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        rows[index, np.arange(len(index)) - first[index]] = values
    non_null = np.count_nonzero(~np.isnan(rows), axis=1)
    canonical = aggfuncs.canonical(func)
    if canonical == "avg_zero":
        result = np.nansum(rows, axis=1) / np.maximum(sizes, 1)
    elif canonical == "multiply":
        result = np.where(non_null == sizes, np.nanprod(rows, axis=1), np.nan)
    else:
        result = aggfuncs.reduce(rows, canonical, 1) if n_buckets else np.empty(0)
    ok = (non_null > 0) & (non_null / (interval / s.step) >= s.xff)
    return np.where(ok, result, np.nan), new_start + n_buckets * interval


@render_function("Transform", [SERIES, Param("intervalString", "interval", required=True,
                                             suggestions=("10min", "1h", "1d")),
                               Param("func", "aggFunc", default="sum"), Param("alignToFrom", "boolean", default=False)])
def summarize(ctx, seriesList, intervalString, func="sum", alignToFrom=False):
    """Summarize each series into buckets of ``intervalString`` (``1h``, ``1d``...), combining the
    values of each bucket with ``func`` (``sum`` by default; any aggregation function).
    Buckets align to multiples of the interval since the epoch, or, with ``alignToFrom``, start
    at ``from``.

    Example:

    .. code-block:: none

      &target=summarize(counter.errors, "1hour")
      &target=summarize(nonNegativeDerivative(gauge.num_users), "1week", "avg", true)
    """
    interval = _positive_interval("summarize", intervalString)
    out = []
    for s in seriesList:
        if alignToFrom:
            start, end = s.start, s.end
        else:
            start = s.start - s.start % interval
            end = s.end - s.end % interval + interval
        _check_buckets(ctx, (end - start) // interval * len(seriesList), "summarize")
        values, aligned_end = _summarize_values(s, func, interval, start, end)
        if alignToFrom:
            end = aligned_end
        tags = dict(s.tags, summarize=intervalString, summarizeFunction=func)
        name = 'summarize(%s, "%s", "%s"%s)' % (s.name, intervalString, func, ", true" if alignToFrom else "")
        out.append(s.copy(name=name, start=start, end=end, step=interval, values=values, tags=tags,
                          values_per_point=1))
    return out


@render_function("Transform", [SERIES, Param("intervalString", "interval", required=True,
                                             suggestions=("10min", "1h", "1d")),
                               Param("alignToInterval", "boolean", default=False)])
def hitcount(ctx, seriesList, intervalString, alignToInterval=False):
    """Turn rates (hits per step) into hit counts per ``intervalString`` bucket: each point's
    value times the seconds of its step that fall in the bucket. With ``alignToInterval`` the
    buckets start at a whole day, hour, minute or second.

    Example:

    .. code-block:: none

      &target=hitcount(web.hits, "1hour", true)
    """
    interval = _positive_interval("hitcount", intervalString)
    if alignToInterval:
        unit = ("days" if interval >= 86400 else "hours" if interval >= 3600
                else "minutes" if interval >= 60 else "seconds")
        seriesList = ctx.shifted(start=_start_of(ctx, unit)).reevaluate_first_argument()
        seriesList = [s.copy(end=s.start + int((s.end - s.start) // interval) * interval + interval)
                      for s in seriesList]
    out = []
    for s in seriesList:
        buckets_n = int(math.ceil(float(s.end - s.start) / interval))
        _check_buckets(ctx, buckets_n * len(seriesList), "hitcount")
        new_start = int(s.end - buckets_n * interval)
        values = _hits(s, interval, new_start, buckets_n)
        name = 'hitcount(%s, "%s"%s)' % (s.name, intervalString, ", true" if alignToInterval else "")
        out.append(s.with_tag("hitcount", intervalString, name=name, start=new_start, step=interval, values=values))
    return out


#: what each unit clears from a date (weeks as days, then back to the Monday)
_UNIT_START = {
    "years": dict(month=1, day=1, hour=0, minute=0, second=0, microsecond=0),
    "months": dict(day=1, hour=0, minute=0, second=0, microsecond=0),
    "weeks": dict(hour=0, minute=0, second=0, microsecond=0),
    "days": dict(hour=0, minute=0, second=0, microsecond=0),
    "hours": dict(minute=0, second=0, microsecond=0),
    "minutes": dict(second=0, microsecond=0),
    "seconds": dict(microsecond=0),
}


def _start_of(ctx, unit: str) -> int:
    """``from`` moved back to the start of its ``unit``, in the request's time zone."""
    start = ctx.datetime(ctx.start).replace(**_UNIT_START[unit])
    if unit == "weeks":
        start = start.fromtimestamp(start.timestamp() - (start.isoweekday() - 1) * 86400, start.tzinfo)
    return int(start.timestamp())


def _hits(s: Series, interval: int, new_start: int, buckets_n: int) -> np.ndarray:
    """Each point's value times the seconds of its step that overlap each bucket; buckets
    no point overlaps are null. Overlap outside [new_start, new_start + n*interval) is dropped."""
    step = int(s.step)
    v = s.values
    valid = ~np.isnan(v)
    t0 = s.start + step * np.arange(len(v), dtype=np.int64)
    sums = np.zeros(buckets_n)
    hits = np.zeros(buckets_n, dtype=np.int64)
    lo_edge, hi_edge = new_start, new_start + buckets_n * interval
    # a step spans at most ceil(step / interval) + 1 buckets: walk them as array passes
    spans = -(-step // interval) + 1
    first = (t0 - new_start) // interval
    for k in range(spans):
        b = first + k
        b_lo = new_start + b * interval
        overlap = np.minimum(t0 + step, np.minimum(b_lo + interval, hi_edge)) - np.maximum(t0, np.maximum(b_lo, lo_edge))
        use = valid & (overlap > 0) & (b >= 0) & (b < buckets_n)
        np.add.at(sums, b[use], v[use] * overlap[use])
        np.add.at(hits, b[use], 1)
    return np.where(hits > 0, sums, np.nan)


@render_function("Transform", [SERIES, Param("timeShift", "interval", required=True,
                                             suggestions=("1h", "6h", "12h", "1d", "2d", "7d", "14d", "30d")),
                               Param("resetEnd", "boolean", default=True), Param("alignDst", "boolean", default=False)])
def timeShift(ctx, seriesList, timeShift, resetEnd=True, alignDst=False):
    """The same series ``timeShift`` ago (``1d``; a bare interval means in the past), drawn over the
    requested range, to compare with itself. ``resetEnd`` (default true) ends the shifted
    series where the unshifted one ends; ``alignDst`` adds or removes an hour when the
    requested range and the shifted one are on different sides of a daylight-saving change.

    Example:

    .. code-block:: none

      &target=timeShift(Sales.widgets.largeBlue,"7d")
    """
    if timeShift[:1].isdigit():
        timeShift = "-" + timeShift
    delta = parse_offset(timeShift)
    start, end = ctx.start + delta, ctx.end + delta
    if alignDst:
        def dst(epoch: int) -> bool:
            return bool(ctx.datetime(epoch).dst())

        req = (dst(ctx.start), dst(ctx.end))
        mine = (dst(start), dst(end))
        if all(req) and not any(mine):
            start, end = start + 3600, end + 3600
        elif not any(req) and all(mine):
            start, end = start - 3600, end - 3600
    if not seriesList:
        return []
    ref = seriesList[0]
    out = []
    for s in ctx.shifted(start=start, end=end).reevaluate_first_argument():
        new_end = ref.end if resetEnd else s.end - s.start + ref.start
        out.append(s.with_tag("timeShift", timeShift, name=f'timeShift({s.name}, "{timeShift}")',
                              path_expression=s.path_expression, start=ref.start, end=new_end))
    return out


@render_function("Special", [SERIES, Param("consolidationFunc", "string", required=True,
                                           options=tuple(aggfuncs.CONSOLIDATION_FUNCS))])
def consolidateBy(ctx, seriesList, consolidationFunc):
    """How points are combined when a series is consolidated (maxDataPoints, or a graph narrower
    than the points): ``consolidationFunc`` is ``sum``, ``average``/``avg``, ``avg_zero``,
    ``min``, ``max``, ``first`` or ``last``.

    Example:

    .. code-block:: none

      &target=consolidateBy(Server.instance01.threads.busy, 'max')
    """
    return [s.with_tag("consolidateBy", consolidationFunc, name=f'consolidateBy({s.name},"{consolidationFunc}")',
                       consolidation=consolidationFunc) for s in seriesList]


def safe_pow(values: np.ndarray, exponent) -> np.ndarray:
    """math.pow's failures (negative base to a fraction, 0 to a negative power, overflow) are null."""
    out = np.power(values, exponent)
    return np.where(np.isfinite(out), out, np.nan)


@render_function("Transform", [SERIES, Param("factor", "float", required=True)])
def pow(ctx, seriesList, factor):  # noqa: A001 - graphite's name
    """Raise every value to the power ``factor``; null where undefined (0 to a negative power, a
    negative number to a fractional one).

    Example:

    .. code-block:: none

      &target=pow(Server.instance01.threads.busy,10)
    """
    return [s.with_tag("pow", factor, name=f"pow({s.name},{fmt_g(factor)})", values=safe_pow(s.values, factor))
            for s in seriesList]


@render_function("Transform", [SERIES])
def squareRoot(ctx, seriesList):
    """The square root of every value; null for negative values.

    Example:

    .. code-block:: none

      &target=squareRoot(Server.instance01.threads.busy)
    """
    return [s.with_tag("squareRoot", 1, name=f"squareRoot({s.name})", values=safe_pow(s.values, 0.5))
            for s in seriesList]


@render_function("Transform", [SERIES])
def invert(ctx, seriesList):
    """1 divided by every value; null for 0.

    Example:

    .. code-block:: none

      &target=invert(Server.instance01.threads.busy)
    """
    return [s.with_tag("invert", 1, name=f"invert({s.name})", values=safe_pow(s.values, -1))
            for s in seriesList]


@render_function("Transform", [SERIES, Param("base", "integer", default=10)], name="log")
def logarithm(ctx, seriesList, base=10):
    """The logarithm of every value in ``base`` (default 10); null for values of 0 or less.

    Example:

    .. code-block:: none

      &target=log(Server.instance01.threads.busy,10)
    """
    if base <= 0 or base == 1:
        raise InputError(f"log: base {base} must be positive and not 1")
    out = []
    for s in seriesList:
        v = s.values
        values = np.where(v > 0, np.log(np.where(v > 0, v, 1.0)) / math.log(base), np.nan)
        out.append(s.with_tag("log", base, name=f"log({s.name}, {base})", values=values))
    return out


@render_function("Transform", [SERIES])
def isNonNull(ctx, seriesList):
    """1 where the series has a value and 0 where it has none: with sumSeries, counts how many
    series report at each point.

    Example:

    .. code-block:: none

      &target=isNonNull(webapp.pages.*.views)
      &target=sumSeries(isNonNull(webapp.pages.*.views))
    """
    return [s.with_tag("isNonNull", 1, name=f"isNonNull({s.name})", values=(~np.isnan(s.values)).astype(np.float64))
            for s in seriesList]


@render_function("Transform", [SERIES])
def offsetToZero(ctx, seriesList):
    """Subtract each series' minimum from all its values, so its lowest point is 0.

    Example:

    .. code-block:: none

      &target=offsetToZero(Server.instance01.responseTime)
    """
    out = []
    for s in seriesList:
        minimum = aggfuncs.reduce_series(s.values, "min")
        values = s.values - minimum if minimum is not None else s.values
        out.append(s.with_tag("offsetToZero", minimum, name=f"offsetToZero({s.name})", values=values))
    return out


@render_function("Transform", [SERIES])
def minMax(ctx, seriesList):
    """Scale each series linearly to [0, 1]: its minimum becomes 0 and its maximum 1 (all 0 when
    the series is flat).

    Example:

    .. code-block:: none

      &target=minMax(Server.instance01.threads.busy)
    """
    out = []
    for s in seriesList:
        low = aggfuncs.reduce_series(s.values, "min") or 0.0
        span = (aggfuncs.reduce_series(s.values, "max") or 0.0) - low
        values = (s.values - low) / span if span else np.where(np.isnan(s.values), np.nan, 0.0)
        out.append(s.copy(name=f"minMax({s.name})", values=values))
    return out


@render_function("Special", [SERIES])
def changed(ctx, seriesList):
    """1 where the value differs from the last non-null value before it, else 0 (nulls give 0):
    marks the moments something changed.

    Example:

    .. code-block:: none

      &target=changed(Server01.connections.handled)
    """
    out = []
    for s in seriesList:
        previous = None
        flags = []
        for value in s.values.tolist():
            if previous is None:
                previous = None if value != value else value
                flags.append(0.0)
            elif value == value and value != previous:
                flags.append(1.0)
                previous = value
            else:
                flags.append(0.0)
        out.append(s.copy(name=f"changed({s.name})", values=np.asarray(flags)))
    return out


@render_function("Transform", [SERIES, Param("intervalUnit", "string", required=True)])
def integralByInterval(ctx, seriesList, intervalUnit):
    """The running total of the values, restarting at 0 at each ``intervalUnit`` boundary
    (``1d``...) counted from ``from``; nulls add nothing.

    Example:

    .. code-block:: none

      &target=integralByInterval(company.sales.perMinute, "1d")
    """
    try:
        duration = interval_seconds(intervalUnit)
    except InputError:
        raise InputError(f"integralByInterval: invalid interval {intervalUnit!r}") from None
    if duration <= 0:
        raise InputError(f"integralByInterval: interval {intervalUnit!r} must be positive")
    out = []
    for s in seriesList:
        times = s.start + s.step * np.arange(len(s.values), dtype=np.int64) - ctx.start
        restart = (times // duration) != ((times - s.step) // duration)
        values = np.nan_to_num(s.values, nan=0.0)
        group = np.cumsum(restart)
        totals = np.cumsum(values)
        starts = np.concatenate(([0.0], totals))[np.searchsorted(group, group, side="left")]
        out.append(s.with_tag("integralByInterval", intervalUnit, name=f"integralByInterval({s.name},'{intervalUnit}')",
                              values=totals - starts))
    return out


ALIGN_UNITS = (None, "years", "months", "weeks", "days", "hours", "minutes", "seconds", True, False)


@render_function("Transform", [SERIES, Param("intervalString", "interval", required=True,
                                             suggestions=("10min", "1h", "1d")),
                               Param("func", "aggFunc", default="sum"), Param("alignTo", "string", options=ALIGN_UNITS)])
def smartSummarize(ctx, seriesList, intervalString, func="sum", alignTo=None):
    """Like summarize (buckets of ``intervalString`` combined with ``func``, ``sum`` by default),
    but the buckets start at ``from``, or at the start of the ``alignTo`` unit (``years``,
    ``months``, ``weeks``, ``days``, ``hours``, ``minutes``, ``seconds``) containing it, data
    re-read from there.

    Example:

    .. code-block:: none

      &target=smartSummarize(counter.errors, "1hour", "sum", "hours")
    """
    interval = _positive_interval("smartSummarize", intervalString)
    if isinstance(alignTo, str):
        seriesList = ctx.shifted(start=_start_of(ctx, alignTo)).reevaluate_first_argument()
    out = []
    for s in seriesList:
        _check_buckets(ctx, (s.end - s.start) // interval * len(seriesList), "smartSummarize")
        values, aligned_end = _summarize_values(s, func, interval, s.start, s.end)
        tags = dict(s.tags, smartSummarize=intervalString, smartSummarizeFunction=func)
        name = 'smartSummarize(%s, "%s", "%s")' % (s.name, intervalString, func)
        out.append(s.copy(name=name, end=aligned_end, step=interval, values=values, tags=tags))
    return out


@render_function("Transform", [SERIES, Param("constant", "float", required=True)])
def add(ctx, seriesList, constant):
    """Add ``constant`` to every non-null value. The name prints the constant as an integer
    (``add(a.b,1)`` for 1.5), as graphite-web does; the values use it exactly.

    Example:

    .. code-block:: none

      &target=add(Server.instance01.threads.busy, 10)
    """
    return [s.with_tag("add", constant, name="add(%s,%d)" % (s.name, constant), values=s.values + constant)
            for s in seriesList]


def _pointwise(name: str, tag_value: str, doc: str, compute):
    """A Transform that maps each value through ``compute`` (NumPy, NaN where undefined)."""
    def impl(ctx, seriesList):
        return [s.with_tag(name, tag_value, name=f"{name}({s.name})", values=compute(s.values)) for s in seriesList]

    doc += f"\n\nExample:\n\n.. code-block:: none\n\n  &target={name}(Server.instance01.threads.busy)"
    return render_function("Transform", [SERIES], name=name, doc=doc)(impl)


def _finite(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values), values, np.nan)


exp = _pointwise("exp", "e", "e raised to each value: the inverse of log(x, e). A value so large that the result "
                             "overflows gives null (graphite-web 1.1.8 fails the request there).",
                 lambda v: _finite(np.exp(v)))
logit = _pointwise("logit", "logit", "The logit (log-odds) of each value, log(v / (1 - v)): defined for values "
                                     "strictly between 0 and 1, null elsewhere. The inverse of sigmoid.",
                   lambda v: _finite(np.log(np.where((v > 0) & (v < 1), v, np.nan) / (1 - v))))
sigmoid = _pointwise("sigmoid", "sigmoid", "The logistic function of each value, 1 / (1 + e^-v): maps any value "
                                           "into (0, 1); nulls stay null. The inverse of logit.",
                     lambda v: 1.0 / (1.0 + np.exp(-v)))


@render_function("Transform", [SERIES, Param("precision", "integer", default=0)], name="round")
def round_values(ctx, seriesList, precision=None):
    """Round every value to ``precision`` decimal places (default 0; negative rounds to tens,
    hundreds...); halves go to the even neighbour, as Python's round does.

    Example:

    .. code-block:: none

      &target=round(Server.instance01.threads.busy)
      &target=round(Server.instance01.threads.busy,2)
    """
    out = []
    for s in seriesList:
        name = f"round({s.name})" if precision is None else "round(%s,%g)" % (s.name, precision)
        values = np.asarray([v if v != v else round(v, precision or 0) for v in s.values.tolist()],
                            dtype=np.float64)
        out.append(s.with_tag("round", precision or 0, name=name, values=values))
    return out


@render_function("Transform", [SERIES, Param("limit", "intOrInf", default=float("inf"))])
def interpolate(ctx, seriesList, limit=float("inf")):
    """Fill each run of at most ``limit`` nulls (no limit by default) with a straight line between
    the values on either side; nulls at the start or the end of the series stay null, as there
    is nothing to draw from.

    Example:

    .. code-block:: none

      &target=interpolate(Server.instance01.threads.busy)
      &target=interpolate(Server.instance01.threads.busy, 10)
    """
    out = []
    for s in seriesList:
        values = s.values.copy()
        known = np.flatnonzero(~np.isnan(values))
        for before, after in zip(known[:-1], known[1:]):
            gap = after - before - 1
            if 0 < gap <= limit:
                values[before + 1 : after] = np.interp(np.arange(before + 1, after), [before, after],
                                                       [values[before], values[after]])
        out.append(s.copy(name=f"interpolate({s.name})", values=values))
    return out


@render_function("Transform", [SERIES, Param("startSliceAt", "date", required=True),
                               Param("endSliceAt", "date", default="now")])
def timeSlice(ctx, seriesList, startSliceAt, endSliceAt="now"):
    """Keep only the values between ``startSliceAt`` and ``endSliceAt`` (at-time syntax, default
    ``now``), nulls elsewhere; point times count from ``from`` in each series' step, as in
    graphite-web. Relative times are relative to the request's ``now``.

    Example:

    .. code-block:: none

      &target=timeSlice(network.core.port1,"00:00 20140101","11:59 20140630")
      &target=timeSlice(network.core.port1,"12:00 20140630","now")
    """
    start, end = ctx.at_time(startSliceAt), ctx.at_time(endSliceAt)
    out = []
    for s in seriesList:
        times = ctx.start + s.step * np.arange(len(s.values), dtype=np.int64)
        values = np.where((times < start) | (times > end), np.nan, s.values)
        tags = dict(s.tags, timeSliceStart=str(start), timeSliceEnd=str(end))
        out.append(s.copy(name=f"timeSlice({s.name}, {start}, {end})", path_expression=s.path_expression,
                          values=values, tags=tags))
    return out


@render_function("Transform", [SERIES, Param("timeShiftUnit", "interval", default="1d",
                                             suggestions=("1h", "6h", "12h", "1d", "2d", "7d", "14d", "30d")),
                               Param("timeShiftStart", "integer", default=0),
                               Param("timeShiftEnd", "integer", default=7)])
def timeStack(ctx, seriesList, timeShiftUnit="1d", timeShiftStart=0, timeShiftEnd=7):
    """The series again for each of ``timeShiftStart`` up to (not including) ``timeShiftEnd``
    units of ``timeShiftUnit`` ago (``1d`` by default; a bare interval means in the past), all
    drawn over the requested range: the last seven days stacked on each other.

    Example:

    .. code-block:: none

      &target=timeStack(Sales.widgets.largeBlue,"1d",0,7)
    """
    if timeShiftUnit[:1].isdigit():
        timeShiftUnit = "-" + timeShiftUnit
    delta = parse_offset(timeShiftUnit)
    if not seriesList:
        return []
    shifts = range(timeShiftStart, timeShiftEnd)
    if len(shifts) > ctx.limits.max_series:
        raise InputError(f"timeStack: {len(shifts)} shifts is more than {ctx.limits.max_series} series (--max-series)")
    ref = seriesList[0]
    out = []
    for shift in shifts:
        moved = ctx.shifted(start=ctx.start + delta * shift, end=ctx.end + delta * shift)
        for s in moved.reevaluate_first_argument():
            tags = dict(s.tags, timeShiftUnit=timeShiftUnit, timeShift=str(shift))
            out.append(s.copy(name=f"timeShift({s.name}, {timeShiftUnit}, {shift})", tags=tags,
                              start=ref.start, end=ref.end))
    return out
