"""Aggregation between flushes, with etsy statsd 0.9's reset rules.

``add(sample)`` (or ``ingest(datagram)``) updates plain dicts; ``flush(now)`` swaps the
tables and returns an immutable ``Snapshot``. What survives a flush follows etsy:
counters go back to 0 and timers/sets to empty but keep being reported, gauges keep
their value, unless the ``delete_*`` options (``delete_idle_stats`` turns all four on)
drop idle series instead; a deleted gauge lives ``gauges_max_ttl`` flushes after its
last update. The daemon's own counters (``statsd.packets_received`` ...) are counters
like any other, as in etsy. The management interface reads the tables with
``current`` and deletes series with ``delete``, never touching the dicts itself.

With several receivers (``workers``), each worker process ingests into its own
aggregator made with ``recording=True`` and hands its tables over with ``drain()``;
the daemon's main aggregator, which no datagram reaches, takes them with
``merge()`` before each ``swap``. Counters add, timer values concatenate (they are
sorted at the snapshot), sets unite. Gauges cannot be merged as values: a ``+4`` in
one worker applies to whatever another worker set before it. So a recording
aggregator keeps gauge *operations*, each stamped by ``clock_ns`` (a worker sets it
to the kernel's arrival time of the datagram, one clock for every socket on the
host; the time of parsing would let a worker that parses later reorder two clients),
and ``merge`` applies every worker's operations in stamp order to the main table,
where the TTL and series limits live.
A worker keeps, per gauge, only its last absolute set and the deltas after it:
anything before its own last set is overwritten in any interleaving.

Not thread-safe by itself: the daemon serialises ``ingest`` and ``flush`` with a lock.
The clock is whatever ``now`` the caller passes to ``flush``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django_statsd_push.server.js import js_round
from django_statsd_push.server.protocol import GAUGE, SET, TIMER, Sample, parse, parse_line
from django_statsd_push.server.snapshot import SeriesKey, Snapshot

# A series' key in the tables: the bare name when untagged (so the hot path needs no
# tuple), else SeriesKey(name, tags). Snapshots and readers always get SeriesKey.
Key = str | SeriesKey
_NAN = math.nan
_KNOWN_LINES = 100_000  # counter lines remembered by the hot path (a few MB at most)
# One recorded gauge operation: (clock_ns stamp, value, is a delta).
GaugeOp = tuple[int, float, bool]


def _stamp(op: tuple) -> int:
    return op[0]


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


@dataclass
class Drained:
    """What a recording aggregator collected since its last ``drain`` (picklable: it
    crosses from a worker process to the daemon)."""

    counters: dict[Key, float] = field(default_factory=dict)
    timers: dict[Key, list[float]] = field(default_factory=dict)
    timer_counts: dict[Key, float] = field(default_factory=dict)
    sets: dict[Key, set[str]] = field(default_factory=dict)
    gauge_ops: dict[Key, list[GaugeOp]] = field(default_factory=dict)
    packets: int = 0
    lines: int = 0
    bad: int = 0
    internal: dict[str, float] = field(default_factory=dict)
    kernel_drops: int = 0  # new since the last drain, for the daemon's warning
    # Every datagram that arrived up to this time (``clock_ns`` scale) is in here or in
    # an earlier drain: gauge operations stamped later may still have company coming
    # from a worker that lags behind, so ``merge`` holds them back until then.
    through: int = field(default_factory=time.time_ns)


class Aggregator:
    def __init__(self, config: AggregatorConfig | None = None, *, recording: bool = False) -> None:
        """``recording``: a worker's aggregator, drained into the main one (see the
        module docstring); it keeps gauge operations instead of gauge values."""
        self.config = config or AggregatorConfig()
        self.prefix = self.config.prefix_stats
        self.key_lag = f"{self.prefix}.timestamp_lag"
        self.gauge_ops: dict[Key, list[GaugeOp]] | None = {} if recording else None
        # Untagged counter lines the hot path has parsed: line -> (name, value). The
        # mapping never changes, so it survives flushes; bounded by _KNOWN_LINES.
        self.counter_lines: dict[str, tuple[str, float]] = {}
        self.held_ops: list[tuple[int, Key, float, bool]] = []  # merged, not yet final
        self.clock_ns: Callable[[], int] = time.time_ns  # stamps recorded gauge operations
        own = () if recording else (f"{self.prefix}.{s}" for s in _OWN_COUNTERS)
        self.counters: dict[Key, float] = dict.fromkeys(own, 0.0)
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
            ops = self.gauge_ops
            if ops is not None:  # recording: the main aggregator applies it in stamp order
                recorded = ops.get(key)
                if recorded is None:
                    if (key := self._new_series(ops, name, tags)) is None:
                        return
                    recorded = ops[key] = []
                elif not sample.delta:
                    recorded.clear()  # its earlier operations are overwritten in any order
                recorded.append((self.clock_ns(), sample.value, sample.delta))
                return
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

    def ingest(self, datagram: bytes | bytearray | str) -> None:
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
        text = datagram if datagram.__class__ is str else datagram.decode("ascii")
        parts = text.split("\n")
        lines = len(parts)  # less the empty ones, found on the way
        bad = 0
        add = self.add
        samples: list[Sample] = []
        if "|#" in text:  # a tag could hide anywhere in a line: no shortcut then
            for line in parts:
                if not line:
                    lines -= 1
                    continue
                bad += parse_line(line, samples)
                for sample in samples:
                    add(sample)
                samples.clear()
            self.lines += lines
            self.bad += bad
            return
        counters, timers, timer_counts = self.counters, self.timers, self.timer_counts
        gauges, sets = self.gauges, self.sets
        fast_gauges = not self.track_gauge_ttl and self.gauge_ops is None
        known = self.counter_lines
        for line in parts:
            # A counter line seen before (``hits:1|c`` comes again and again): one
            # lookup of the whole line instead of splitting it and parsing its number.
            hit = known.get(line)
            if hit is not None:
                name, v = hit
                old = counters.get(name)
                if old is not None:
                    counters[name] = old + v
                    continue
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
                        if len(known) < _KNOWN_LINES:
                            known[line] = (name, v)
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
            elif not line:
                lines -= 1
                continue
            bad += parse_line(line, samples)
            if samples:
                for sample in samples:
                    add(sample)
                samples.clear()
        self.lines += lines
        self.bad += bad

    # --- several receivers (workers) ---------------------------------------------
    def drain(self) -> Drained:
        """Hand over everything collected since the last drain and start empty.

        For a recording (worker) aggregator: the main one keeps the series and their
        reset rules, so a worker reports only what it saw (an idle series it kept
        would come back after a ``deleteIdleStats`` or a management delete).
        """
        with self._internal_lock:
            internal, self.internal = self.internal, {}
        drained = Drained(self.counters, self.timers, self.timer_counts, self.sets, self.gauge_ops or {},
                          self.packets, self.lines, self.bad, internal)
        self.counters, self.timers, self.timer_counts, self.sets = {}, {}, {}, {}
        if self.gauge_ops is not None:
            self.gauge_ops = {}
        self.packets = self.lines = self.bad = 0
        return drained

    def merge(self, drained: Iterable[Drained], final: bool = False) -> None:
        """Fold workers' tables into this (main) aggregator, gauges in stamp order.

        Gauge operations stamped after the earliest ``through`` of the parts wait in
        ``held_ops`` for the next merge (a worker that lags behind may still send older
        ones); ``final`` (the daemon stops, nothing more will come) applies them all.
        A new series counts against ``max_series`` here too (each worker checked its
        own share); names were checked by the worker.
        """
        counters, timers, timer_counts, sets = self.counters, self.timers, self.timer_counts, self.sets
        limit = self.config.max_series
        dropped = 0
        ops, self.held_ops = self.held_ops, []
        through = math.inf if final else None
        for part in drained:
            if through is None or part.through < through:
                through = part.through
            self.packets += part.packets
            self.lines += part.lines
            self.bad += part.bad
            for stat, amount in part.internal.items():
                self.count(stat, amount)
            for key, value in part.counters.items():
                old = counters.get(key)
                if old is None:
                    if len(counters) >= limit:
                        dropped += 1
                        continue
                    old = 0.0
                counters[key] = old + value
            for key, values in part.timers.items():
                mine = timers.get(key)
                if mine is None:
                    if len(timers) >= limit:
                        dropped += 1
                        continue
                    mine = timers[key] = []
                    timer_counts[key] = 0.0
                mine += values
                timer_counts[key] += part.timer_counts[key]
            for key, members in part.sets.items():
                mine_set = sets.get(key)
                if mine_set is None:
                    if len(sets) >= limit:
                        dropped += 1
                        continue
                    sets[key] = members
                else:
                    mine_set |= members
            ops += [(stamp, key, value, delta) for key, recorded in part.gauge_ops.items()
                    for stamp, value, delta in recorded]
        ops.sort(key=_stamp)  # stable: one worker's operations with equal stamps keep their order
        add = self.add
        for i, (stamp, key, value, delta) in enumerate(ops):
            if through is None or stamp > through:
                self.held_ops = ops[i:]
                break
            name, tags = (key, ()) if key.__class__ is str else key
            add(Sample(name, tags, value, GAUGE, 1.0, delta))
        if dropped:
            self.count("series_dropped", dropped)

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
        sk = series_key
        return Snapshot(
            timestamp=self.now,
            interval=self.interval,
            counters={sk(k): v for k, v in self.counters.items()},
            timers={sk(k): tuple(sorted(v)) for k, v in self.timers.items()},
            timer_counts={sk(k): v for k, v in self.timer_counts.items()},
            gauges={sk(k): v for k, v in self.gauges.items()},
            sets={sk(k): frozenset(v) for k, v in self.sets.items()},
            prefix_stats=self.prefix,
            processing_ms=(time.perf_counter() - self.started) * 1000,
        )
