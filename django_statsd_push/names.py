"""The one module that builds metric names.

Why one module: a name is a contract with dashboards, the Prometheus mapping and
alert rules, and the same dimension (a view, a DB alias) must be cleaned the same way
wherever it appears. Hooks never join strings themselves; they call a builder below
(or :func:`metric` for a new family) and hand the result to ``statsd``.

A :class:`Metric` keeps its dimensions apart from its fixed words, so one value
renders either as a plain Graphite path (``request.polls_index.GET``) or, with
``STATSD_TAG_FORMAT``, as a short name plus tags (``request`` with
``view:polls_index,method:GET``; DogStatsD ``|#k:v`` or Graphite ``;k=v``).

Segments and tag values are sanitised to ``[A-Za-z0-9_-]``: a dot, space, slash,
colon or pipe inside a segment would change the Graphite tree, split the statsd line,
or (on the daemon side) name a file outside the Whisper root.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple, Union

Part = Union[str, tuple[str, str]]

_UNSAFE_SEGMENT = re.compile(r"[^A-Za-z0-9_\-]")
# Names given as plain strings (``statsd.incr("shop.orders")``) keep their dots.
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_\-.]")

HTTP_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
)


def segment(value: object) -> str:
    """Clean one path segment or tag value; never returns an empty string."""
    return _UNSAFE_SEGMENT.sub("_", str(value)) or "_"


class Metric(NamedTuple):
    """A metric name: fixed words (``str``) and dimensions (``(key, value)``), in order."""

    parts: tuple[Part, ...]


def metric(*parts: Part) -> Metric:
    """Build a :class:`Metric`; every word, tag key and value is sanitised here.

    A ``str`` is a fixed word, a ``(key, value)`` pair a dimension (a tag when
    ``STATSD_TAG_FORMAT`` is set, a path segment otherwise):

        >>> statsd.incr(metric("payments", ("provider", "stripe"), "refused"))
        # payments.stripe.refused:1|c   or, tagged,   payments.refused:1|c|#provider:stripe
    """
    return Metric(
        tuple(
            segment(part) if isinstance(part, str) else (segment(part[0]), segment(part[1]))
            for part in parts
        )
    )


class Rendered(NamedTuple):
    name: str  # what goes before ``:`` on the wire, prefix (and Graphite tags) included
    tail: str  # appended after ``value|type[|@rate]``: DogStatsD tags, else ""
    tags: tuple[tuple[str, str], ...]  # the tags carried, for test helpers


@lru_cache(maxsize=8192)
def render(stat: str | Metric, prefix: str | None, tag_format: str | None) -> Rendered:
    """Turn what a caller passed to ``statsd`` into the name and tag text to send.

    Cached: the same few hundred names are sent on every request. The client's fast
    path keeps whole line heads per name (``client/heads.py``) and renders each name once;
    this cache serves the calls it does not take (sample rates, gauges, sets, captures).
    """
    tags: tuple[tuple[str, str], ...] = ()
    if isinstance(stat, Metric):
        if tag_format:
            name = ".".join(p for p in stat.parts if isinstance(p, str))
            tags = tuple(p for p in stat.parts if not isinstance(p, str))
        else:
            name = ".".join(p if isinstance(p, str) else p[1] for p in stat.parts)
    else:
        name = _UNSAFE_NAME.sub("_", stat).strip(".")
    if prefix:
        name = f"{_UNSAFE_NAME.sub('_', prefix).strip('.')}.{name}"
    tail = ""
    if tags:
        if tag_format == "graphite":
            name += "".join(f";{key}={value}" for key, value in tags)
        else:
            tail = "|#" + ",".join(f"{key}:{value}" for key, value in tags)
    return Rendered(name, tail, tags)


# --- the metric families of docs/architecture.rst; hooks call these -----------------------------

_cached = lru_cache(maxsize=4096)


@_cached
def request(view: str, method: str | None, suffix: str | None = None) -> Metric:
    """``request.<view>.<METHOD>[.<suffix>]`` (suffix: ``request_bytes``, ``response_bytes``,
    ``db_queries``, ``db_time``)."""
    method = (method or "").upper()
    # Any string (or None: HttpRequest.method) can arrive as a method; unknown ones
    # share one series, not one each.
    method = method if method in HTTP_METHODS else "OTHER"
    parts: tuple[Part, ...] = ("request", ("view", view), ("method", method))
    return metric(*parts, suffix) if suffix else metric(*parts)


@_cached
def request_exception(exception_class: str) -> Metric:
    return metric("request", "exception", ("exception", exception_class))


@_cached
def responses(status: int, tagged: bool) -> tuple[Metric, ...]:
    """``response.<status>`` and ``response.<Nxx>``; with tags one ``response`` carries both."""
    status_class = f"{status // 100}xx"
    if tagged:
        return (metric("response", ("status", str(status)), ("status_class", status_class)),)
    return (metric("response", ("status", str(status))), metric("response", ("status_class", status_class)))


@_cached
def db_query(alias: str, vendor: str, verb: str) -> Metric:
    return metric("db", ("alias", alias), ("vendor", vendor), ("verb", verb))


@_cached
def db_error(alias: str, exception_class: str) -> Metric:
    return metric("db", ("alias", alias), "errors", ("exception", exception_class))


@_cached
def cache_op(alias: str, op: str) -> Metric:
    return metric("cache", ("alias", alias), ("op", op))


@_cached
def cache_result(alias: str, op: str, result: str) -> Metric:
    """``cache.<alias>.<op>.hit|miss``."""
    return metric("cache", ("alias", alias), ("op", op), result)


@_cached
def model_event(app_label: str, model: str, event: str) -> Metric:
    """``model.<app_label>.<model>.insert|update|delete``."""
    return metric("model", ("app", app_label), ("model", model), event)


@_cached
def migrations(alias: str, state: str) -> Metric:
    """``migrations.<alias>.applied|unapplied``."""
    return metric("migrations", ("alias", alias), state)


@_cached
def celery(task: str, event: str) -> Metric:
    """``celery.<task>.sent|started|succeeded|failed|retried|runtime``."""
    return metric("celery", ("task", task), event)


@_cached
def browser(view: str, figure: str) -> Metric:
    """``browser.<view>.<figure>``: a page's Navigation Timing figure, sent by the browser."""
    return metric("browser", ("view", view), figure)


@_cached
def check() -> Metric:
    """``statsd_check``: the counter ``manage.py statsd_check`` sends."""
    return metric("statsd_check")
