"""The Carbon sink: a ``Snapshot`` -> the lines etsy statsd 0.9's graphite backend writes.

``format_snapshot`` is pure (snapshot + settings -> Carbon's plaintext, ``name value
ts`` lines, in a few large pieces), so the compatibility tests compare it against etsy's
output directly (``carbon_client.lines_of`` reads it back as tuples). ``GraphiteSink``
(``graphite_sink.py``) adds etsy's ``graphiteStats`` lines and hands the batch to a
``CarbonClient``, which delivers it on its own thread: a flush never waits for Carbon.

Names: etsy builds ``name;tag=value;...`` from DogStatsD tags (first ``;`` of a tag ->
``_``, first ``:`` -> ``=``) and strips everything outside ``[A-Za-z0-9_.;=-]`` after
turning whitespace into ``_`` and ``/`` into ``-``. Beyond etsy: Telegraf's
``name,k=v`` tags are tags, and tags Carbon would refuse are mended (``carbon_tag``).
That sanitising happens here, not in the parser: the aggregator keys series by the raw
name (the Prometheus bridge needs it, and it keeps the ingest path free of regexes).
etsy sanitises at parse time, so raw names that clean up to one Graphite name are one
series there; ``format_snapshot`` combines them the same way before writing (counters
summed, timer values pooled, sets united, gauges: the latest update wins, see
``GaugeHistory``), so Carbon gets one line per name and ``numStats`` counts Graphite
names, as in etsy.

Safety: whatever the settings, a name that could leave the Whisper root or break
Carbon's line format (``/``, ``\\``, NUL, whitespace, an empty or over-long path
segment, over-long name) is not written; it is counted in ``names_rejected``.
"""

from __future__ import annotations

import operator
import re
import time
from array import array
from itertools import chain, repeat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from django_statsd_push.server.js import js_round, js_strs
from django_statsd_push.server.snapshot import SeriesKey, Snapshot
from django_statsd_push.server.timer_stats import timer_table

V = TypeVar("V")

_WHITESPACE = re.compile(r"\s+")
_NOT_ALLOWED = re.compile(r"[^a-zA-Z_\-0-9.;=]")
_CLEAN = re.compile(r"[a-zA-Z_\-0-9.;=]*\Z")
# Anything Carbon would turn into a path outside the root, or that breaks its line format.
_UNSAFE = re.compile(r"[/\\\x00\s]")
# all_safe: is_safe's refusals on newline-joined ASCII names (ASCII whitespace as \s has it).
_ANY_UNSAFE_CHAR = re.compile(r"[/\\\x00\t\r\f\v \x1c-\x1f]")
_EMPTY_SEGMENT = ("..", ".;", ".\n", "\n.", "\n;", "\n\n")
_ALL_CLEAN = re.compile(r"[a-zA-Z_\-0-9.;=\n]*\Z")
_NAME, _TAGS = operator.itemgetter(0), operator.itemgetter(1)
MAX_NAME_BYTES = 1024
MAX_SEGMENT_BYTES = 200  # a Whisper file name is segment + ".wsp"; filesystems stop at 255


def sanitize(key: str) -> str:
    """etsy's ``sanitizeKeyName``."""
    if _CLEAN.match(key):  # most names: one scan instead of three
        return key
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


def all_safe(names: Iterable[str]) -> bool:
    """True when every name is safe, checked in one pass (False: check them one by one).

    Joined by newlines (never inside a name: the protocol splits lines on them), the
    names are searched once for what ``is_safe`` refuses: an unsafe character, an empty
    path segment, a name long enough that a segment or the whole could be too long.
    No names at all is False too (nothing to check one by one).
    """
    text = "\n".join(names)
    if not text or not text.isascii() or text[0] in ".;\n" or text[-1] in ".\n":  # "\n": an empty name
        return False
    if any(pair in text for pair in _EMPTY_SEGMENT) or _ANY_UNSAFE_CHAR.search(text):
        return False  # (a ".." inside tags is safe, but rare: is_safe decides then)
    return max(map(len, text.split("\n"))) <= MAX_SEGMENT_BYTES


def is_safe(name: str) -> bool:
    """Can Carbon store this name inside its Whisper root?"""
    if not name or _UNSAFE.search(name):
        return False
    size = len(name) if name.isascii() else len(name.encode())
    if size > MAX_NAME_BYTES:
        return False
    path = name.partition(";")[0]
    if not path or path[0] == "." or path[-1] == "." or ".." in path:  # an empty segment
        return False
    return size <= MAX_SEGMENT_BYTES or all(len(seg.encode()) <= MAX_SEGMENT_BYTES for seg in path.split("."))


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


def graphite_names(series: Sequence[SeriesKey], sanitize_tags: bool = True,
                   on_dropped_tag: Callable[[str], None] | None = None,
                   cache: dict[SeriesKey, str] | None = None) -> list[str]:
    """``etsy_key`` of every series, in order.

    Most names are untagged and already clean (no tag to mend or drop, no Telegraf
    ``,``): that is checked for all of them in one pass over the joined text, and then
    the raw names are the Graphite names. Otherwise each series goes through
    ``etsy_key``, once per ``cache`` (one flush), so ``on_dropped_tag`` hears of a
    series' dropped tags once however many tables hold it.
    """
    names = list(map(_NAME, series))
    if not any(map(_TAGS, series)) and _ALL_CLEAN.match("\n".join(names)):
        return names
    if cache is None:
        cache = {}
    out = []
    for one in series:
        name = cache.get(one)
        if name is None:
            name = cache[one] = etsy_key(one, sanitize_tags, on_dropped_tag)
        out.append(name)
    return out


def by_graphite_name(table: Mapping[SeriesKey, V], names_of: Callable[[Sequence[SeriesKey]], list[str]],
                     combine: Callable[[V, V], V]) -> dict[str, V]:
    """``table`` keyed by Graphite name; series sharing a name are combined in table order."""
    names = names_of(list(table))
    merged = dict(zip(names, table.values()))
    if len(merged) == len(table):  # no collision: the usual case
        return merged
    merged = {}
    for name, value in zip(names, table.values()):
        merged[name] = combine(merged[name], value) if name in merged else value
    return merged


def _pool(a: Sequence[float], b: Sequence[float]) -> Sequence[float]:
    """Timer values of two raw series with one Graphite name (``timer_table`` sorts)."""
    return array("d", a) + array("d", b)


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

    def merge(self, snapshot: Snapshot, names_of: Callable[[Sequence[SeriesKey]], list[str]]) -> dict[str, float]:
        gauges = snapshot.gauges
        names = names_of(list(gauges))
        merged = dict(zip(names, gauges.values()))
        written: dict[str, float] = {}
        if len(merged) < len(gauges):
            groups: dict[str, list[SeriesKey]] = {}
            for name, series in zip(names, gauges):
                groups.setdefault(name, []).append(series)
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
                    on_dropped_tag: Callable[[str], None] | None = None) -> list[str]:
    """All lines of one flush except etsy's four ``graphiteStats`` lines (see GraphiteSink),
    as plaintext: a list of texts of whole lines, one per stat column.

    ``gauge_history`` carries colliding gauges' values from one flush to the next; the
    sink passes its own. Without it each call starts afresh.

    Lines come out type by type as in etsy (counters, timers, gauges, sets, then the
    daemon's own), and within a type stat by stat rather than name by name: the names
    and values of one stat are built as whole columns, which is what makes a flush of
    half a million names fast in Python. Carbon, and etsy's users, see a set of lines;
    the order within a flush carries no meaning. A column becomes text in one
    ``join`` over its parts (prefix, path, suffix, value, timestamp), with no string
    or tuple per line: at two million lines a flush, building line tuples and then
    writing each one out was more than the stats themselves.
    """
    started = time.monotonic()
    ts = js_round(snapshot.timestamp)
    end = f" {ts}\n"
    ns = config.namespaces
    suffix = config.suffix
    chunks: list[str] = []
    num_stats = 0
    sanitize_tags = config.key_name_sanitize
    writable: dict[str, bool] = {}

    names: dict[SeriesKey, str] = {}  # etsy_key of each series that needed it: tags dropped counted once a flush

    def names_of(series: Sequence[SeriesKey]) -> list[str]:
        return graphite_names(series, sanitize_tags, on_dropped_tag, names)

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

    def emit(namespace: list[str], keys: _Keys, stat: str, values: Sequence[float]) -> None:
        """One stat for many names, ``values`` in the order of ``keys``."""
        head = ".".join(namespace) + "." if namespace else ""
        tail = ("." + stat if stat else "") + suffix
        paths, tags = keys
        if not paths:
            return
        if tags is None:
            parts = zip(repeat(head), paths, repeat(tail + " "), js_strs(values), repeat(end))
        else:
            parts = zip(repeat(head), paths, repeat(tail), tags, repeat(" "), js_strs(values), repeat(end))
        chunks.append("".join(chain.from_iterable(parts)))

    def writable_keys(table: Mapping[str, V]) -> tuple[_Keys, list[V]]:
        """The names Carbon can take, and their values."""
        nonlocal num_stats
        num_stats += len(table)
        if all_safe(table):
            return _split_tags(list(table)), list(table.values())
        keys = [key for key in table if safe(key)]
        return _split_tags(keys), [table[key] for key in keys]

    interval = snapshot.interval
    keys, counts = writable_keys(by_graphite_name(snapshot.counters, names_of, operator.add))
    rates = list(map(operator.truediv, counts, repeat(interval)))
    if config.legacy_namespace:
        emit(ns["counter"], keys, "", rates)
        if config.flush_counts:
            emit(["stats_counts"], keys, "", counts)
    else:
        emit(ns["counter"], keys, "rate", rates)
        if config.flush_counts:
            emit(ns["counter"], keys, "count", counts)

    timer_counts = by_graphite_name(snapshot.timer_counts, names_of, operator.add)
    timers = by_graphite_name(snapshot.timers, names_of, _pool)
    num_stats += len(timers)
    groups: dict[tuple[int, tuple[float | str, ...]], list[str]] = {}
    every_timer_safe = all_safe(timers)
    for key, values in timers.items():  # timers alike (as many values, same bins): one table
        if every_timer_safe or safe(key):
            groups.setdefault((len(values), tuple(config.bins_for(key))), []).append(key)
    for (_, bins), members in groups.items():
        table = timer_table([timers[key] for key in members], [timer_counts.get(key, 0) for key in members],
                            interval, config.percent_threshold, bins, config.calculated_timer_metrics)
        split = _split_tags(members)
        for stat, column in table.items():
            emit(ns["timer"], split, stat, column)

    keys, values = writable_keys((gauge_history or GaugeHistory()).merge(snapshot, names_of))
    emit(ns["gauge"], keys, "", values)

    keys, members = writable_keys(by_graphite_name(snapshot.sets, names_of, operator.or_))
    emit(ns["set"], keys, "count", [len(m) for m in members])

    prefix = snapshot.prefix_stats
    calculation_ms = js_round((time.monotonic() - started) * 1000)
    own = (("numStats", num_stats), ("graphiteStats.calculationtime", calculation_ms),
           ("processing_time", js_round(snapshot.processing_ms)))
    for stat, value in own:
        if config.legacy_namespace:  # etsy: "statsd.numStats", but "stats.statsd.processing_time"
            emit([] if stat == "numStats" else ["stats"], ([prefix], None), stat, [value])
        else:
            emit(ns["global"], ([prefix], None), stat, [value])
    return chunks


_Keys = tuple[list[str], "list[str] | None"]  # paths, and each one's ";tags" (None: no tags at all)


def _split_tags(keys: list[str]) -> _Keys:
    """``a.b;env=prod`` -> ``a.b`` and ``;env=prod``: the suffix goes between them."""
    if ";" not in "".join(keys):
        return keys, None
    paths, tags = [], []
    for key in keys:
        path, sep, rest = key.partition(";")
        paths.append(path)
        tags.append(sep + rest)
    return paths, tags
