"""Graph and Special: constant lines, and the style functions (values pass through;
names change only where graphite-web changes them, so Grafana legends match)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..registry import Param, render_function
from ..series import Series, fmt_g
from .transform import consolidateBy

SERIES = Param("seriesList", "seriesList", required=True)


def constant_line(ctx, value) -> Series:
    start, end = int(ctx.start), int(ctx.end)
    step = max(int((end - start) / 2.0), 1)
    number = np.nan if value is None else float(value)  # aggregateLine of a series without values
    return Series(str(value), start, end, step, np.full(3, number), path_expression=f"constantLine({value})",
                  xff=ctx.xff)


@render_function("Special", [Param("value", "float", required=True)])
def constantLine(ctx, value):
    """A horizontal line at ``value`` over the requested range (three points: start, middle and
    end), named after the value.

    Example:

    .. code-block:: none

      &target=constantLine(123.456)
    """
    return [constant_line(ctx, value)]


@render_function("Graph", [Param("value", "float", required=True), Param("label", "string"),
                           Param("color", "string")])
def threshold(ctx, value, label=None, color=None):
    """A horizontal line at ``value``, like constantLine, named ``label`` if given and drawn in
    ``color`` (a colour name or hex code) in graph images.

    Example:

    .. code-block:: none

      &target=threshold(123.456, "omgwtfbbq", "red")
    """
    series = constant_line(ctx, value)
    if label:
        series = series.copy(name=label, path_expression=series.path_expression)
    if color:
        series = series.copy(options=dict(series.options, color=color))
    return [series]


@render_function("Graph", [SERIES, Param("theColor", "string", required=True)])
def color(ctx, seriesList, theColor):
    """Style only: draw the series in ``theColor``, a colour name (``red``) or hex code
    (``ff0000``; no ``#``). Values and names are unchanged.

    Example:

    .. code-block:: none

      &target=color(collectd.hostname.cpu.0.user, 'green')
    """
    return [s.copy(options=dict(s.options, color=theColor)) for s in seriesList]


@render_function("Graph", [SERIES, Param("width", "float", required=True)])
def lineWidth(ctx, seriesList, width):
    """Style only: draw the series with lines ``width`` pixels wide. Values and names are unchanged.

    Example:

    .. code-block:: none

      &target=lineWidth(server01.instance01.memory.free,5)
    """
    return [s.copy(options=dict(s.options, lineWidth=width)) for s in seriesList]


@render_function("Graph", [SERIES, Param("dashLength", "integer", default=5)])
def dashed(ctx, seriesList, dashLength=5):
    """Style only: draw the series with dashes ``dashLength`` pixels long (default 5); the series
    is renamed ``dashed(name, length)`` as graphite-web does.

    Example:

    .. code-block:: none

      &target=dashed(server01.instance01.memory.free,3)
    """
    return [s.with_tag("dashed", dashLength, name=f"dashed({s.name}, {fmt_g(dashLength)})",
                       path_expression=s.path_expression, options=dict(s.options, dashed=dashLength))
            for s in seriesList]


@render_function("Graph", [SERIES])
def secondYAxis(ctx, seriesList):
    """Style only: draw the series against the second (right-hand) Y axis; the series is renamed
    ``secondYAxis(name)`` as graphite-web does.

    Example:

    .. code-block:: none

      &target=secondYAxis(server01.instance01.memory.free)
    """
    return [s.with_tag("secondYAxis", 1, name=f"secondYAxis({s.name})", path_expression=s.path_expression,
                       options=dict(s.options, secondYAxis=True)) for s in seriesList]


@render_function("Graph", [SERIES, Param("stack", "string")])
def stacked(ctx, seriesList, stack=None):
    """Stack the series on top of each other: each value becomes the running total of the series
    so far at that point, within the stack named ``stack`` (series of different stacks are
    stacked separately). Without a stack name the series are renamed ``stacked(name)``. Drawn
    as filled areas in graph images.

    Example:

    .. code-block:: none

      &target=stacked(company.server.application01.ifconfig.TXPackets, 'tx')
    """
    name = stack or "__DEFAULT__"
    totals = ctx.state.setdefault("totalStack", {}).get(name, np.zeros(0))
    out = []
    for s in seriesList:
        v = s.values
        if len(totals) < len(v):
            totals = np.concatenate((totals, np.zeros(len(v) - len(totals))))
        running = totals[: len(v)] + np.nan_to_num(v, nan=0.0)
        totals = np.concatenate((np.where(np.isnan(v), totals[: len(v)], running), totals[len(v):]))
        values = np.where(np.isnan(v), np.nan, running)
        if name == "__DEFAULT__":
            new = s.with_tag("stacked", name, name=f"stacked({s.name})", values=values)
        else:
            new = s.copy(values=values)
        out.append(new.copy(options=dict(new.options, stacked=True)))
    ctx.state["totalStack"][name] = totals
    return out


@render_function("Graph", [SERIES, Param("alpha", "float", required=True)])
def alpha(ctx, seriesList, alpha):
    """Style only: the opacity of the series in graph images, ``alpha`` from 0 (transparent) to
    1 (opaque). Values and names are unchanged.

    Example:

    .. code-block:: none

      &target=alpha(Sales.widgets.largeBlue,0.5)
    """
    return [s.copy(options=dict(s.options, alpha=alpha), path_expression=s.path_expression) for s in seriesList]


@render_function("Graph", [SERIES])
def drawAsInfinite(ctx, seriesList):
    """Style only: draw a vertical line from the bottom to the top of the graph at every point
    with a non-zero value (deploys, events); the series is renamed ``drawAsInfinite(name)``.

    Example:

    .. code-block:: none

      &target=drawAsInfinite(Testing.script.exitCode)
    """
    return [s.with_tag("drawAsInfinite", 1, name=f"drawAsInfinite({s.name})", path_expression=s.path_expression,
                       options=dict(s.options, drawAsInfinite=True)) for s in seriesList]


@render_function("Graph", [SERIES])
def areaBetween(ctx, seriesList):
    """Fill the area between exactly two series, the first the lower bound and the second the
    upper one: both are stacked and the lower one is not drawn. Both are named
    ``areaBetween(path)`` after the upper one's path expression and take its tags. An empty
    list gives nothing (graphite-web 1.1.8 fails the request).

    Example:

    .. code-block:: none

      &target=areaBetween(service.latency.{min,max})
      &target=areaBetween(group(minSeries(a.*.min),maxSeries(a.*.max)))
    """
    if not seriesList:  # a metric not there (yet): nothing to draw, as for other functions
        return []
    if len(seriesList) != 2:
        raise InputError(f"areaBetween: the series list must hold exactly 2 series, not {len(seriesList)}")
    lower, upper = seriesList
    name = f"areaBetween({upper.path_expression})"
    tags = dict(upper.tags, areaBetween="1")
    return [lower.copy(name=name, tags=tags, path_expression=lower.path_expression,
                       options=dict(lower.options, stacked=True, invisible=True)),
            upper.copy(name=name, tags=dict(tags), path_expression=upper.path_expression,
                       options=dict(upper.options, stacked=True))]


@render_function("Graph", [Param("ts", "date", required=True), Param("label", "string"), Param("color", "string")])
def verticalLine(ctx, ts, label=None, color=None):
    """A vertical line at time ``ts`` (at-time syntax: ``-1h``, ``12:00_20231114``, epoch
    seconds), which must lie in the requested range; ``label`` names it
    (``verticalLine(<epoch>)`` without one; graphite-web leaves it unnamed) and ``color``
    colours it in graph images.

    Example:

    .. code-block:: none

      &target=verticalLine("12:3420131108","event","blue")
    """
    at = ctx.at_time(ts)
    if at < ctx.start:
        raise InputError(f"verticalLine(): timestamp {at} exists before start of range")
    if at > ctx.end:
        raise InputError(f"verticalLine(): timestamp {at} exists after end of range")
    options = {"drawAsInfinite": True}
    if color:
        options["color"] = color
    # graphite-web leaves an unlabelled line's name None (JSON null), which the functions
    # that read names would fail on: ours is named after its time instead
    name = label or f"verticalLine({at})"
    return [Series(name, at, at, 1, np.ones(2), xff=ctx.xff, options=options)]


@render_function("Special", [SERIES])
def cumulative(ctx, seriesList):
    """Consolidate by summing, the same as ``consolidateBy(seriesList, "sum")``: when a graph has
    fewer pixels than points (or maxDataPoints is given), each drawn point is the total of the
    points it stands for rather than their average.

    Example:

    .. code-block:: none

      &target=cumulative(sales.widgets.sold)
    """
    return consolidateBy(ctx, seriesList, "sum")


@render_function("Special", [SERIES, Param("xFilesFactor", "float", required=True)], aliases=("xFilesFactor",))
def setXFilesFactor(ctx, seriesList, xFilesFactor):
    """The share (0 to 1) of a bucket's points that must be non-null for the bucket to get a
    value when these series are consolidated or aggregated: ``xFilesFactor``. It also becomes
    the default of every function evaluated after this one in the request (graphite-web's
    request-wide value). ``xFilesFactor`` is another name for this function.

    Example:

    .. code-block:: none

      &target=summarize(setXFilesFactor(Sales.widgets.largeBlue,0.5),'1hour','sum')
      &target=xFilesFactor(Sales.widgets.largeBlue,0.5)
    """
    ctx.state["xFilesFactor"] = xFilesFactor
    return [s.with_tag("xFilesFactor", xFilesFactor, xff=xFilesFactor, path_expression=s.path_expression)
            for s in seriesList]
