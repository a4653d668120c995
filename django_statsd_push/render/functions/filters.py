"""Filter Series, Filter Data and Sorting: choosing, dropping and ordering series."""

from __future__ import annotations

import inspect
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
    """The ``n`` series (1 if not given) with the highest ``func`` value over the requested range
    (``average`` by default; any aggregation function), highest first; series without values
    count as the lowest.

    Example:

    .. code-block:: none

      &target=highest(server*.instance*.threads.busy,5,'max')

    draws the 5 instances with the most busy threads at their peak.
    """
    return highest_lowest(seriesList, n, func, True)


@render_function("Filter Series", [SERIES, N_INT, Param("func", "aggFunc", default="average")])
def lowest(ctx, seriesList, n=1, func="average"):
    """The ``n`` series (1 if not given) with the lowest ``func`` value over the requested range
    (``average`` by default; any aggregation function), lowest first; series without values
    count as the lowest.

    Example:

    .. code-block:: none

      &target=lowest(server*.instance*.threads.busy,5,'min')
    """
    return highest_lowest(seriesList, n, func, False)


def _top(func: str, is_highest: bool, name: str, what: str):
    def impl(ctx, seriesList, n):
        return highest_lowest(seriesList, n, func, is_highest)

    doc = f"""The ``n`` series with the {"highest" if is_highest else "lowest"} {what} over the
    requested range, in that order; series without values count as the lowest. The same as
    ``{"highest" if is_highest else "lowest"}(seriesList, n, "{func}")``.

    Example:

    .. code-block:: none

      &target={name}(server*.instance*.threads.busy,5)
    """
    return render_function("Filter Series", [SERIES, N_INT], name=name, doc=inspect.cleandoc(doc))(impl)


highestCurrent = _top("current", True, "highestCurrent", "last value")
highestMax = _top("max", True, "highestMax", "maximum")
highestAverage = _top("average", True, "highestAverage", "average")
lowestCurrent = _top("current", False, "lowestCurrent", "last value")
lowestAverage = _top("average", False, "lowestAverage", "average")

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
    """Keep the series whose ``func`` value over the requested range (any aggregation function)
    compares true with ``threshold`` under ``operator``: one of ``=``, ``!=``, ``>``, ``>=``,
    ``<``, ``<=``. A series without values passes only ``!=``, ``<`` and ``<=``.

    Example:

    .. code-block:: none

      &target=filterSeries(system.interface.eth*.packetsSent, 'max', '>', 1000)

    keeps the interfaces that sent more than 1000 packets in some interval.
    """
    return filter_series(seriesList, func, operator, threshold)


def _above(func: str, op: str, name: str, what: str):
    def impl(ctx, seriesList, n):
        return filter_series(seriesList, func, op, n)

    above = op == ">"
    doc = f"""Keep the series whose {what} over the requested range is {"above" if above else "at most"} ``n``
    ({"series without values are dropped" if above else "series without values are kept"}). The same as
    ``filterSeries(seriesList, "{func}", "{op}", n)``.

    Example:

    .. code-block:: none

      &target={name}(server*.instance*.threads.busy,50)
    """
    return render_function("Filter Series", [SERIES, N_FLOAT], name=name, doc=inspect.cleandoc(doc))(impl)


currentAbove = _above("last", ">", "currentAbove", "last value")
currentBelow = _above("last", "<=", "currentBelow", "last value")
averageAbove = _above("average", ">", "averageAbove", "average")
averageBelow = _above("average", "<=", "averageBelow", "average")
maximumAbove = _above("max", ">", "maximumAbove", "maximum")
maximumBelow = _above("max", "<=", "maximumBelow", "maximum")
minimumAbove = _above("min", ">", "minimumAbove", "minimum")
minimumBelow = _above("min", "<=", "minimumBelow", "minimum")


@render_function("Filter Series", [SERIES, N_INT])
def limit(ctx, seriesList, n):
    """The first ``n`` series of the list, in its order.

    Example:

    .. code-block:: none

      &target=limit(server*.instance*.memory.free,5)
    """
    return seriesList[0:n]


@render_function("Filter Series", [SERIES, Param("pattern", "string", required=True)])
def exclude(ctx, seriesList, pattern):
    """Drop the series whose name matches the regular expression ``pattern`` (anywhere in it).

    Example:

    .. code-block:: none

      &target=exclude(servers*.instance*.threads.busy,"server02")
    """
    regex = user_regex(pattern, "exclude")
    return [s for s in seriesList if not regex.search(s.name)]


@render_function("Filter Series", [SERIES, Param("pattern", "string", required=True)])
def grep(ctx, seriesList, pattern):
    """Keep only the series whose name matches the regular expression ``pattern`` (anywhere in it).

    Example:

    .. code-block:: none

      &target=grep(servers*.instance*.threads.busy,"server02")
    """
    regex = user_regex(pattern, "grep")
    return [s for s in seriesList if regex.search(s.name)]


@render_function("Filter Series", [SERIES, Param("xFilesFactor", "float")])
def removeEmptySeries(ctx, seriesList, xFilesFactor=None):
    """Drop the series without values; with ``xFilesFactor``, also those whose share of non-null
    values is below it (0.5 keeps series with at least half their points).

    Example:

    .. code-block:: none

      &target=removeEmptySeries(server*.instance*.threads.busy)
      &target=removeEmptySeries(server*.instance*.threads.busy, 0.5)
    """
    xff = xFilesFactor or 0.0
    return [s for s in seriesList if bool(aggfuncs.xff_mask(s.points().reshape(1, -1), 1, xff)[0])]


def _remove_values(seriesList, n, name: str, drop):
    with np.errstate(invalid="ignore"):
        return [s.copy(name=f"{name}({s.name}, {fmt_g(n)})", values=np.where(drop(s.values), np.nan, s.values))
                for s in seriesList]


@render_function("Filter Data", [SERIES, N_FLOAT])
def removeBelowValue(ctx, seriesList, n):
    """Set every value below ``n`` to null.

    Example:

    .. code-block:: none

      &target=removeBelowValue(Server.instance01.threads.busy,-1)
    """
    return _remove_values(seriesList, n, "removeBelowValue", lambda v: v < n)


@render_function("Filter Data", [SERIES, N_FLOAT])
def removeAboveValue(ctx, seriesList, n):
    """Set every value above ``n`` to null.

    Example:

    .. code-block:: none

      &target=removeAboveValue(Server.instance01.threads.busy,1000)
    """
    return _remove_values(seriesList, n, "removeAboveValue", lambda v: v > n)


@render_function("Sorting", [SERIES, Param("func", "aggFunc", default="average"),
                             Param("reverse", "boolean", default=False)])
def sortBy(ctx, seriesList, func="average", reverse=False):
    """Sort the series by their ``func`` value over the requested range (``average`` by default;
    any aggregation function), lowest first, or highest first with ``reverse`` true; series
    without values count as the lowest.

    Example:

    .. code-block:: none

      &target=sortBy(server*.instance*.threads.busy,'max',true)
    """
    aggfuncs.canonical(func)
    return sorted(seriesList, key=_key(func), reverse=reverse)


@render_function("Sorting", [SERIES])
def sortByMaxima(ctx, seriesList):
    """Sort the series by their maximum value, highest first.

    Example:

    .. code-block:: none

      &target=sortByMaxima(server*.instance*.memory.free)
    """
    return sorted(seriesList, key=_key("max"), reverse=True)


@render_function("Sorting", [SERIES])
def sortByMinima(ctx, seriesList):
    """Sort the series by their minimum value, lowest first.

    Example:

    .. code-block:: none

      &target=sortByMinima(server*.instance*.memory.free)
    """
    return sorted(seriesList, key=_key("min"))


@render_function("Sorting", [SERIES])
def sortByTotal(ctx, seriesList):
    """Sort the series by the sum of their values, highest first.

    Example:

    .. code-block:: none

      &target=sortByTotal(server*.instance*.memory.free)
    """
    return sorted(seriesList, key=_key("sum"), reverse=True)


@render_function("Sorting", [SERIES, Param("natural", "boolean", default=False),
                             Param("reverse", "boolean", default=False)])
def sortByName(ctx, seriesList, natural=False, reverse=False):
    """Sort the series by name, alphabetically, or in natural order with ``natural`` true
    (``server2`` before ``server10``); ``reverse`` true sorts the other way.

    Example:

    .. code-block:: none

      &target=sortByName(server*.instance*.memory.free,true)
    """
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
    """Set every value above the ``n``-th percentile of its own series to null.

    Example:

    .. code-block:: none

      &target=removeAbovePercentile(Server.instance01.threads.busy,95)
    """
    return _percentile_filter(seriesList, n, "removeAbovePercentile", lambda v, cut: v > cut)


@render_function("Filter Data", [SERIES, N_FLOAT])
def removeBelowPercentile(ctx, seriesList, n):
    """Set every value below the ``n``-th percentile of its own series to null (nulls stay null).

    Example:

    .. code-block:: none

      &target=removeBelowPercentile(Server.instance01.threads.busy,5)
    """
    return _percentile_filter(seriesList, n, "removeBelowPercentile", lambda v, cut: np.isnan(v) | (v < cut))


@render_function("Special", [SERIES, Param("fallback", "seriesList", required=True)])
def fallbackSeries(ctx, seriesList, fallback):
    """The series list, or the ``fallback`` series when the list is empty: a stand-in for a metric
    that does not exist (yet).

    Example:

    .. code-block:: none

      &target=fallbackSeries(server*.requests_per_second, constantLine(0))
    """
    return seriesList if seriesList else fallback


def _outside(value, low, high) -> bool:
    return not (low < value < high)


@render_function("Filter Series", [SERIES, N_FLOAT])
def averageOutsidePercentile(ctx, seriesList, n):
    """Keep the series whose average lies outside the band between the (100-``n``)-th and the
    ``n``-th percentiles of all the series' averages (``n`` below 50 counts as 100-``n``): the
    unusual ones. Series without values are dropped (graphite-web 1.1.8 fails the request on
    them).

    Example:

    .. code-block:: none

      &target=averageOutsidePercentile(server*.instance*.threads.busy, 95)
    """
    if n < 50:
        n = 100 - n
    averages = [aggfuncs.reduce_series(s.points(), "average") for s in seriesList]
    known = [a for a in averages if a is not None]
    low, high = percentile(known, 100 - n), percentile(known, n)
    if low is None:
        return []
    return [s for s, a in zip(seriesList, averages) if a is not None and _outside(a, low, high)]


@render_function("Filter Series", [SERIES, N_FLOAT])
def removeBetweenPercentile(ctx, seriesList, n):
    """Keep the series that have at least one value outside the band between the (100-``n``)-th
    and the ``n``-th percentiles of all the series' values at the same time (``n`` below 50
    counts as 100-``n``): the series that ever stood out. Nulls never stand out (graphite-web
    1.1.8 fails the request on them).

    Example:

    .. code-block:: none

      &target=removeBetweenPercentile(Server.instance*.threads.busy, 95)
    """
    if n < 50:
        n = 100 - n
    if not seriesList:
        return []
    rows = [s.points() for s in seriesList]
    width = min(len(r) for r in rows)
    columns = [[r[i] for r in rows] for i in range(width)]
    bands = [(percentile(c, 100 - n), percentile(c, n)) for c in columns]
    out = []
    for s, row in zip(seriesList, rows):
        if any(v == v and lo is not None and _outside(v, lo, hi) for v, (lo, hi) in zip(row.tolist(), bands)):
            out.append(s)
    return out


@render_function("Filter Series", [SERIES, N_INT])
def mostDeviant(ctx, seriesList, n):
    """The ``n`` series whose values vary the most (largest population variance over the
    requested range), most varying first; series without values are left out.

    Example:

    .. code-block:: none

      &target=mostDeviant(server*.instance*.memory.free, 5)
    """
    scored = []
    for s in seriesList:
        values = s.points()
        values = values[~np.isnan(values)]
        if not len(values):
            continue
        known = values.tolist()
        mean = sum(known) / len(known)  # summed in order, as graphite-web: ties stay ties
        scored.append((sum((v - mean) ** 2 for v in known) / len(known), s))
    scored.sort(key=lambda pair: pair[0], reverse=True)
    return [s for _, s in scored][:n]


@render_function("Filter Series", [Param("seriesLists", "seriesList", required=True, multiple=True)])
def unique(ctx, *seriesLists):
    """The series of all the lists given, each name only once (its first occurrence).

    Example:

    .. code-block:: none

      &target=unique(mostDeviant(server*.instance*.memory.free,5),lowestCurrent(server*.instance*.memory.free,5))
    """
    seen: set[str] = set()
    out = []
    for lst in seriesLists:
        for s in lst:
            if s.name not in seen:
                seen.add(s.name)
                out.append(s)
    return out


@render_function("Filter Series", [SERIES, Param("value", "float", required=True),
                                   Param("search", "string", required=True), Param("replace", "string", required=True)])
def useSeriesAbove(ctx, seriesList, value, search, replace):
    """For each series whose maximum is above ``value``, draw instead the series named by rewriting
    its name with the regular expression ``search`` -> ``replace``.

    Example:

    .. code-block:: none

      &target=useSeriesAbove(ganglia.metric1.reqs,10,'reqs','time')

    draws ``ganglia.metric1.time`` for the hosts whose requests went above 10.
    """
    regex = user_regex(search, "useSeriesAbove")
    names = []
    for s in seriesList:
        peak = aggfuncs.reduce_series(s.points(), "max")
        if peak is not None and peak > value:
            names.append(regex.sub(replace, s.name))
    if not names:
        return []
    return [s for s in ctx.evaluate_text("group(%s)" % ",".join(names)) if len(s)]
