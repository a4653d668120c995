"""Tags and events: seriesByTag, groupByTags, aliasByTags, events (graphite's tag functions)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..registry import FUNCTIONS, Param, render_function
from ..series import Series
from ..tagdb import parse_path
from .aliases import aliasByNode
from .combine import _combine_groups, aggregate_lists

SERIES = Param("seriesList", "seriesList", required=True)


@render_function("Special", [Param("tagExpressions", "string", required=True, multiple=True)])
def seriesByTag(ctx, *tagExpressions):
    """Series whose tags match every one of ``tagExpressions``: ``tag=value``, ``tag!=value``,
    ``tag=~regex``, ``tag!=~regex`` (regexes anchored at the start of the value). An
    expression matching the empty value also matches series without that tag; at least
    one must require a non-empty value.

    Example:

    .. code-block:: none

      &target=seriesByTag('name=request.count','env=~prod|staging')
    """
    if ctx.tagdb is None and ctx.cluster is None:
        return []
    # with cluster peers, ctx.fetch also asks each of them for this expression (local=1)
    paths = ctx.tagdb.find_series(tagExpressions, limit=ctx.limits.max_series) if ctx.tagdb is not None else []
    raw = ctx.call.raw if ctx.call is not None and ctx.call.raw else _written(tagExpressions)
    return ctx.fetch(raw, tagged=paths)


def _written(exprs) -> str:
    return "seriesByTag(" + ",".join(f"'{e}'" for e in exprs) + ")"


@render_function("Combine", [SERIES, Param("callback", "aggOrSeriesFunc", required=True),
                             Param("tags", "tag", required=True, multiple=True)])
def groupByTags(ctx, seriesList, callback, *tags):
    """Group series by the values of the given ``tags`` and combine each group with
    ``callback`` (an aggregation such as ``sum`` or ``average``, or an aggregating function);
    each result is named ``name;tag=value;...`` (``name`` is the shared name tag, else the
    callback) and carries those tags.

    Example:

    .. code-block:: none

      &target=groupByTags(seriesByTag('name=cpu'),'average','dc')
    """
    if not tags:
        raise InputError("groupByTags(): no tags specified")
    if "name" in tags:
        def key_of(s: Series) -> str:
            return ";".join([s.tags.get("name", s.name),
                             *sorted(f"{t}={s.tags.get(t, '')}" for t in tags if t != "name")])
    else:
        names = {s.tags.get("name", s.name) for s in seriesList}
        shared = names.pop() if len(names) == 1 else callback

        def key_of(s: Series) -> str:
            return ";".join([shared, *sorted(f"{t}={s.tags.get(t, '')}" for t in tags)])

    if callback in FUNCTIONS and FUNCTIONS[callback].aggregator:
        def combine(group):
            return FUNCTIONS[callback].func(ctx, group)
    else:
        def combine(group):
            return aggregate_lists(ctx, [group], callback)
    out = []
    for s in _combine_groups(seriesList, key_of, combine):
        try:
            tags = parse_path(s.name)
        except InputError as exc:
            raise InputError(f"groupByTags: {exc} (a series lacks one of the tags {', '.join(tags)})") from None
        out.append(s.copy(name=s.name, path_expression=s.name, tags=tags))
    return out


@render_function("Alias", [SERIES, Param("tags", "nodeOrTag", required=True, multiple=True)])
def aliasByTags(ctx, seriesList, *tags):
    """Name each series by the given ``tags`` (tag names, or node numbers as in aliasByNode),
    their values joined with dots.

    Example:

    .. code-block:: none

      &target=aliasByTags(seriesByTag('name=cpu'),'server','name')
    """
    return aliasByNode(ctx, seriesList, *tags)


@render_function("Special", [Param("tags", "string", required=True, multiple=True)])
def events(ctx, *tags):
    """How many events (from ``/events/``) fall in each second, for ``drawAsInfinite``:
    counts the events carrying every one of the given ``tags``; ``"*"`` counts them all.

    Example:

    .. code-block:: none

      &target=events("deploy")

    and, drawn as vertical lines: ``drawAsInfinite(events("deploy"))``.
    """
    name = 'events("' + '", "'.join(tags) + '")'
    wanted = None if tags == ("*",) else list(tags)
    start, end = ctx.start, ctx.end
    points = end - start
    if ctx.budget.points + points > ctx.limits.max_points:
        raise InputError(f"events() over {points} seconds needs more than {ctx.limits.max_points} points")
    ctx.budget.points += points
    values = np.full(points, np.nan)
    if ctx.events is not None:
        for event in ctx.events.find(start, end, tags=wanted):
            offset = min(int(event["when"]) - start, points - 1)  # one at ``end`` (now) counts in the last second
            values[offset] = 1 if np.isnan(values[offset]) else values[offset] + 1
    return [Series(name, start, end, 1, values, consolidation="sum", xff=ctx.xff)]
