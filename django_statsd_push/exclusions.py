"""Requests that send no metrics: ``STATSD_EXCLUDE_PATHS`` and ``STATSD_EXCLUDE_VIEWS``.

Why: health checks, static files served by Django and admin pages can outnumber real
traffic and drown the dashboards. An excluded request sends nothing at all: not its
own metrics, and not those its view or the hooks emitted while it ran (its batch is
dropped), so a health check that touches the database does not show up either.

    STATSD_EXCLUDE_PATHS = ["/static/", "/healthz", r"^/admin/(?!login)"]
    STATSD_EXCLUDE_VIEWS = ["health", "polls:ping", "shop.views.robots_txt"]

A path entry is a prefix of ``request.path_info``, or a regular expression (searched,
as Django's ``IGNORABLE_404_URLS`` are) when it is a compiled pattern or a string that
starts with ``^``. A view entry is a URL name (with its namespaces) or the dotted
path of the view function or class.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["Exclusions", "parse_paths", "parse_views"]


def parse_paths(value: Any) -> tuple[tuple[str, ...], tuple[re.Pattern[str], ...]]:
    """``STATSD_EXCLUDE_PATHS`` -> (prefixes, patterns); ValueError/TypeError say why not."""
    if not isinstance(value, (list, tuple)):
        raise TypeError("not a list")
    prefixes: list[str] = []
    patterns: list[re.Pattern[str]] = []
    for entry in value:
        if isinstance(entry, re.Pattern):
            patterns.append(entry)
        elif isinstance(entry, str) and entry.startswith("^"):
            try:
                patterns.append(re.compile(entry))
            except re.error as exc:
                raise ValueError(f"{entry!r} is not a regular expression ({exc})") from None
        elif isinstance(entry, str) and entry:
            prefixes.append(entry)
        else:
            raise TypeError(f"{entry!r} is neither a path prefix nor a regular expression")
    return tuple(prefixes), tuple(patterns)


def parse_views(value: Any) -> frozenset[str]:
    """``STATSD_EXCLUDE_VIEWS`` -> the names; ValueError/TypeError say why not."""
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise TypeError("not a list")
    bad = [entry for entry in value if not isinstance(entry, str) or not entry]
    if bad:
        raise TypeError(f"{bad[0]!r} is not a URL name or dotted view path")
    return frozenset(value)


def view_path(func: Any) -> str:
    """``module.qualname`` of a resolved view (its class for class-based views)."""
    func = getattr(func, "view_class", func)
    name = getattr(func, "__qualname__", None) or type(func).__qualname__
    module = getattr(func, "__module__", None) or type(func).__module__
    return f"{module}.{name}"


class Exclusions:
    """The two settings, parsed once per settings state; :meth:`excludes` per request.

        >>> exclusions = Exclusions(parse_paths(["/static/", "^/admin/"]), parse_views(["health"]))
        >>> exclusions.excludes(request)
    """

    __slots__ = ("prefixes", "patterns", "views", "_view_paths")

    def __init__(
        self,
        paths: tuple[tuple[str, ...], tuple[re.Pattern[str], ...]],
        views: frozenset[str],
    ) -> None:
        self.prefixes, self.patterns = paths
        self.views = views
        # view function -> its dotted path: building the string on every request cost
        # more than the rest of the check. Views are few; bounded all the same.
        self._view_paths: dict[Any, str] = {}

    def __bool__(self) -> bool:
        return bool(self.prefixes or self.patterns or self.views)

    def excludes(self, request: Any) -> bool:
        path = request.path_info
        if self.prefixes and path.startswith(self.prefixes):
            return True
        for pattern in self.patterns:
            if pattern.search(path):
                return True
        if self.views:
            match = getattr(request, "resolver_match", None)
            if match is not None:
                if match.view_name in self.views:
                    return True
                func = match.func
                dotted = self._view_paths.get(func)
                if dotted is None:
                    if len(self._view_paths) >= 4096:
                        self._view_paths.clear()
                    dotted = self._view_paths[func] = view_path(func)
                return dotted in self.views
        return False
