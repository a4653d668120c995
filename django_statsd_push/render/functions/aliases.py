"""Alias: renaming series (Grafana wraps every target in aliasSub)."""

from __future__ import annotations

import re

from ..regex import user_regex
from ..registry import Param, render_function
from .common import agg_key

SERIES = Param("seriesList", "seriesList", required=True)


@render_function("Alias", [SERIES, Param("newName", "string", required=True)])
def alias(ctx, seriesList, newName):
    """Give every series the same new name."""
    return [s.copy(name=newName, path_expression=s.path_expression) for s in seriesList]


@render_function("Alias", [SERIES, Param("nodes", "nodeOrTag", required=True, multiple=True)])
def aliasByNode(ctx, seriesList, *nodes):
    """Name each series by the given nodes of its path (negative counts from the end) or tags."""
    return [s.copy(name=agg_key(s, nodes), path_expression=s.path_expression) for s in seriesList]


@render_function("Alias", [SERIES])
def aliasByMetric(ctx, seriesList):
    """Name each series by the last node of its path."""
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
    """Rename with a regular-expression substitution (``\\1`` refers to a group)."""
    regex = user_regex(search, "aliasSub")
    return [s.copy(name=regex.sub(replace, s.name), path_expression=s.path_expression) for s in seriesList]
