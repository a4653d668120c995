"""Alias: renaming series (Grafana wraps every target in aliasSub)."""

from __future__ import annotations

import re

from .. import aggfuncs
from ..errors import InputError
from ..regex import user_regex
from ..registry import Param, render_function
from ..units import format_units
from .common import agg_key

SERIES = Param("seriesList", "seriesList", required=True)


@render_function("Alias", [SERIES, Param("newName", "string", required=True)])
def alias(ctx, seriesList, newName):
    """Give every series of the list the same new name, ``newName`` (its path expression and
    tags are kept).

    Example:

    .. code-block:: none

      &target=alias(Sales.widgets.largeBlue,"Large Blue Widgets")
    """
    return [s.copy(name=newName, path_expression=s.path_expression) for s in seriesList]


@render_function("Alias", [SERIES, Param("nodes", "nodeOrTag", required=True, multiple=True)])
def aliasByNode(ctx, seriesList, *nodes):
    """Name each series by one or more of its nodes, joined with dots: ``nodes`` are positions
    in the dotted path, counted from 0 (negative ones count from the end), or tag names. For
    a name wrapped in functions, the nodes come from the first path inside.

    Example:

    .. code-block:: none

      &target=aliasByNode(servers.*.cpu.total,1)

    names the series ``host1``, ``host2``... after the second node of each path.
    """
    return [s.copy(name=agg_key(s, nodes), path_expression=s.path_expression) for s in seriesList]


@render_function("Alias", [SERIES])
def aliasByMetric(ctx, seriesList):
    """Name each series by the last node of its path only, dropping the functions around it.

    Example:

    .. code-block:: none

      &target=aliasByMetric(carbon.agents.graphite.creates)

    is named ``creates``.
    """
    out = []
    for s in seriesList:
        left = s.name.rfind("(") + 1
        right = s.name.find(")")
        if right < 0:
            right = len(s.name) + 1
        clean = s.name[left:right].split(".")[-1]
        out.append(s.copy(name=re.sub(",.*$", "", clean), path_expression=s.path_expression))
    return out


@render_function("Alias", [SERIES, Param("search", "string", required=True),
                           Param("replace", "string", required=True)])
def aliasSub(ctx, seriesList, search, replace):
    """Rename each series by a regular-expression substitution: every match of ``search`` in
    the name is replaced with ``replace``, where ``\\1``, ``\\2``... refer to the groups.

    Example:

    .. code-block:: none

      &target=aliasSub(ip.*TCP*,"^.*TCP(\\d+)","\\1")

    names each series after the number following "TCP".
    """
    regex = user_regex(search, "aliasSub")
    out = []
    for s in seriesList:
        name = regex.sub(replace, s.name)
        out.append(s.copy(name=name, path_expression=s.path_expression))
    return out


@render_function("Alias", [SERIES, Param("search", "string", required=True), Param("replace", "string", required=True),
                           Param("newName", "string", required=True)])
def aliasQuery(ctx, seriesList, search, replace, newName):
    """Name each series from the last value of another query: the series' name, rewritten by the
    regular expression ``search`` -> ``replace``, is evaluated as a target, and that series'
    last non-null value is put into ``newName`` with a %-format (``%d``, ``%.2f``, ``%s``).
    No series, or no value, for the rewritten query is an error.

    Example:

    .. code-block:: none

      &target=aliasQuery(channel.power.*,"channel\\.power\\.([0-9]+)","channel.frequency.\\1", "Channel %d MHz")

    names each power series after the current frequency of its channel.
    """
    regex = user_regex(search, "aliasQuery")
    out = []
    for s in seriesList:
        query = regex.sub(replace, s.name)
        found = ctx.evaluate_text(query)
        if not found:
            raise InputError(f"aliasQuery: no series found with query: {query}")
        current = aggfuncs.reduce_series(found[0].points(), "last")
        if current is None:
            raise InputError(f"aliasQuery: cannot get last value of series: {found[0].name}")
        try:
            name = newName % current
        except (TypeError, ValueError) as exc:
            raise InputError(f"aliasQuery: newName {newName!r} must hold one %-format for the value: {exc}") from None
        out.append(s.copy(name=name, path_expression=s.path_expression))
    return out


@render_function("Special", [SERIES, Param("start", "node", default=0), Param("stop", "node", default=0)])
def substr(ctx, seriesList, start=0, stop=0):
    """Name each series by part of its path: the nodes from ``start`` up to (not including)
    ``stop``, counted from 0 (negative ones from the end; ``stop`` 0 means to the end), of the
    innermost path in the name, so ``substr(sumSeries(a.b.c), 1)`` is named ``b.c``.

    Example:

    .. code-block:: none

      &target=substr(carbon.agents.hostname.avgUpdateTime,2,4)

    is named ``hostname.avgUpdateTime``.
    """
    out = []
    for s in seriesList:
        left = s.name.rfind("(") + 1
        right = s.name.find(")")
        inner = s.name[left : right if right >= 0 else len(s.name) + 1]
        nodes = inner.split(".")[start : stop or None]
        out.append(s.copy(name=re.sub(",.*$", "", ".".join(nodes)), path_expression=s.path_expression))
    return out


def _formatter(system: str | None, units: str | None):
    if system:
        return lambda x: ("%.2f %s" if units else "%.2f%s") % format_units(x, system, units)
    return lambda x: "%.2f %s" % (x, units) if units else "%.2f" % x


@render_function("Special", [SERIES, Param("system", "string", options=("si", "binary")), Param("units", "string")])
def cactiStyle(ctx, seriesList, system=None, units=None):
    """Cacti-like legends: each name padded to a common width and followed by the series'
    current (last), maximum and minimum values, printed with two decimals. With ``system``
    (``si`` or ``binary``) the values are scaled to k/M/G... or Ki/Mi/Gi...; ``units`` is
    appended to them. Series without values show ``nan``. Useful with a legend; the values are
    not changed.

    Example:

    .. code-block:: none

      &target=cactiStyle(ganglia.*.net.bytes_out,"si","b")

    gives legends like ``ganglia.host1.net.bytes_out Current:2.40kb Max:10.04kb Min:0.00b``.
    """
    if not seriesList:
        return []
    fmt = _formatter(system, units)
    stats = [[aggfuncs.reduce_series(s.points(), f) for f in ("last", "max", "min")] for s in seriesList]
    name_width = max(len(s.name) for s in seriesList)
    widths = [max(len(fmt(int(row[i] or 3))) for row in stats) + 3 for i in range(3)]
    out = []
    for s, row in zip(seriesList, stats):
        shown = ["nan" if v is None else fmt(v) for v in row]
        name = "%*s Current:%*s Max:%*s Min:%*s " % (-name_width, s.name, -widths[0], shown[0], -widths[1],
                                                     shown[1], -widths[2], shown[2])
        out.append(s.copy(name=name, path_expression=s.path_expression))
    return out


LEGEND_VALUES = tuple(aggfuncs.AGG_FUNC_NAMES + [f + "Series" for f in aggfuncs.AGG_FUNC_NAMES] + ["si", "binary"])


def _legend_value(s, value_type: str):
    """graphite-web's aggregate of the series for a legend: "(?)" for a name it does not
    know as a reduction (the "...Series" forms)."""
    if value_type not in aggfuncs.REDUCERS and value_type not in aggfuncs.ALIASES:
        return "(?)"
    return aggfuncs.reduce_series(s.points(), value_type)


@render_function("Alias", [SERIES, Param("valuesTypes", "string", multiple=True, options=LEGEND_VALUES)])
def legendValue(ctx, seriesList, *valuesTypes):
    """Append aggregates of each series to its name for the legend, one per ``valuesTypes``
    entry: ``avg``, ``total``/``sum``, ``min``, ``max``, ``last``/``current``, ``median``,
    ``count``, ``range``, ``diff``, ``stddev``, ``multiply``, ``avg_zero``. When the last entry
    is ``si`` or ``binary`` the values are scaled to those units and laid out in columns.
    A name graphite-web does not reduce by (the ``...Series`` forms) shows ``(?)``.

    Example:

    .. code-block:: none

      &target=legendValue(Sales.widgets.largeBlue,"avg","max","si")

    gives ``Sales.widgets.largeBlue avg  12.34k   max  56.78k``.
    """
    system = None
    if valuesTypes and valuesTypes[-1] in ("si", "binary"):
        system, valuesTypes = valuesTypes[-1], valuesTypes[:-1]
    out = list(seriesList)
    for value_type in valuesTypes:
        for i, s in enumerate(out):
            value = _legend_value(s, value_type)
            if system is None:
                name = "%s (%s: %s)" % (s.name, value_type, value)
            else:
                shown = value if isinstance(value, str) or value is None else "%.2f%s" % format_units(value, system)
                name = "%-20s%-5s%-10s" % (s.name, value_type, shown)
            out[i] = s.copy(name=name, path_expression=s.path_expression)
    return out
