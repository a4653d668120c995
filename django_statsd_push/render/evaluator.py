"""Evaluating parsed targets against a Whisper store, within per-request limits."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone, tzinfo

import numpy as np

from . import functions  # noqa: F401  (registers every render function)
from . import deadline, grammar, reader
from .carbonlink import CarbonLinkPool, merge
from .cluster import Cluster, merge as merge_peers
from .errors import InputError
from .finder import Finder
from .registry import lookup
from .series import EmptyNormalize, Series
from .settings import Limits
from .timeparse import parse_time
from .tagdb import TagDB, find_nodes, parse_path, tagged_nodes


@dataclass
class Budget:
    """What one request has read so far, shared by every context copy of that request."""

    series: int = 0
    points: int = 0


@dataclass
class Context:
    """One request's time range and store; copied (``shifted``) for timeShift and friends."""

    finder: Finder
    start: int
    end: int
    now: int
    tz: tzinfo = timezone.utc
    xff: float = 0.0
    limits: Limits = field(default_factory=Limits)
    carbonlink: CarbonLinkPool | None = None
    cluster: Cluster | None = None  # peers whose series are merged into every read
    failed_peers: list[str] = field(default_factory=list)  # shared by the request's copies
    tagdb: TagDB | None = None
    events: object | None = None  # events.EventStore, for the events() function
    budget: Budget = field(default_factory=Budget)
    call: grammar.Call | None = None  # the call being evaluated, for functions that re-fetch
    cache: dict = field(default_factory=dict)  # pattern and range -> series
    files: dict = field(default_factory=dict)  # file and range -> series (or None), read once
    state: dict = field(default_factory=dict)  # per-request state such as stacked()'s totals

    def shifted(self, start: int | None = None, end: int | None = None) -> "Context":
        return replace(self, start=self.start if start is None else start, end=self.end if end is None else end)

    def datetime(self, epoch: int) -> datetime:
        return datetime.fromtimestamp(epoch, self.tz)

    def fetch(self, pattern: str, tagged: list[str] | None = None) -> list[Series]:
        """Series for a path expression over this context's range, sorted by name.

        ``tagged``: the tagged paths a ``seriesByTag(...)`` pattern stands for; a plain
        ``name;k=v`` pattern names one tagged series."""
        key = (pattern, self.start, self.end)
        cached = self.cache.get(key)
        if cached is None:
            nodes = (find_nodes(self.finder, pattern, leaves_only=True) if tagged is None
                     else tagged_nodes(self.finder.root, tagged))
            cached = self.cache[key] = self._read(nodes, pattern)
        return list(cached)  # series are never edited in place, so sharing is safe

    def _read(self, nodes: list, pattern: str) -> list[Series]:
        """Each file is read once per request and range, however many patterns match it.

        Carbon keeps writing while a request runs: read twice, one file could give two
        expressions of the same request different newest points, and a ratio such as
        asPercent(hits, hits + misses) could pass 100 % (the dashboard once showed 1.8k %).
        """
        files = self.files
        new = [node for node in nodes if (node.path, self.start, self.end) not in files]
        for node, series in zip(new, self._read_files(new, pattern)):
            files[(node.path, self.start, self.end)] = series
        found = [series for node in nodes if (series := files[(node.path, self.start, self.end)]) is not None]
        if self.cluster is not None:
            # the peers' series for the same pattern, merged gap by gap; a seriesByTag(...)
            # pattern goes to them as written: each finds its own tagged series in its tag
            # database (graphite-web's RemoteFinder does the same)
            found = merge_peers(found, self._read_peers(pattern))
        # A file first read for another pattern is shared under this one's name.
        xff = self.current_xff()
        return [s if (s.path_expression, s.xff) == (pattern, xff) else s.copy(path_expression=pattern, xff=xff)
                for s in found]

    def _read_files(self, nodes: list, pattern: str) -> list[Series | None]:
        """One Series per node (None: out of retention, or unreadable), cached points merged."""
        self.budget.series += len(nodes)
        if self.budget.series > self.limits.max_series:
            raise InputError(f"request reads more than {self.limits.max_series} series (--max-series)")
        left = self.limits.max_points - self.budget.points
        try:
            results = reader.fetch_many([node.fs_path for node in nodes], self.start, self.end, self.now, left)
        except reader.TooManyPoints:
            raise InputError(f"request reads more than {self.limits.max_points} points (--max-points)") from None
        found = [node for node, result in zip(nodes, results)
                 if result is not None and not isinstance(result, Exception)]
        cached = self.carbonlink.query([node.path for node in found]) if self.carbonlink and found else {}
        out: list[Series | None] = []
        for node, result in zip(nodes, results):
            if result is None or isinstance(result, Exception):
                out.append(None)
                continue
            (start, end, step), values, header = result
            if cached.get(node.path):
                values = merge(values, start, step, cached[node.path], header.aggregation, header.archives[0].step)
            self.budget.points += len(values)
            values.flags.writeable = False
            tags = parse_path(node.path) if ";" in node.path else {}
            out.append(Series(node.path, start, end, step, values, tags=tags, path_expression=pattern,
                              xff=self.current_xff()))
        return out

    def _read_peers(self, pattern: str) -> list[Series]:
        def make(name, start, end, step, values):
            try:
                tags = parse_path(name) if ";" in name else {}
            except InputError:  # a peer's odd name costs its tags, not the request
                tags = {}
            return Series(name, start, end, step, values, tags=tags, path_expression=pattern,
                          xff=self.current_xff())

        remote = self.cluster.fetch(pattern, self.start, self.end, self.now, self.failed_peers, make)
        self.budget.series += len(remote)
        self.budget.points += sum(len(s) for s in remote)
        if self.budget.series > self.limits.max_series:
            raise InputError(f"request reads more than {self.limits.max_series} series (--max-series)")
        if self.budget.points > self.limits.max_points:
            raise InputError(f"request reads more than {self.limits.max_points} points (--max-points)")
        return remote

    def current_xff(self) -> float:
        """The request's xFilesFactor: setXFilesFactor() changes it for everything evaluated
        after it in the request, as it edits graphite-web's shared request context."""
        return self.state.get("xFilesFactor", self.xff)

    def at_time(self, value) -> int:
        """A ``date`` parameter (at-time text or epoch seconds) as epoch seconds."""
        return int(parse_time(str(value), self.datetime(self.now), self.tz).timestamp())

    def evaluate_text(self, target: str) -> list[Series]:
        """A target built by a function (applyByNode's template, aliasQuery's query), over
        this request's range and limits."""
        result = replace(self, call=None).evaluate(grammar.parse(target))
        return series_list(result, target)

    def evaluate(self, node: grammar.Node):
        if isinstance(node, grammar.PathExpr):
            return self.fetch(node.path)
        if isinstance(node, grammar.Literal):
            return node.value
        deadline.check(f"evaluating {node.name}()")
        info = lookup(node.name)
        args = [self.evaluate(arg) for arg in node.args]
        kwargs = {key: self.evaluate(value) for key, value in node.kwargs}
        args, kwargs = info.validate(args, kwargs)
        try:
            with np.errstate(all="ignore"):  # inf/NaN arithmetic is data here, not an error
                return info.func(replace(self, call=node, xff=self.current_xff()), *args, **kwargs)
        except EmptyNormalize:
            return []
        except InputError:
            raise
        except (ArithmeticError, ValueError) as exc:  # e.g. an infinite parameter where a count is needed
            raise InputError(f"{node.name}() cannot use these arguments: {exc}") from None

    def reevaluate_first_argument(self) -> list[Series]:
        """The current call's first argument again, over this context's (changed) range."""
        if self.call is None or not self.call.args:  # e.g. a moving window as reduceSeries' function
            raise InputError("this function re-reads its first argument and cannot be called from another function")
        result = replace(self, call=None).evaluate(self.call.args[0])
        return result if isinstance(result, list) else []


def series_list(result, target: str) -> list[Series]:
    if not isinstance(result, list):
        raise InputError(f"target {target!r} is a constant, not a series")
    if not all(isinstance(s, Series) for s in result):
        raise InputError(f"target {target!r} gives series lists (mapSeries), not series: reduce them first")
    return result


def evaluate_target(ctx: Context, target: str) -> list[Series]:
    return series_list(ctx.evaluate(grammar.parse(target)), target)
