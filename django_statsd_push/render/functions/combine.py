"""Combine: functions that turn several series into fewer (graphite's "Combine" group)."""

from __future__ import annotations

import inspect
from dataclasses import replace

import numpy as np

from .. import aggfuncs
from ..errors import InputError
from ..registry import FUNCTIONS, Param, lookup, render_function
from ..series import EmptyNormalize, Series, format_path_expressions, matrix, normalize, series_from_values
from .common import agg_key, percentile
from .transform import safe_pow

SERIES_LISTS = [Param("seriesLists", "seriesList", required=True, multiple=True)]


def call(ctx, name: str, args: list) -> list[Series]:
    """Another render function called with series lists (groupByNode's callback, reduceSeries'
    function), its arguments checked as if they were written in the target."""
    info = lookup(name)
    args, kwargs = info.validate(args, {})
    return info.func(replace(ctx, call=None), *args, **kwargs)


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
    """Combine the series into one, point by point, with ``func``: ``average`` (or ``avg``),
    ``avg_zero``, ``median``, ``sum`` (or ``total``), ``min``, ``max``, ``diff``, ``stddev``,
    ``count``, ``range`` (or ``rangeOf``), ``multiply`` or ``last`` (or ``current``); a
    ``...Series`` name such as ``sumSeries`` works too. A point is null where fewer than
    ``xFilesFactor`` (default: the request's) of the series have a value.

    Example:

    .. code-block:: none

      &target=aggregate(host.cpu-[0-7].cpu-{user,system}.value, "sum")

    is the same as ``sumSeries(host.cpu-[0-7].cpu-{user,system}.value)``.
    """
    return aggregate_lists(ctx, [seriesList], func, xFilesFactor)


def _simple(func: str, name: str, what: str, aliases=()):
    def impl(ctx, *seriesLists):
        return aggregate_lists(ctx, seriesLists, func)

    doc = f"""{what}, point by point, of all the series given (one or more lists), after
    aligning them on a common step (the least common multiple of their steps). A point is
    null where fewer than the request's xFilesFactor of the series have a value there.
    Named after the path expressions: ``{name}(a.*,b.c)``. The same as
    ``aggregate(seriesLists, "{func}")``.

    Example:

    .. code-block:: none

      &target={name}(host.cpu-[0-7].cpu-{{user,system}}.value)
    """
    return render_function("Combine", SERIES_LISTS, aliases=aliases, aggregator=True, name=name,
                           doc=inspect.cleandoc(doc))(impl)


sumSeries = _simple("sum", "sumSeries", "The sum (null only where all are null)", ("sum",))
averageSeries = _simple("average", "averageSeries", "The average of the non-null values", ("avg",))
maxSeries = _simple("max", "maxSeries", "The maximum")
minSeries = _simple("min", "minSeries", "The minimum")
diffSeries = _simple("diff", "diffSeries", "The first series minus all the others")
stddevSeries = _simple("stddev", "stddevSeries", "The population standard deviation")
rangeOfSeries = _simple("rangeOf", "rangeOfSeries", "The maximum minus the minimum")


@render_function("Combine", SERIES_LISTS, aggregator=True)
def multiplySeries(ctx, *seriesLists):
    """The product, point by point, of all the series given (one or more lists), after aligning
    them on a common step; null where any factor is null. A single series is returned as it is.

    Example:

    .. code-block:: none

      &target=multiplySeries(Series.dividends,Series.divisors)
    """
    if len(seriesLists) == 1 and len(seriesLists[0]) == 1:
        return seriesLists[0]
    return aggregate_lists(ctx, seriesLists, "multiply")


@render_function("Combine", [Param("seriesLists", "seriesList", multiple=True)], aggregator=True)
def countSeries(ctx, *seriesLists):
    """The number of series in the lists, as a series (a constant line at 0 when there are none).

    Example:

    .. code-block:: none

      &target=countSeries(carbon.agents.*.*)
    """
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
    """The ``n``-th percentile of the series' values at each point (nearest rank; with
    ``interpolate`` true, linear interpolation between the two nearest values). ``n`` must be
    greater than 0.

    Example:

    .. code-block:: none

      &target=percentileOfSeries(servers.*.response_time, 95, false)
    """
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
    """Each series of ``dividendSeriesList`` divided by the single series of ``divisorSeries``,
    point by point, after aligning their steps; null where the divisor is 0 or null. With no
    divisor series every quotient is null (named ``divideSeries(x,MISSING)``); more than one is
    an error (use divideSeriesLists).

    Example:

    .. code-block:: none

      &target=divideSeries(Series.dividends,Series.divisors)
    """
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
                             Param("nodes", "nodeOrTag", multiple=True)], aggregator=True, aliases=("pct",))
def asPercent(ctx, seriesList, total=None, *nodes):
    """Each series as a percentage of a total. ``total`` may be: absent (the sum of the list at
    each point), a number, a single series, or a list as long as ``seriesList`` (paired after
    sorting both by name). With ``nodes`` (positions or tag names), series are grouped by those
    nodes and each is taken as a percentage of its own group's total (or of the ``total`` series
    with the same nodes); a group missing on either side gives a null series named with
    ``MISSING``. ``pct`` is another name for this function.

    Example:

    .. code-block:: none

      &target=asPercent(Server01.connections.{failed,succeeded}, Server01.connections.attempted)
      &target=asPercent(Server*.connections.{failed,succeeded}, Server*.connections.attempted, 0)
      &target=asPercent(apache01.threads.busy,1500)
    """
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
    """Group the series by the key that the given ``nodes`` (positions counted from 0, or tag
    names) form, and combine each group with ``callback``: an aggregation function (``sum``,
    ``avg``, ``max``...) or an aggregating render function (``sumSeries``, ``asPercent``...).
    Each result is named by its key.

    Example:

    .. code-block:: none

      &target=groupByNodes(ganglia.server*.*.cpu.load*,"sum",1,4)

    gives one series per server and load average: ``server1.load5``, ``server1.load15``...
    """
    if callback in FUNCTIONS and FUNCTIONS[callback].aggregator:
        return _combine_groups(seriesList, lambda s: agg_key(s, nodes), lambda g: call(ctx, callback, [g]))
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
    """groupByNodes with a single node: group the series by the node at ``nodeNum`` (or by the tag
    of that name) and combine each group with ``callback`` (``average`` by default).

    Example:

    .. code-block:: none

      &target=groupByNode(ganglia.by-function.*.*.cpu.load5,2,"sumSeries")

    gives one series per function: the sum of its servers' load.
    """
    return groupByNodes(ctx, seriesList, callback, nodeNum)


def aggregate_with_wildcards(ctx, seriesList, func, positions) -> list[Series]:
    def key_of(s: Series) -> str:
        return ".".join(part for i, part in enumerate(s.name.split(".")) if i not in positions)

    return _combine_groups(seriesList, key_of, lambda g: aggregate_lists(ctx, [g], func))


@render_function("Combine", [Param("seriesList", "seriesList", required=True),
                             Param("func", "aggFunc", required=True), Param("position", "node", multiple=True)])
def aggregateWithWildcards(ctx, seriesList, func, *position):
    """Combine with ``func`` (any aggregation function) the series whose names are equal once
    the nodes at the given ``position`` numbers (counted from 0) are removed; each result is
    named by what is left.

    Example:

    .. code-block:: none

      &target=aggregateWithWildcards(host.cpu-[0-7].cpu-{user,system}.value, "sum", 1)

    gives ``host.cpu-user.value`` and ``host.cpu-system.value``, each summed over the eight CPUs.
    """
    return aggregate_with_wildcards(ctx, seriesList, func, position)


def _with_wildcards(func: str, name: str):
    def impl(ctx, seriesList, *position):
        return aggregate_with_wildcards(ctx, seriesList, func, position)

    doc = f"""Combine with ``{func}`` the series whose names are equal once the nodes at the given
    ``position`` numbers (counted from 0) are removed; each result is named by what is left.
    The same as ``aggregateWithWildcards(seriesList, "{func}", position...)``.

    Example:

    .. code-block:: none

      &target={name}(host.cpu-[0-7].cpu-{{user,system}}.value, 1)

    gives ``host.cpu-user.value`` and ``host.cpu-system.value``, each over the eight CPUs.
    """
    return render_function("Combine", [Param("seriesList", "seriesList", required=True),
                                       Param("position", "node", multiple=True)], aggregator=True,
                           name=name, doc=inspect.cleandoc(doc))(impl)


sumSeriesWithWildcards = _with_wildcards("sum", "sumSeriesWithWildcards")
averageSeriesWithWildcards = _with_wildcards("average", "averageSeriesWithWildcards")
multiplySeriesWithWildcards = _with_wildcards("multiply", "multiplySeriesWithWildcards")


def _same_length(first: list, second: list, what: str) -> None:
    if len(first) != len(second):
        raise InputError(f"{what} must reference the same number of series (got {len(first)} and {len(second)})")


@render_function("Combine", [Param("seriesListFirstPos", "seriesList", required=True),
                             Param("seriesListSecondPos", "seriesList", required=True),
                             Param("func", "aggFunc", required=True), Param("xFilesFactor", "float")])
def aggregateSeriesLists(ctx, seriesListFirstPos, seriesListSecondPos, func, xFilesFactor=None):
    """Combine two series lists pair by pair with ``func`` (any aggregation function): the first
    series of ``seriesListFirstPos`` with the first of ``seriesListSecondPos``, and so on; both
    lists must hold the same number of series. A point is null where fewer than
    ``xFilesFactor`` (default: the request's) of the pair have a value. Each result is named
    ``<func>Series(first,second)``.

    Example:

    .. code-block:: none

      &target=aggregateSeriesLists(mining.{carbon,graphite,diamond}.extracted,mining.{carbon,graphite,diamond}.shipped,'sum')
    """
    _same_length(seriesListFirstPos, seriesListSecondPos, "aggregateSeriesLists: both series lists")
    out = []
    for first, second in zip(seriesListFirstPos, seriesListSecondPos):
        for result in aggregate_lists(ctx, [[first, second]], func, xFilesFactor):
            name = result.name[: result.name.find("Series(")] + f"Series({first.name},{second.name})"
            out.append(result.copy(name=name, path_expression=result.path_expression))
    return out


def _pairwise_lists(func: str, name: str):
    def impl(ctx, seriesListFirstPos, seriesListSecondPos):
        return aggregateSeriesLists(ctx, seriesListFirstPos, seriesListSecondPos, func)

    doc = f"""Combine two series lists pair by pair with ``{func}``: the first series of
    ``seriesListFirstPos`` with the first of ``seriesListSecondPos``, and so on; both lists
    must hold the same number of series. The same as
    ``aggregateSeriesLists(seriesListFirstPos, seriesListSecondPos, "{func}")``.

    Example:

    .. code-block:: none

      &target={name}(mining.{{carbon,graphite,diamond}}.extracted,mining.{{carbon,graphite,diamond}}.shipped)
    """
    return render_function("Combine", [Param("seriesListFirstPos", "seriesList", required=True),
                                       Param("seriesListSecondPos", "seriesList", required=True)],
                           aggregator=True, name=name, doc=inspect.cleandoc(doc))(impl)


sumSeriesLists = _pairwise_lists("sum", "sumSeriesLists")
diffSeriesLists = _pairwise_lists("diff", "diffSeriesLists")
multiplySeriesLists = _pairwise_lists("multiply", "multiplySeriesLists")


@render_function("Combine", [Param("dividendSeriesList", "seriesList", required=True),
                             Param("divisorSeriesList", "seriesList", required=True)])
def divideSeriesLists(ctx, dividendSeriesList, divisorSeriesList):
    """Divide two series lists pair by pair: each series of ``dividendSeriesList`` by the series
    at the same place in ``divisorSeriesList``, named ``divideSeries(a,x)``; null where the
    divisor is 0 or null. Both lists must hold the same number of series.

    Example:

    .. code-block:: none

      &target=divideSeriesLists(Series.dividends,Series.divisors)
    """
    _same_length(dividendSeriesList, divisorSeriesList, "divideSeriesLists: dividend and divisor lists")
    return [_pairwise(ctx, "divideSeries", s, t, _safe_div) for s, t in zip(dividendSeriesList, divisorSeriesList)]


@render_function("Combine", [Param("seriesLists", "seriesList", multiple=True)])
def group(ctx, *seriesLists):
    """All the given series lists as one list, unchanged: lets a function that takes one list
    take several, or draws unrelated series together.

    Example:

    .. code-block:: none

      &target=sumSeries(group(app1.requests,app2.requests))
      &target=group(app1.requests,app2.requests)
    """
    return [s for lst in seriesLists for s in lst]


@render_function("Combine", [Param("seriesList", "seriesList", required=True, multiple=True)], aggregator=True)
def powSeries(ctx, *seriesList):
    """The first series raised to the power of the second, the result to the power of the third,
    and so on, point by point after aligning their steps; null where any is null or the power
    is undefined (0 to a negative power, a negative number to a fractional one).

    Example:

    .. code-block:: none

      &target=powSeries(Server.instance01.app.requests, Server.instance01.app.replies)
    """
    try:
        flat, start, end, step, m = normalize(seriesList)
    except EmptyNormalize:
        return []
    values = m[0]
    for row in m[1:]:
        values = safe_pow(values, row)
    name = "powSeries(%s)" % ",".join(s.name for s in flat)
    return [series_from_values(name, start, end, step, values, xff=ctx.xff)]


@render_function("Combine", [Param("seriesList", "seriesList", required=True),
                             Param("mapNodes", "nodeOrTag", required=True, multiple=True)], aliases=("map",))
def mapSeries(ctx, seriesList, *mapNodes):
    """Split a series list into several lists, one per key that the ``mapNodes`` (positions
    counted from 0, or tag names) form: the input reduceSeries expects. ``map`` is another name
    for this function. Its result cannot be drawn by itself.

    Example:

    .. code-block:: none

      &target=reduceSeries(mapSeries(servers.*.disk.*.{used,total},1),"asPercent",4,"used","total")
      &target=mapSeries(servers.*.cpu.*,1)

    (the second fails: series lists must be reduced first).
    """
    keys, groups = _group(seriesList, lambda s: agg_key(s, mapNodes))
    return [groups[key] for key in keys]


@render_function("Combine", [Param("seriesLists", "seriesLists", required=True),
                             Param("reduceFunction", "string", required=True),
                             Param("reduceNode", "node", required=True),
                             Param("reduceMatchers", "string", required=True, multiple=True)], aliases=("reduce",))
def reduceSeries(ctx, seriesLists, reduceFunction, reduceNode, *reduceMatchers):
    """In each list made by mapSeries, pick the series whose node ``reduceNode`` is each of the
    ``reduceMatchers`` (in that order) and pass them, each as its own list, to the render
    function ``reduceFunction`` (``asPercent``, ``divideSeries``, ``diffSeries``...). The result
    is named like its inputs with that node replaced by ``reduce.<reduceFunction>``. A list
    missing one of the matchers is an error. ``reduce`` is another name for this function.

    Example:

    .. code-block:: none

      &target=reduceSeries(mapSeries(servers.*.disk.*.{used,total},1),"asPercent",4,"used","total")

    gives ``servers.host1.disk.reduce.asPercent``... the used share of each disk.
    """
    lookup(reduceFunction)
    keys: list[str] = []
    picked: dict[str, list] = {}
    for lst in seriesLists:
        for s in lst:
            nodes = s.name.split(".")
            try:
                node = nodes[reduceNode]
            except IndexError:
                raise InputError(f"reduceSeries: {s.name} has no node {reduceNode}") from None
            if node not in reduceMatchers:
                continue
            key = ".".join(nodes[:reduceNode]) + ".reduce." + reduceFunction
            if key not in picked:
                picked[key] = [None] * len(reduceMatchers)
                keys.append(key)
            picked[key][reduceMatchers.index(node)] = s
    out = []
    for key in keys:
        if None in picked[key]:
            missing = [m for m, s in zip(reduceMatchers, picked[key]) if s is None]
            raise InputError(f"reduceSeries: no series matching {', '.join(missing)} for {key}")
        result = call(ctx, reduceFunction, [[s] for s in picked[key]])
        if result:
            out.append(result[0].copy(name=key, path_expression=result[0].path_expression))
    return out


@render_function("Combine", [Param("seriesListAvg", "seriesList", required=True),
                             Param("seriesListWeight", "seriesList", required=True),
                             Param("nodes", "nodeOrTag", multiple=True)])
def weightedAverage(ctx, seriesListAvg, seriesListWeight, *nodes):
    """The average of ``seriesListAvg`` weighted by ``seriesListWeight``: series of the two lists
    are paired by the key the given ``nodes`` (positions or tag names) form, and the result is
    sum(value x weight) / sum(weights) at each point. Both lists must hold the same number of
    series. With no nodes every series has the same key, so only the last pair counts, as in
    graphite-web.

    Example:

    .. code-block:: none

      &target=weightedAverage(*.transactions.mean,*.transactions.count,0)

    gives the mean transaction time over all hosts, weighted by each host's transaction count.
    """
    if len(seriesListAvg) != len(seriesListWeight):
        raise InputError("weightedAverage must receive the same number of series for seriesListAvg and "
                         f"seriesListWeight but received respectively {len(seriesListAvg)} and {len(seriesListWeight)}")
    pairs: dict[str, dict[str, Series]] = {}
    for avg, weight in zip(seriesListAvg, seriesListWeight):
        pairs.setdefault(agg_key(avg, nodes), {})["avg"] = avg
        pairs.setdefault(agg_key(weight, nodes), {})["weight"] = weight
    products = []
    for pair in pairs.values():
        if "avg" not in pair or "weight" not in pair:
            continue
        avg, weight = pair["avg"], pair["weight"]
        a, w = matrix([avg.points(), weight.points()])  # point by point, unaligned, as graphite-web
        products.append(series_from_values(f"product({weight.name},{avg.name})", avg.start, avg.end, avg.step,
                                           a * w, xff=ctx.xff))
    if not products:
        return []
    total = aggregate_lists(ctx, [products], "sum")[0]
    weights = aggregate_lists(ctx, [seriesListWeight], "sum")[0]
    t, w = matrix([total.points(), weights.points()])
    name = "weightedAverage(%s, %s, %s)" % (",".join(sorted({s.path_expression for s in seriesListAvg})),
                                            ",".join(sorted({s.path_expression for s in seriesListWeight})),
                                            ",".join(map(str, nodes)))
    return [series_from_values(name, total.start, total.end, total.step, _safe_div(t, w), xff=ctx.xff)]


@render_function("Combine", [Param("seriesList", "seriesList", required=True),
                             Param("nodeNum", "node", required=True),
                             Param("templateFunction", "string", required=True), Param("newName", "string")])
def applyByNode(ctx, seriesList, nodeNum, templateFunction, newName=None):
    """For each distinct prefix of the names up to node ``nodeNum`` (counted from 0), evaluate the
    target ``templateFunction`` with every ``%`` replaced by that prefix; ``newName``, if given,
    renames each result (``%`` again the prefix).

    Example:

    .. code-block:: none

      &target=applyByNode(servers.*.disk.bytes_free,1,"divideSeries(%.disk.bytes_free,sumSeries(%.disk.bytes_*))","%.disk.pct_free")

    gives the share of free disk space of each server.
    """
    prefixes = sorted({".".join(s.name.split(".")[: nodeNum + 1]) for s in seriesList})
    if len(prefixes) > ctx.limits.max_series:
        raise InputError(f"applyByNode: {len(prefixes)} prefixes is more than {ctx.limits.max_series} (--max-series)")
    last = seriesList[-1] if seriesList else None
    out = []
    for prefix in prefixes:
        for s in ctx.evaluate_text(templateFunction.replace("%", prefix)):
            name = newName.replace("%", prefix) if newName else s.name
            out.append(s.copy(name=name, path_expression=prefix, start=last.start, end=last.end))
    return out
