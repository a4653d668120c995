"""Combine: functions that turn several series into fewer (graphite's "Combine" group)."""

from __future__ import annotations

import numpy as np

from .. import aggfuncs
from ..errors import InputError
from ..registry import FUNCTIONS, Param, render_function
from ..series import Series, format_path_expressions, normalize, series_from_values
from .common import agg_key, percentile

SERIES_LISTS = [Param("seriesLists", "seriesList", required=True, multiple=True)]


def aggregate_lists(ctx, series_lists, func: str, xff: float | None = None) -> list[Series]:
    """The core of every *Series aggregate: normalize, reduce each column, apply xFilesFactor."""
    short = func[:-6] if func.endswith("Series") else func
    aggfuncs.canonical(func)
    flat = [s for lst in series_lists for s in lst]
    if not flat:
        return []
    flat, start, end, step, m = normalize([flat])
    xff = ctx.xff if xff is None else xff
    name = f"{short}Series({format_path_expressions(flat)})"
    values = np.where(aggfuncs.xff_mask(m, 0, xff), aggfuncs.reduce(m, func, 0), np.nan)
    tags = dict(flat[0].tags)
    for s in flat[1:]:
        tags = {k: v for k, v in tags.items() if k in s.tags and s.tags[k] == v}
    tags.setdefault("name", name)
    tags["aggregatedBy"] = short
    return [Series(name, start, end, step, values, tags=tags, xff=xff)]


@render_function("Combine", [Param("seriesList", "seriesList", required=True),
                             Param("func", "aggFunc", required=True), Param("xFilesFactor", "float")])
def aggregate(ctx, seriesList, func, xFilesFactor=None):
    """Aggregate series with the given function (sum, average, median, min, max, diff, stddev,
    count, range, multiply, last), column by column."""
    return aggregate_lists(ctx, [seriesList], func, xFilesFactor)


def _simple(func: str, name: str, aliases=(), doc: str = ""):
    def impl(ctx, *seriesLists):
        return aggregate_lists(ctx, seriesLists, func)

    return render_function("Combine", SERIES_LISTS, aliases=aliases, aggregator=True, name=name, doc=doc)(impl)


sumSeries = _simple("sum", "sumSeries", ("sum",), "Sum of the series at each point; null only where all are null.")
averageSeries = _simple("average", "averageSeries", ("avg",), "Average of the non-null values at each point.")
maxSeries = _simple("max", "maxSeries", (), "Maximum of the values at each point.")
minSeries = _simple("min", "minSeries", (), "Minimum of the values at each point.")
diffSeries = _simple("diff", "diffSeries", (), "First series minus all the others, at each point.")
stddevSeries = _simple("stddev", "stddevSeries", (), "Population standard deviation at each point.")
rangeOfSeries = _simple("rangeOf", "rangeOfSeries", (), "Maximum minus minimum at each point.")


@render_function("Combine", SERIES_LISTS, aggregator=True)
def multiplySeries(ctx, *seriesLists):
    """Product of the series at each point (null if any factor is null)."""
    if len(seriesLists) == 1 and len(seriesLists[0]) == 1:
        return seriesLists[0]
    return aggregate_lists(ctx, seriesLists, "multiply")


@render_function("Combine", [Param("seriesLists", "seriesList", multiple=True)], aggregator=True)
def countSeries(ctx, *seriesLists):
    """Number of series, as a series (0 as a constant line when there are none)."""
    flat = [s for lst in seriesLists for s in lst]
    if not flat:
        from .graph import constant_line

        return [constant_line(ctx, 0).copy(path_expression="countSeries()")]
    flat, start, end, step, m = normalize([flat])
    name = f"countSeries({format_path_expressions(flat)})"
    return [series_from_values(name, start, end, step, np.full(m.shape[1], float(m.shape[0])), xff=ctx.xff)]


@render_function("Combine", [Param("seriesList", "seriesList", required=True), Param("n", "float", required=True),
                             Param("interpolate", "boolean", default=False)])
def percentileOfSeries(ctx, seriesList, n, interpolate=False):
    """The n-th percentile of the values at each point."""
    if n <= 0:
        raise InputError("percentileOfSeries: the requested percent must be greater than 0")
    if not seriesList:
        return []
    name = "percentileOfSeries(%s,%g)" % (seriesList[0].path_expression, n)
    _, start, end, step, m = normalize([seriesList])
    values = [percentile(m[:, i].tolist(), n, interpolate) for i in range(m.shape[1])]
    return [series_from_values(name, start, end, step, [np.nan if v is None else v for v in values], xff=ctx.xff)]


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((b == 0) | np.isnan(b), np.nan, a / b)


def _pairwise(ctx, func: str, s: Series, t: Series, op) -> Series:
    """``func(s,t)``: ``op`` of the two series' values once normalised to a common step."""
    _, start, end, step, m = normalize([[s, t]])
    return series_from_values(f"{func}({s.name},{t.name})", start, end, step, op(m[0], m[1]), xff=ctx.xff)


@render_function("Combine", [Param("dividendSeriesList", "seriesList", required=True),
                             Param("divisorSeries", "seriesList", required=True)])
def divideSeries(ctx, dividendSeriesList, divisorSeries):
    """Each dividend divided by the single divisor series (null where the divisor is 0 or null)."""
    if not divisorSeries:
        return [s.copy(name=f"divideSeries({s.name},MISSING)", values=np.full(len(s), np.nan))
                for s in dividendSeriesList]
    if len(divisorSeries) > 1:
        raise InputError(f"divideSeries second argument must reference exactly 1 series (got {len(divisorSeries)})")
    divisor = divisorSeries[0]
    return [_pairwise(ctx, "divideSeries", s, divisor, _safe_div) for s in dividendSeriesList]


def _percent(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _safe_div(a, b) * 100.0


def _group(series_list, key_of):
    keys: list[str] = []
    groups: dict[str, list[Series]] = {}
    for s in series_list:
        key = key_of(s)
        if key not in groups:
            groups[key] = []
            keys.append(key)
        groups[key].append(s)
    return keys, groups


def _sum_total(ctx, group: list[Series]) -> Series:
    if len(group) == 1:
        return group[0]
    return aggregate_lists(ctx, [group], "sum", xff=0.0)[0]


@render_function("Combine", [Param("seriesList", "seriesList", required=True), Param("total", "any"),
                             Param("nodes", "nodeOrTag", multiple=True)], aggregator=True)
def asPercent(ctx, seriesList, total=None, *nodes):
    """Each series as a percentage of a total: the sum of the list, one series, a number,
    a matching list, or (with nodes) the total of the series sharing those nodes."""
    if total is not None and not isinstance(total, (list, int, float)) or isinstance(total, bool):
        raise InputError('asPercent: "total" must be a number or a series list')
    flat, start, end, step, m = normalize([seriesList])
    if nodes:
        if total is not None and not isinstance(total, list):
            raise InputError("asPercent: total must be None or a series list when nodes are given")
        keys, groups = _group(flat, lambda s: agg_key(s, nodes))
        if total is None:
            totals = {k: _sum_total(ctx, g) for k, g in groups.items()}
        else:
            total_keys, total_groups = _group(total, lambda s: agg_key(s, nodes))
            keys += [k for k in total_keys if k not in groups]
            totals = {k: _sum_total(ctx, g) for k, g in total_groups.items()}
        out = []
        for key in keys:
            if key not in groups:
                t = totals[key]
                out.append(series_from_values(f"asPercent(MISSING,{t.name})", start, end, step,
                                              np.full(len(t), np.nan), xff=ctx.xff))
                continue
            for s in groups[key]:
                if key not in totals:
                    out.append(series_from_values(f"asPercent({s.name},MISSING)", start, end, step,
                                                  np.full(len(s), np.nan), xff=ctx.xff))
                    continue
                out.append(_pairwise(ctx, "asPercent", s, totals[key], _percent))
        return out
    if isinstance(total, list):
        if len(total) not in (1, len(flat)):
            raise InputError("asPercent second argument must be missing, a single number, reference exactly 1 "
                             "series or reference the same number of series as the first argument")
        if len(total) == len(flat):
            return [_pairwise(ctx, "asPercent", s, t, _percent)
                    for s, t in zip(sorted(flat, key=lambda x: x.name), sorted(total, key=lambda x: x.name))]
        flat, start, end, step, m = normalize([seriesList, total])
        m, total_values, total_text = m[:-1], m[-1], total[0].name
    elif total is None:
        total_values = aggfuncs.reduce(m, "sum", 0)
        total_text = f"sumSeries({format_path_expressions(flat)})"
    else:
        total_values = np.full(m.shape[1], float(total))
        total_text = str(total)
    return [series_from_values(f"asPercent({s.name},{total_text or s.path_expression})", start, end, step,
                               _percent(m[i], total_values), xff=ctx.xff)
            for i, s in enumerate(flat[: len(m)])]


@render_function("Combine", [Param("seriesList", "seriesList", required=True),
                             Param("callback", "aggOrSeriesFunc", required=True),
                             Param("nodes", "nodeOrTag", multiple=True)])
def groupByNodes(ctx, seriesList, callback, *nodes):
    """Group series by the given nodes (or tags) and combine each group with the callback;
    each result is named by its key."""
    if callback in FUNCTIONS and FUNCTIONS[callback].aggregator:
        return _combine_groups(seriesList, lambda s: agg_key(s, nodes), lambda g: FUNCTIONS[callback].func(ctx, g))
    return _combine_groups(seriesList, lambda s: agg_key(s, nodes), lambda g: aggregate_lists(ctx, [g], callback))


def _combine_groups(seriesList, key_of, combine) -> list[Series]:
    """Each group of series sharing a key, combined into one series named by that key."""
    keys, groups = _group(seriesList, key_of)
    out = []
    for key in keys:
        combined = combine(groups[key])
        if combined:
            out.append(combined[0].copy(name=key, path_expression=combined[0].path_expression))
    return out


@render_function("Combine", [Param("seriesList", "seriesList", required=True),
                             Param("nodeNum", "nodeOrTag", required=True),
                             Param("callback", "aggOrSeriesFunc", default="average")])
def groupByNode(ctx, seriesList, nodeNum, callback="average"):
    """groupByNodes with a single node."""
    return groupByNodes(ctx, seriesList, callback, nodeNum)


def aggregate_with_wildcards(ctx, seriesList, func, positions) -> list[Series]:
    def key_of(s: Series) -> str:
        return ".".join(part for i, part in enumerate(s.name.split(".")) if i not in positions)

    return _combine_groups(seriesList, key_of, lambda g: aggregate_lists(ctx, [g], func))


@render_function("Combine", [Param("seriesList", "seriesList", required=True),
                             Param("func", "aggFunc", required=True), Param("position", "node", multiple=True)])
def aggregateWithWildcards(ctx, seriesList, func, *position):
    """Aggregate the series that are equal once the given node positions are removed."""
    return aggregate_with_wildcards(ctx, seriesList, func, position)


def _with_wildcards(func: str, name: str, doc: str):
    def impl(ctx, seriesList, *position):
        return aggregate_with_wildcards(ctx, seriesList, func, position)

    return render_function("Combine", [Param("seriesList", "seriesList", required=True),
                                       Param("position", "node", multiple=True)], aggregator=True,
                           name=name, doc=doc)(impl)


sumSeriesWithWildcards = _with_wildcards("sum", "sumSeriesWithWildcards",
                                         "Sum the series that match once the given nodes are removed.")
averageSeriesWithWildcards = _with_wildcards("average", "averageSeriesWithWildcards",
                                             "Average the series that match once the given nodes are removed.")
multiplySeriesWithWildcards = _with_wildcards("multiply", "multiplySeriesWithWildcards",
                                              "Multiply the series that match once the given nodes are removed.")
