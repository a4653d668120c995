"""Aggregation between flushes, with etsy statsd 0.9's reset rules.

``add(sample)`` (or ``ingest(datagram)``) updates plain dicts; ``flush(now)`` swaps the
tables and returns an immutable ``Snapshot``. What survives a flush follows etsy:
counters go back to 0 and timers/sets to empty but keep being reported, gauges keep
their value, unless the ``delete_*`` options (``delete_idle_stats`` turns all four on)
drop idle series instead; a deleted gauge lives ``gauges_max_ttl`` flushes after its
last update. The daemon's own counters (``statsd.packets_received`` ...) are counters
like any other, as in etsy. The management interface reads the tables with
``current`` and deletes series with ``delete``, never touching the dicts itself.

Not thread-safe by itself: the daemon serialises ``ingest`` and ``flush`` with a lock.
The clock is whatever ``now`` the caller passes to ``flush``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import repeat
from types import MappingProxyType
from typing import TypeVar

from django_statsd_push.server.gc_pause import paused_gc
from django_statsd_push.server.js import js_round
from django_statsd_push.server.protocol import GAUGE, SET, TIMER, Sample, parse, parse_line
from django_statsd_push.server.snapshot import SeriesKey, Snapshot

# A series' key in the tables: the bare name when untagged (so the hot path needs no
# tuple), else SeriesKey(name, tags). Snapshots and readers always get SeriesKey.
Key = str | SeriesKey
V = TypeVar("V")
_NAN = math.nan


def series_key(key: Key) -> SeriesKey:
    return SeriesKey(key) if key.__class__ is str else key  # type: ignore[return-value]


# etsy's own counters (``<prefix_stats>.<stat>``). etsy keeps them (at 0) even when
# deleteCounters drops idle ones: it matches by substring, so a user counter containing
# one of these is kept too.
_OWN_COUNTERS = ("bad_lines_seen", "packets_received", "metrics_received")


@dataclass
class AggregatorConfig:
    flush_interval: float = 10.0  # seconds
    prefix_stats: str = "statsd"
    delete_idle_stats: bool = False
    delete_counters: bool | None = None  # None: follow delete_idle_stats
    delete_timers: bool | None = None
    delete_sets: bool | None = None
    delete_gauges: bool | None = None
    gauges_max_ttl: int = 1
    max_series: int = 1_000_000  # per table; new series beyond it are dropped and counted
    max_name_length: int = 1024  # characters, name plus tags

    def resolved(self, option: str) -> bool:
        value = getattr(self, option)
        return self.delete_idle_stats if value is None else bool(value)


class Aggregator:
    def __init__(self, config: AggregatorConfig | None = None) -> None:
        self.config = config or AggregatorConfig()
        self.prefix = self.config.prefix_stats
        self.key_lag = f"{self.prefix}.timestamp_lag"
        self.counters: dict[Key, float] = dict.fromkeys((f"{self.prefix}.{s}" for s in _OWN_COUNTERS), 0.0)
        self.timers: dict[Key, list[float]] = {}
        self.timer_counts: dict[Key, float] = {}
        self.gauges: dict[Key, float] = {}
        self.gauge_ttl: dict[Key, int] = {}
        self.sets: dict[Key, set[str]] = {}
        # Kept as ints on the hot path, folded into the counters at flush.
        self.packets = self.lines = self.bad = 0
        # Our own counters beyond etsy's (kernel drops, rejected names ...): reported
        # from the first time they are non-zero, so an etsy-identical flush stays so.
        self.internal: dict[str, float] = {}
        self._internal_lock = threading.Lock()  # count() is called from other threads
        self.totals: dict[str, float] = {}  # since start, for the management interface
        self.last_timestamp = 0

    @property
    def config(self) -> AggregatorConfig:
        return self._config

    @config.setter
    def config(self, config: AggregatorConfig) -> None:
        """Settable (SIGHUP reload); prefix_stats keeps its first value."""
        self._config = config
        self.track_gauge_ttl = config.resolved("delete_gauges")

    # --- input -------------------------------------------------------------------
    def count(self, stat: str, amount: float = 1) -> None:
        """Add to one of the daemon's own counters, ``<prefix_stats>.<stat>`` (any thread)."""
        with self._internal_lock:
            self.internal[stat] = self.internal.get(stat, 0) + amount

    def _new_series(self, table: dict, name: str, tags: tuple[str, ...]) -> Key | None:
        """The key for a series not seen yet, or None (counted) when limits refuse it."""
        if len(table) >= self.config.max_series:
            self.count("series_dropped")
            return None
        if len(name) + sum(len(t) + 1 for t in tags) > self.config.max_name_length or "\0" in name:
            self.count("names_rejected")
            return None
        return SeriesKey(name, tags) if tags else name

    def add(self, sample: Sample) -> None:
        """Add one sample (already counted as a metric received by ``ingest``)."""
        name, tags = sample.name, sample.tags
        key: Key | None = (name, tags) if tags else name
        type_ = sample.type
        if type_ == TIMER:
            values = self.timers.get(key)
            if values is None:
                if (key := self._new_series(self.timers, name, tags)) is None:
                    return
                values = self.timers[key] = []
                self.timer_counts[key] = 0.0
            values.append(sample.value)
            self.timer_counts[key] += 1 / sample.rate
        elif type_ == GAUGE:
            if key not in self.gauges and (key := self._new_series(self.gauges, name, tags)) is None:
                return
            if self.track_gauge_ttl:
                self.gauge_ttl[key] = self.config.gauges_max_ttl
            if sample.delta and key in self.gauges:
                self.gauges[key] += sample.value
            else:
                self.gauges[key] = sample.value
        elif type_ == SET:
            members = self.sets.get(key)
            if members is None:
                if (key := self._new_series(self.sets, name, tags)) is None:
                    return
                members = self.sets[key] = set()
            members.add(sample.value)
        else:
            old = self.counters.get(key)
            if old is None:
                if (key := self._new_series(self.counters, name, tags)) is None:
                    return
                old = 0.0
            self.counters[key] = old + sample.value * (1 / sample.rate)

    def ingest(self, datagram: bytes | str) -> None:
        """One UDP datagram (or newline-framed TCP chunk): counted, parsed, added.

        The same rules as ``protocol.parse`` then ``add``, specialised for the hot path:
        a line of the common shape ``name:value|c`` (``|ms``, ``|g``, ``|s``) for an
        untagged series already in the tables is added to the plain dicts directly, with
        no ``Sample`` made. Any other line (tags, a rate, several values, a new series, a
        number ``float()`` and JavaScript might disagree on) goes through
        ``protocol.parse_line`` and ``add``, in order. ``tests/server/test_protocol.py``
        holds the two paths together.
        """
        self.packets += 1
        if not datagram.isascii():  # non-ASCII digits and spaces: float() != Number()
            parsed = parse(datagram)
            for sample in parsed.samples:
                self.add(sample)
            self.lines += parsed.lines
            self.bad += parsed.bad_lines
            return
        text = datagram.decode("ascii") if isinstance(datagram, bytes) else datagram
        tagged = "|#" in text  # a tag could hide anywhere in a line: no shortcut then
        counters, timers, timer_counts = self.counters, self.timers, self.timer_counts
        gauges, sets = self.gauges, self.sets
        fast_gauges = not self.track_gauge_ttl
        add = self.add
        samples: list[Sample] = []
        lines = bad = 0
        for line in text.split("\n"):
            if not line:
                continue
            lines += 1
            if not tagged:
                name, _, rest = line.partition(":")
                value, _, type_ = rest.partition("|")
                # Counters first (most lines are), and the dict lookup before float():
                # a line for a new series goes the slow way whatever its value. Each
                # branch parses its own value: one shared parse after the lookups measured
                # about 2% slower on counters (it has to branch on the type twice).
                if type_ == "c":
                    old = counters.get(name)
                    if old is not None and "_" not in value:
                        try:
                            v = float(value)
                        except ValueError:
                            v = _NAN
                        if v - v == 0:  # finite, and a number for JavaScript too
                            counters[name] = old + v
                            continue
                elif type_ == "ms":
                    values = timers.get(name)
                    if values is not None and "_" not in value:
                        try:
                            v = float(value)
                        except ValueError:
                            v = _NAN
                        if v - v == 0 and v >= 0:
                            values.append(v)
                            timer_counts[name] += 1.0
                            continue
                elif type_ == "g":
                    if fast_gauges and "_" not in value:
                        old = gauges.get(name)
                        if old is not None:
                            try:
                                v = float(value)
                            except ValueError:
                                v = _NAN
                            if v - v == 0:
                                gauges[name] = old + v if value[0] in "+-" else v
                                continue
                elif type_ == "s":
                    members = sets.get(name)
                    if members is not None and ":" not in value:
                        members.add(value or "0")
                        continue
            bad += parse_line(line, samples)
            if samples:
                for sample in samples:
                    add(sample)
                samples.clear()
        self.lines += lines
        self.bad += bad

    def _own_counts(self) -> dict[str, int]:
        """This interval's hot-path counts by etsy's stat name (``_OWN_COUNTERS``)."""
        return dict(zip(_OWN_COUNTERS, (self.bad, self.packets, self.lines)))

    def _add_own(self, counters: dict[Key, float], counts: Iterable[tuple[str, float]]) -> None:
        """Add the daemon's own counts to ``counters`` as ``<prefix_stats>.<stat>``.

        A missing key starts at 0: ``delcounters statsd.*`` on the management port may
        have removed one of etsy's three, and the flush must go on.
        """
        for stat, amount in counts:
            key = f"{self.prefix}.{stat}"
            counters[key] = counters.get(key, 0.0) + amount

    # --- reading and editing between flushes (management interface) ----------------
    def current(self, table: str) -> dict[SeriesKey, float | list[float]]:
        """``counters``, ``timers`` or ``gauges`` as etsy would show them now.

        The counters include the daemon's own, with this interval's counts so far.
        """
        if table == "counters":
            current: dict = dict(self.counters)
            self._add_own(current, self._own_counts().items())
        elif table in ("timers", "gauges"):
            current = getattr(self, table)
        else:
            raise ValueError(f"no table {table!r}")
        return {series_key(k): v for k, v in current.items()}

    def delete(self, table: str, pattern: str, name_of: Callable[[SeriesKey], str]) -> list[str]:
        """Drop the series of ``table`` named ``pattern``, or under ``folder.*``; etsy's
        ``delcounters``/``deltimers``/``delgauges``. Names are what ``name_of`` makes of a
        series (the Graphite name); returns the names deleted.
        """
        if table not in ("counters", "timers", "gauges"):
            raise ValueError(f"no table {table!r}")
        rows: dict[Key, object] = getattr(self, table)
        folder = pattern[:-1] if pattern.endswith(".*") else None
        deleted = []
        for key in list(rows):
            name = name_of(series_key(key))
            if name == pattern or (folder is not None and name.startswith(folder)):
                del rows[key]
                if table == "timers":
                    self.timer_counts.pop(key, None)
                deleted.append(name)
        return deleted

    def total(self, stat: str) -> float:
        """One of the daemon's own counters summed since start, this interval included."""
        current = self._own_counts().get(stat)
        if current is None:
            with self._internal_lock:
                current = self.internal.get(stat, 0)
        return self.totals.get(stat, 0) + current

    # --- output ------------------------------------------------------------------
    def flush(self, now: float) -> Snapshot:
        """Swap the tables and return this interval's snapshot."""
        return self.swap(now).snapshot()

    def swap(self, now: float) -> Swapped:
        """The part of ``flush`` that needs the lock: detach this interval's tables.

        The daemon calls this under its lock and ``Swapped.snapshot()`` (sorting timers,
        building the immutable mappings) after releasing it, so receiving waits only
        for the swap.
        """
        started = time.perf_counter()
        config = self.config
        timestamp = js_round(now)
        if self.last_timestamp > 0:
            self.gauges[self.key_lag] = timestamp - self.last_timestamp - config.flush_interval
        self.last_timestamp = timestamp

        with self._internal_lock:
            internal, self.internal = self.internal, {}
        counters = self.counters
        counts = (*self._own_counts().items(), *internal.items())
        self._add_own(counters, counts)
        for stat, amount in counts:
            self.totals[stat] = self.totals.get(stat, 0) + amount
        self.packets = self.lines = self.bad = 0

        timers, timer_counts, sets = self.timers, self.timer_counts, self.sets
        if config.resolved("delete_counters"):
            self.counters = {k: 0.0 for k in counters if any(s in series_key(k).name for s in _OWN_COUNTERS)}
        else:
            self.counters = dict.fromkeys(counters, 0.0)
        if config.resolved("delete_timers"):
            self.timers, self.timer_counts = {}, {}
        else:
            self.timers = {k: [] for k in timers}
            self.timer_counts = dict.fromkeys(timers, 0.0)
        self.sets = {} if config.resolved("delete_sets") else {k: set() for k in sets}

        gauges = dict(self.gauges)
        if self.track_gauge_ttl:
            for key in list(self.gauge_ttl):
                self.gauge_ttl[key] -= 1
                if self.gauge_ttl[key] < 1:
                    del self.gauge_ttl[key]
                    self.gauges.pop(key, None)

        return Swapped(now, config.flush_interval, counters, timers, timer_counts, gauges, sets,
                       self.prefix, started)


@dataclass
class Swapped:
    """One interval's tables, detached from the aggregator (nothing else touches them)."""

    now: float
    interval: float
    counters: dict[Key, float]
    timers: dict[Key, list[float]]
    timer_counts: dict[Key, float]
    gauges: dict[Key, float]
    sets: dict[Key, set[str]]
    prefix: str
    started: float

    def snapshot(self) -> Snapshot:
        """The immutable ``Snapshot`` of these tables (run without the aggregator's lock).

        Built a table at a time with C-level loops (``map``/``zip``), and handed to
        ``Snapshot`` as read-only views of new dicts, so nothing is copied twice: at
        half a million series the per-key Python work was a good part of a flush.
        """
        with paused_gc():
            return self._snapshot()

    def _snapshot(self) -> Snapshot:
        timer_keys = _series_keys(self.timers)
        timer_counts = self.timer_counts
        return Snapshot(
            timestamp=self.now,
            interval=self.interval,
            counters=_frozen(_series_keys(self.counters), self.counters.values()),
            timers=_frozen(timer_keys, map(tuple, map(sorted, self.timers.values()))),
            timer_counts=_frozen(timer_keys, map(timer_counts.get, self.timers, repeat(0.0))),
            gauges=_frozen(_series_keys(self.gauges), self.gauges.values()),
            sets=_frozen(_series_keys(self.sets), map(frozenset, self.sets.values())),
            prefix_stats=self.prefix,
            processing_ms=(time.perf_counter() - self.started) * 1000,
        )


_EMPTY_TAGS: tuple[str, ...] = ()


def _series_keys(table: dict[Key, object]) -> list[SeriesKey]:
    """``series_key`` of every key, in order; untagged keys (nearly all) made in one C loop."""
    keys = list(table)
    if not any(key.__class__ is not str for key in keys):
        return list(map(tuple.__new__, repeat(SeriesKey), zip(keys, repeat(_EMPTY_TAGS))))
    return list(map(series_key, keys))


def _frozen(keys: list[SeriesKey], values: Iterable[V]) -> Mapping[SeriesKey, V]:
    return MappingProxyType(dict(zip(keys, values)))
