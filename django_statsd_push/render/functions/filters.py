"""Filter Series, Filter Data and Sorting: choosing, dropping and ordering series."""

from __future__ import annotations

import re

import numpy as np

from .. import aggfuncs
from ..regex import user_regex
from ..registry import Param, render_function
from ..series import Series, fmt_g
from .common import percentile

SERIES = Param("seriesList", "seriesList", required=True)
N_INT = Param("n", "integer", required=True)
N_FLOAT = Param("n", "float", required=True)
INF = float("inf")


def _key(func: str):
    """graphite's keyFunc: the series' aggregate, with null sorting below everything."""
    def key(s: Series) -> float:
        value = aggfuncs.reduce_series(s.points(), func)
        return -INF if value is None else value

    return key


def highest_lowest(seriesList, n, func, highest: bool):
    aggfuncs.canonical(func)
    ordered = sorted(seriesList, key=_key(func), reverse=highest)
    return ordered[: int(n)]


@render_function("Filter Series", [SERIES, N_INT, Param("func", "aggFunc", default="average")])
def highest(ctx, seriesList, n=1, func="average"):
    """The n series with the highest ``func`` value."""
    return highest_lowest(seriesList, n, func, True)


@render_function("Filter Series", [SERIES, N_INT, Param("func", "aggFunc", default="average")])
def lowest(ctx, seriesList, n=1, func="average"):
    """The n series with the lowest ``func`` value."""
    return highest_lowest(seriesList, n, func, False)


def _top(func: str, is_highest: bool, name: str, doc: str):
    def impl(ctx, seriesList, n):
        return highest_lowest(seriesList, n, func, is_highest)

    return render_function("Filter Series", [SERIES, N_INT], name=name, doc=doc)(impl)


highestCurrent = _top("current", True, "highestCurrent", "The n series with the highest last value.")
highestMax = _top("max", True, "highestMax", "The n series with the highest maximum.")
highestAverage = _top("average", True, "highestAverage", "The n series with the highest average.")
lowestCurrent = _top("current", False, "lowestCurrent", "The n series with the lowest last value.")
lowestAverage = _top("average", False, "lowestAverage", "The n series with the lowest average.")

OPERATORS = {
    "=": lambda v, t: v is not None and v == t,
    "!=": lambda v, t: v is None or v != t,
    ">": lambda v, t: v is not None and v > t,
    ">=": lambda v, t: v is not None and v >= t,
    "<": lambda v, t: v is None or v < t,
    "<=": lambda v, t: v is None or v <= t,
}


def filter_series(seriesList, func: str, op: str, threshold: float):
    aggfuncs.canonical(func)
    test = OPERATORS[op]
    return [s for s in seriesList if test(aggfuncs.reduce_series(s.points(), func), threshold)]


@render_function("Filter Series", [SERIES, Param("func", "aggFunc", required=True),
                                   Param("operator", "string", required=True, options=tuple(sorted(OPERATORS))),
                                   Param("threshold", "float", required=True)])
def filterSeries(ctx, seriesList, func, operator, threshold):
    """Keep the series whose ``func`` value compares true against the threshold."""
    return filter_series(seriesList, func, operator, threshold)


def _above(func: str, op: str, name: str, doc: str):
    def impl(ctx, seriesList, n):
        return filter_series(seriesList, func, op, n)

    return render_function("Filter Series", [SERIES, N_FLOAT], name=name, doc=doc)(impl)


currentAbove = _above("last", ">", "currentAbove", "Series whose last value is above n.")
currentBelow = _above("last", "<=", "currentBelow", "Series whose last value is at most n.")
averageAbove = _above("average", ">", "averageAbove", "Series whose average is above n.")
averageBelow = _above("average", "<=", "averageBelow", "Series whose average is at most n.")
maximumAbove = _above("max", ">", "maximumAbove", "Series whose maximum is above n.")
maximumBelow = _above("max", "<=", "maximumBelow", "Series whose maximum is at most n.")
minimumAbove = _above("min", ">", "minimumAbove", "Series whose minimum is above n.")
minimumBelow = _above("min", "<=", "minimumBelow", "Series whose minimum is at most n.")


@render_function("Filter Series", [SERIES, N_INT])
def limit(ctx, seriesList, n):
    """The first n series."""
    return seriesList[0:n]


@render_function("Filter Series", [SERIES, Param("pattern", "string", required=True)])
def exclude(ctx, seriesList, pattern):
    """Drop series whose name matches the regular expression."""
    regex = user_regex(pattern, "exclude")
    return [s for s in seriesList if not regex.search(s.name)]


@render_function("Filter Series", [SERIES, Param("pattern", "string", required=True)])
def grep(ctx, seriesList, pattern):
    """Keep series whose name matches the regular expression."""
    regex = user_regex(pattern, "grep")
    return [s for s in seriesList if regex.search(s.name)]


@render_function("Filter Series", [SERIES, Param("xFilesFactor", "float")])
def removeEmptySeries(ctx, seriesList, xFilesFactor=None):
    """Drop series with no values (or fewer non-null values than the xFilesFactor ratio)."""
    xff = xFilesFactor or 0.0
    return [s for s in seriesList if bool(aggfuncs.xff_mask(s.points().reshape(1, -1), 1, xff)[0])]


def _remove_values(seriesList, n, name: str, drop):
    with np.errstate(invalid="ignore"):
        return [s.copy(name=f"{name}({s.name}, {fmt_g(n)})", values=np.where(drop(s.values), np.nan, s.values))
                for s in seriesList]


@render_function("Filter Data", [SERIES, N_FLOAT])
def removeBelowValue(ctx, seriesList, n):
    """Set values below n to null."""
    return _remove_values(seriesList, n, "removeBelowValue", lambda v: v < n)


@render_function("Filter Data", [SERIES, N_FLOAT])
def removeAboveValue(ctx, seriesList, n):
    """Set values above n to null."""
    return _remove_values(seriesList, n, "removeAboveValue", lambda v: v > n)


@render_function("Sorting", [SERIES, Param("func", "aggFunc", default="average"),
                             Param("reverse", "boolean", default=False)])
def sortBy(ctx, seriesList, func="average", reverse=False):
    """Sort by the series' ``func`` value."""
    aggfuncs.canonical(func)
    return sorted(seriesList, key=_key(func), reverse=reverse)


@render_function("Sorting", [SERIES])
def sortByMaxima(ctx, seriesList):
    """Sort by maximum value, highest first."""
    return sorted(seriesList, key=_key("max"), reverse=True)


@render_function("Sorting", [SERIES])
def sortByMinima(ctx, seriesList):
    """Sort by minimum value, lowest first."""
    return sorted(seriesList, key=_key("min"))


@render_function("Sorting", [SERIES])
def sortByTotal(ctx, seriesList):
    """Sort by the sum of values, highest first."""
    return sorted(seriesList, key=_key("sum"), reverse=True)


@render_function("Sorting", [SERIES, Param("natural", "boolean", default=False),
                             Param("reverse", "boolean", default=False)])
def sortByName(ctx, seriesList, natural=False, reverse=False):
    """Sort by name, optionally in natural order (``a2`` before ``a10``)."""
    if natural:
        def key(s: Series) -> str:
            return re.sub(r"(\d+)", lambda m: "{0:010}".format(int(m.group(0))), s.name)
    else:
        def key(s: Series) -> str:
            return s.name
    return sorted(seriesList, key=key, reverse=reverse)


def _percentile_filter(seriesList, n, name: str, drop):
    out = []
    for s in seriesList:
        renamed = f"{name}({s.name}, {fmt_g(n)})"
        cut = percentile(s.values.tolist(), n)
        if cut is None:
            out.append(s.copy(name=renamed))
            continue
        with np.errstate(invalid="ignore"):  # graphite-web's nPercentile leaves its tag behind
            out.append(s.with_tag("nPercentile", n, name=renamed, values=np.where(drop(s.values, cut), np.nan,
                                                                                  s.values)))
    return out


@render_function("Filter Data", [SERIES, N_FLOAT])
def removeAbovePercentile(ctx, seriesList, n):
    """Set values above the series' n-th percentile to null."""
    return _percentile_filter(seriesList, n, "removeAbovePercentile", lambda v, cut: v > cut)


@render_function("Filter Data", [SERIES, N_FLOAT])
def removeBelowPercentile(ctx, seriesList, n):
    """Set values below the series' n-th percentile to null."""
    return _percentile_filter(seriesList, n, "removeBelowPercentile", lambda v, cut: np.isnan(v) | (v < cut))


@render_function("Special", [SERIES, Param("fallback", "seriesList", required=True)])
def fallbackSeries(ctx, seriesList, fallback):
    """The series list, or ``fallback`` when it is empty."""
    return seriesList if seriesList else fallback
