"""Helpers shared by several render functions (node keys, percentiles)."""

from __future__ import annotations

import math

from .. import grammar
from ..errors import InputError
from ..series import Series


def node_or_tag(series: Series, n, path: str | None = None) -> str:
    """Node ``n`` of the name (or of ``path``), else the tag called ``n``, else ''."""
    if isinstance(n, int) and not isinstance(n, bool):
        try:
            return (path or series.name).split(";", 2)[0].split(".")[n]
        except IndexError:
            pass
    return str(series.tags.get(str(n), ""))


def agg_key(series: Series, nodes) -> str:
    """graphite's aggKey: for function-wrapped names, nodes come from the first path inside."""
    path = None
    if series.name.endswith(")"):
        try:
            path = grammar.first_path_expression(grammar.parse(series.name))
        except InputError:
            path = None
    return ".".join(node_or_tag(series, n, path) for n in nodes)


def percentile(points, n: float, interpolate: bool = False):
    """graphite's _getPercentile: nearest rank over the non-null points, optional interpolation."""
    if not 0 <= n <= 100:
        raise InputError(f"percentile {n:g} is outside [0, 100]")
    values = sorted(float(p) for p in points if p is not None and not math.isnan(p))
    if not values:
        return None
    fractional = (n / 100.0) * (len(values) + 1)
    rank = int(fractional)
    fraction = fractional - rank
    if not interpolate:
        rank += int(math.ceil(fraction))
    result = values[min(max(rank, 1), len(values)) - 1]  # ranks past either end take that end
    if interpolate and rank < len(values):
        result = result + fraction * (values[rank] - result)
    return result

