"""The Carbon sink: a ``Snapshot`` -> the lines etsy statsd 0.9's graphite backend writes.

``format_snapshot`` is pure (snapshot + settings -> ``(name, value, timestamp)`` lines),
so the compatibility tests compare it against etsy's output directly. ``GraphiteSink``
(``graphite_sink.py``) adds etsy's ``graphiteStats`` lines and hands the batch to a
``CarbonClient``, which delivers it on its own thread: a flush never waits for Carbon.

Names: etsy builds ``name;tag=value;...`` from DogStatsD tags (first ``;`` of a tag ->
``_``, first ``:`` -> ``=``) and strips everything outside ``[A-Za-z0-9_.;=-]`` after
turning whitespace into ``_`` and ``/`` into ``-``. Beyond etsy: Telegraf's
``name,k=v`` tags are tags, and tags Carbon would refuse are mended (``carbon_tags``). That sanitising happens here, not in
the parser: the aggregator keys series by the raw name (the Prometheus bridge needs it,
and it keeps the ingest path free of regexes). etsy sanitises at parse time, so raw
names that clean up to one Graphite name are one series there; ``format_snapshot``
combines them the same way before writing (counters summed, timer values pooled,
sets united, gauges: the latest update wins, see ``GaugeHistory``), so Carbon gets
one line per name and ``numStats`` counts Graphite names, as in etsy.

Safety: whatever the settings, a name that could leave the Whisper root or break
Carbon's line format (``/``, ``\\``, NUL, whitespace, an empty or over-long path
segment, over-long name) is not written; it is counted in ``names_rejected``.
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from django_statsd_push.server.carbon_client import Line
from django_statsd_push.server.js import js_round, js_str
from django_statsd_push.server.snapshot import SeriesKey, Snapshot
from django_statsd_push.server.timer_stats import timer_stats

V = TypeVar("V")

_WHITESPACE = re.compile(r"\s+")
_NOT_ALLOWED = re.compile(r"[^a-zA-Z_\-0-9.;=]")
# Anything Carbon would turn into a path outside the root, or that breaks its line format.
_UNSAFE = re.compile(r"[/\\\x00\s]")
MAX_NAME_BYTES = 1024
MAX_SEGMENT_BYTES = 200  # a Whisper file name is segment + ".wsp"; filesystems stop at 255


def sanitize(key: str) -> str:
    """etsy's ``sanitizeKeyName``."""
    return _NOT_ALLOWED.sub("", _WHITESPACE.sub("_", key).replace("/", "-"))


def etsy_key(series: SeriesKey, sanitize_tags: bool = True,
             on_dropped_tag: Callable[[str], None] | None = None) -> str:
    """The Graphite name etsy writes for a series (``name;k=v;...``, before namespaces),
    with the tags Carbon would refuse mended (``carbon_tag``).

    Telegraf/InfluxDB tags in the name (``name,k=v``) are tags too: etsy would strip
    the commas and glue them into the name (``namek=v``). A ``;`` in the name itself
    is left as etsy writes it.
    """
    name, tags = series
    if "," in name:
        name, *influx = name.split(",")
        tags = tuple(t.replace("=", ":", 1) for t in influx) + tuple(tags)
    if sanitize_tags:
        head = sanitize(name)
    else:
        # keyNameSanitize=false: etsy's backend sanitises what precedes the first ";"
        # only, whether that ";" came from a tag or from the name itself.
        path, sep, rest = name.partition(";")
        head = sanitize(path) + sep + rest
    if not tags:
        return head
    parts = [head]
    for tag in tags:
        text = tag.replace(";", "_", 1).replace(":", "=", 1)  # etsy's; a 2nd ";" splits the tag
        for segment in (sanitize(text) if sanitize_tags else text).split(";"):
            mended = carbon_tag(segment)
            if mended is None:
                if on_dropped_tag is not None:
                    on_dropped_tag(segment)
            else:
                parts.append(mended)
    return ";".join(parts)


def carbon_tag(tag: str) -> str | None:
    """``tag`` in a form carbon's ``TaggedSeries`` accepts, or None.

    Carbon refuses a tag without ``=`` or with an empty value (DogStatsD's bare
    ``#flag``, ``#k:``): those become ``flag=true`` / ``k=true``, as Telegraf reads
    them. ``!`` and ``^`` in a tag name become ``_``, a value's leading ``~`` too (both
    only possible with keyNameSanitize=false). A tag with no name (``#:v``, an empty
    tag) cannot be mended: None.
    """
    key, _, value = tag.partition("=")
    if not key:
        return None
    if "!" in key or "^" in key:
        key = key.replace("!", "_").replace("^", "_")
    if not value:
        value = "true"
    elif value[0] == "~":
        value = "_" + value[1:]
    return key + "=" + value


def is_safe(name: str) -> bool:
    """Can Carbon store this name inside its Whisper root?"""
    if not name or _UNSAFE.search(name) or len(name.encode()) > MAX_NAME_BYTES:
        return False
    path = name.split(";", 1)[0]
    return all(0 < len(seg.encode()) <= MAX_SEGMENT_BYTES for seg in path.split("."))


@dataclass
class GraphiteConfig:
    """etsy's graphite backend settings (etsy's config names in comments)."""

    legacy_namespace: bool = True  # graphite.legacyNamespace
    global_prefix: str = "stats"  # graphite.globalPrefix
    prefix_counter: str = "counters"  # graphite.prefixCounter
    prefix_timer: str = "timers"  # graphite.prefixTimer
    prefix_gauge: str = "gauges"  # graphite.prefixGauge
    prefix_set: str = "sets"  # graphite.prefixSet
    global_suffix: str | None = None  # graphite.globalSuffix
    flush_counts: bool = True  # flush_counts
    key_name_sanitize: bool = True  # keyNameSanitize
    percent_threshold: Sequence[float] = (90,)  # percentThreshold
    # histogram: [{metric: 'api.latency', bins: [10, 50, 'inf']}]: first substring match wins
    histogram: Sequence[tuple[str, Sequence[float | str]]] = ()
    calculated_timer_metrics: Sequence[str] | None = None  # calculatedTimerMetrics
    namespaces: dict[str, list[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for option in ("global_prefix", "prefix_counter", "prefix_timer", "prefix_gauge", "prefix_set",
                       "global_suffix"):
            value = getattr(self, option)
            if value and not is_safe(value) or (value and ";" in value):
                raise ValueError(f"graphite {option} {value!r} is not a valid Graphite path")
        if self.legacy_namespace:
            self.namespaces = {
                "global": ["stats"], "counter": ["stats"], "timer": ["stats", "timers"],
                "gauge": ["stats", "gauges"], "set": ["stats", "sets"],
            }
            return
        base = [self.global_prefix] if self.global_prefix else []
        self.namespaces = {"global": base}
        for kind, prefix in (("counter", self.prefix_counter), ("timer", self.prefix_timer),
                             ("gauge", self.prefix_gauge), ("set", self.prefix_set)):
            self.namespaces[kind] = base + ([prefix] if prefix else [])

    @property
    def suffix(self) -> str:
        return "" if self.global_suffix is None else "." + self.global_suffix

    def bins_for(self, key: str) -> Sequence[float | str]:
        for metric, bins in self.histogram:
            if metric in key:
                return bins
        return ()


def by_graphite_name(table: Mapping[SeriesKey, V], name_of: Callable[[SeriesKey], str],
                     combine: Callable[[V, V], V]) -> dict[str, V]:
    """``table`` keyed by Graphite name; series sharing a name are combined in table order.

    Without a collision (the usual case) this is one dict comprehension.
    """
    merged = {name_of(series): value for series, value in table.items()}
    if len(merged) == len(table):
        return merged
    merged = {}
    for series, value in table.items():
        name = name_of(series)
        merged[name] = combine(merged[name], value) if name in merged else value
    return merged


def _pool(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(sorted(a + b))


class GaugeHistory:
    """What the Carbon sink remembers between flushes to give colliding gauges one value.

    etsy keeps one gauge per Graphite name, so the last update of any raw name that
    cleans up to it wins. A snapshot holds each raw series' current value but not when
    it was last set, so the winner is the raw series whose value changed since the
    previous flush (the later-seen one if several did); if none changed, the value
    written last time stays. The daemon's own ``timestamp_lag`` always wins: etsy sets
    it at flush time, after every update. Limits: a delta (``+1|g``) applies to its own
    raw series, not to the shared value, and an update that leaves a raw series' value
    unchanged goes unnoticed.
    """

    def __init__(self) -> None:
        self.previous: Mapping[SeriesKey, float] = {}
        self.written: dict[str, float] = {}  # names with several raw series only

    def merge(self, snapshot: Snapshot, name_of: Callable[[SeriesKey], str]) -> dict[str, float]:
        gauges = snapshot.gauges
        merged = {name_of(series): value for series, value in gauges.items()}
        written: dict[str, float] = {}
        if len(merged) < len(gauges):
            groups: dict[str, list[SeriesKey]] = {}
            for series in gauges:
                groups.setdefault(name_of(series), []).append(series)
            lag = SeriesKey(f"{snapshot.prefix_stats}.timestamp_lag")
            previous = self.previous
            for name, members in groups.items():
                if len(members) == 1:
                    continue
                changed = [s for s in members if previous.get(s) != gauges[s]]
                if lag in members:
                    value = gauges[lag]
                elif changed:
                    value = gauges[changed[-1]]
                else:
                    value = self.written.get(name, gauges[members[-1]])
                merged[name] = written[name] = value
        self.previous, self.written = gauges, written
        return merged


def format_snapshot(snapshot: Snapshot, config: GraphiteConfig,
                    on_rejected: Callable[[str], None] | None = None,
                    gauge_history: GaugeHistory | None = None,
                    on_dropped_tag: Callable[[str], None] | None = None) -> list[Line]:
    """All lines of one flush except etsy's four ``graphiteStats`` lines (see GraphiteSink).

    ``gauge_history`` carries colliding gauges' values from one flush to the next; the
    sink passes its own. Without it each call starts afresh.
    """
    started = time.monotonic()
    ts = js_round(snapshot.timestamp)
    ns = config.namespaces
    suffix = config.suffix
    lines: list[Line] = []
    num_stats = 0
    sanitize_tags = config.key_name_sanitize
    names: dict[SeriesKey, str] = {}
    writable: dict[str, bool] = {}

    def name_of(series: SeriesKey) -> str:
        name = names.get(series)
        if name is None:
            name = names[series] = etsy_key(series, sanitize_tags, on_dropped_tag)
        return name

    def safe(key: str) -> bool:
        """Checked (and a rejection counted) once per name a flush.

        The namespaces and suffix around it are checked when the config is made, so a
        safe key makes safe lines.
        """
        ok = writable.get(key)
        if ok is None:
            ok = writable[key] = is_safe(key) and len(key) <= MAX_NAME_BYTES - 100
            if not ok and on_rejected is not None:
                on_rejected(key)
        return ok

    def fmt(namespace: list[str], key: str, *parts: str) -> str:
        name, sep, tags = key.partition(";")
        return ".".join([*namespace, name, *parts]) + suffix + sep + tags

    def add(name: str, value: float) -> None:
        lines.append((name, js_str(value), ts))

    interval = snapshot.interval
    for key, value in by_graphite_name(snapshot.counters, name_of, operator.add).items():
        num_stats += 1
        if not safe(key):
            continue
        if config.legacy_namespace:
            add(fmt(ns["counter"], key), value / interval)
            if config.flush_counts:
                add(fmt(["stats_counts"], key), value)
        else:
            add(fmt(ns["counter"], key, "rate"), value / interval)
            if config.flush_counts:
                add(fmt(ns["counter"], key, "count"), value)

    timer_counts = by_graphite_name(snapshot.timer_counts, name_of, operator.add)
    for key, values in by_graphite_name(snapshot.timers, name_of, _pool).items():
        num_stats += 1
        if not safe(key):
            continue
        stats = timer_stats(values, timer_counts.get(key, 0), interval,
                            config.percent_threshold, config.bins_for(key),
                            config.calculated_timer_metrics)
        for stat, value in stats.items():
            if isinstance(value, dict):
                for sub, sub_value in value.items():
                    add(fmt(ns["timer"], key, stat, sub), sub_value)
            else:
                add(fmt(ns["timer"], key, stat), value)

    for key, value in (gauge_history or GaugeHistory()).merge(snapshot, name_of).items():
        num_stats += 1
        if safe(key):
            add(fmt(ns["gauge"], key), value)

    for key, members in by_graphite_name(snapshot.sets, name_of, operator.or_).items():
        num_stats += 1
        if safe(key):
            add(fmt(ns["set"], key, "count"), len(members))

    prefix = snapshot.prefix_stats
    calculation_ms = js_round((time.monotonic() - started) * 1000)
    if config.legacy_namespace:
        add(f"{prefix}.numStats{suffix}", num_stats)
        add(f"stats.{prefix}.graphiteStats.calculationtime{suffix}", calculation_ms)
        add(f"stats.{prefix}.processing_time{suffix}", js_round(snapshot.processing_ms))
    else:
        add(fmt(ns["global"], prefix, "numStats"), num_stats)
        add(fmt(ns["global"], prefix, "graphiteStats", "calculationtime"), calculation_ms)
        add(fmt(ns["global"], prefix, "processing_time"), js_round(snapshot.processing_ms))
    return lines
