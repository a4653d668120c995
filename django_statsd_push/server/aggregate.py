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
A worker keeps, per gauge, its first operation (it created the series), its last
absolute set and the deltas after that set: anything between is overwritten in any
interleaving. The series a worker creates are stamped the same way, and ``merge``
creates them in the main tables in one stamp-ordered walk with the gauge operations,
so ``Snapshot.first_seen`` keeps the arrival order; events, rejections, service checks
(gauges) and the unbased-gauge bookkeeping (``gauge_changes``, applied by ``add`` in
the main aggregator) come out as one receiver would make them.

The ordering rule: operations apply in stamp order, ties in the order of the parts.
A recording aggregator's stamps strictly increase (``_next_stamp``), so one source
never has its own operations reordered, whatever the clock does. Between sources the
stamp is the time the daemon's host received the data: the kernel's arrival time for
a worker's UDP datagrams, the time of parsing for what the daemon process reads itself
(TCP, Unix sockets: the ``local`` recording aggregator), which comes after arrival, so
against UDP such a line can only be placed later than it arrived, never earlier
than something parsed before it. One client uses one transport (and one worker), so
its own order is always kept; only clients racing each other are ordered by arrival.

Not thread-safe by itself: the daemon serialises ``ingest`` and ``flush`` with a lock.
The clock is whatever ``now`` the caller passes to ``flush``.
"""

from __future__ import annotations

import math
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from types import MappingProxyType
from typing import TypeVar

from django_statsd_push.server.gc_pause import paused_gc
from django_statsd_push.server.js import js_round
from django_statsd_push.server.protocol import (
    COUNTER, ETSY, GAUGE, SET, TIMER, Event, Record, Rejected, Rules, Sample, ServiceCheck, parse, parse_line,
)
from django_statsd_push.server.snapshot import SeriesKey, Snapshot

#: the kind of an observation (``h``/``d`` under statsd_exporter's rules) in ``first_seen``
OBSERVATION = "h"
_OBSERVED = ("h", "d")

# A series' key in the tables: the bare name when untagged (so the hot path needs no
# tuple), else SeriesKey(name, tags). Snapshots and readers always get SeriesKey.
Key = str | SeriesKey
V = TypeVar("V")
_NAN = math.nan
_KNOWN_LINES = 100_000  # counter lines remembered by the hot path (a few MB at most)
# One recorded gauge operation: (clock_ns stamp, value, is a delta).
GaugeOp = tuple[int, float, bool]
# A timer's (or observation's) values this interval, in arrival order: unboxed doubles,
# 8 bytes each instead of a float object and a list slot (32), and ready for NumPy
# without a per-value conversion (see Swapped.snapshot).
Values = array  # array('d')


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
    rules: Rules = ETSY  # how the parser reads lines the peers disagree on
    max_events: int = 1_000  # DogStatsD events kept per interval (<= 64 KiB each); more: counted, dropped

    def resolved(self, option: str) -> bool:
        value = getattr(self, option)
        return self.delete_idle_stats if value is None else bool(value)


@dataclass
class Drained:
    """What a recording aggregator collected since its last ``drain`` (picklable: it
    crosses from a worker process to the daemon)."""

    counters: dict[Key, float] = field(default_factory=dict)
    timers: dict[Key, Values] = field(default_factory=dict)
    timer_counts: dict[Key, float] = field(default_factory=dict)
    sets: dict[Key, set[str]] = field(default_factory=dict)
    gauge_ops: dict[Key, list[GaugeOp]] = field(default_factory=dict)
    packets: int = 0
    lines: int = 0
    bad: int = 0
    internal: dict[str, float] = field(default_factory=dict)
    # Series the recording aggregator created, other than gauges (a gauge's first
    # operation says when it came): (stamp, kind, key), in arrival order.
    created: list[tuple[int, str, Key]] = field(default_factory=list)
    events: list[tuple[int, Event]] = field(default_factory=list)  # (stamp, event)
    rejections: dict[str, int] = field(default_factory=dict)
    observations: dict[Key, Values] = field(default_factory=dict)
    observation_counts: dict[Key, float] = field(default_factory=dict)
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
        self.recording = recording
        self.gauge_ops: dict[Key, list[GaugeOp]] | None = {} if recording else None
        # Untagged counter lines the hot path has parsed: line -> (name, value). The
        # mapping never changes, so it survives flushes; bounded by _KNOWN_LINES.
        self.counter_lines: dict[str, tuple[str, float]] = {}
        # merged gauge operations not yet final: (stamp, GAUGE, key, value, is a delta)
        self.held_ops: list[tuple[int, str, Key, float, bool]] = []
        self.clock_ns: Callable[[], int] = time.time_ns  # stamps recorded gauge operations
        self._last_stamp = -1  # recording: stamps strictly increase (see _next_stamp)
        # recording: what ``created``/``events`` hold in the main aggregator, stamped
        self.created_at: list[tuple[int, str, Key]] = []
        self.events_at: list[tuple[int, Event]] = []
        own = () if recording else (f"{self.prefix}.{s}" for s in _OWN_COUNTERS)
        self.counters: dict[Key, float] = dict.fromkeys(own, 0.0)
        self.timers: dict[Key, Values] = {}
        self.timer_counts: dict[Key, float] = {}
        # statsd_exporter's reading only (rules.exporter): DogStatsD h/d values are
        # observations in their own unit, not counters; kept for one interval.
        self.observations: dict[Key, Values] = {}
        self.observation_counts: dict[Key, float] = {}
        self.gauges: dict[Key, float] = {}
        self.gauge_ttl: dict[Key, int] = {}
        self.sets: dict[Key, set[str]] = {}
        # Gauges whose value here is relative to a base only the sinks know (a delta
        # arrived after the gauge was deleted as idle), and their change this interval.
        self.gauge_unbased: set[Key] = set()
        self.gauge_changes: dict[Key, float] = {}
        # Series created this interval, in arrival order (etsy kind, key): a sink that
        # gives a name one type can give it to the type that came first.
        self.created: list[tuple[str, Key]] = []
        self.events: list[Event] = []
        self.rejections: dict[str, int] = {}  # parse problems by reason, this interval
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
        if getattr(self, "rules", config.rules) != config.rules:
            self.counter_lines = {}  # another reading of the same lines
        self.rules = config.rules

    # --- input -------------------------------------------------------------------
    def count(self, stat: str, amount: float = 1) -> None:
        """Add to one of the daemon's own counters, ``<prefix_stats>.<stat>`` (any thread)."""
        with self._internal_lock:
            self.internal[stat] = self.internal.get(stat, 0) + amount

    def _new_series(self, table: dict, name: str, tags: tuple[str, ...], kind: str) -> Key | None:
        """The key for a series not seen yet, or None (counted) when limits refuse it."""
        if len(table) >= self.config.max_series:
            self.count("series_dropped")
            return None
        if len(name) + sum(len(t) + 1 for t in tags) > self.config.max_name_length or "\0" in name:
            self.count("names_rejected")
            return None
        key = SeriesKey(name, tags) if tags else name
        if not self.recording:
            self.created.append((kind, key))
        elif kind != GAUGE:  # a gauge's first recorded operation carries its stamp
            self.created_at.append((self._next_stamp(), kind, key))
        return key

    def _next_stamp(self) -> int:
        """``clock_ns`` for a recorded operation or series, made to increase strictly:
        whatever the clock does (a step back, equal stamps within one datagram), the
        merge keeps this aggregator's own order."""
        stamp = self.clock_ns()
        if stamp <= self._last_stamp:
            stamp = self._last_stamp + 1
        self._last_stamp = stamp
        return stamp

    def add(self, sample: Record) -> None:
        """Add one parser record (its line already counted as a metric received by ``ingest``)."""
        if sample.__class__ is not Sample:
            self._add_other(sample)  # type: ignore[arg-type]
            return
        name, tags = sample.name, sample.tags  # type: ignore[union-attr]
        key: Key | None = (name, tags) if tags else name
        type_ = sample.type
        if type_ == TIMER:
            self._append(self.timers, self.timer_counts, key, sample, TIMER)
        elif type_ == GAUGE:
            ops = self.gauge_ops
            if ops is not None:  # recording: the main aggregator applies it in stamp order
                recorded = ops.get(key)
                if recorded is None:
                    if (key := self._new_series(ops, name, tags, GAUGE)) is None:
                        return
                    recorded = ops[key] = []
                elif not sample.delta:
                    # Between its first operation (which created the series, and must
                    # create it in the main table at its place in the arrival order) and
                    # this set, everything is overwritten in any interleaving.
                    del recorded[1:]
                recorded.append((self._next_stamp(), sample.value, sample.delta))
                return
            known = key in self.gauges
            if not known and (key := self._new_series(self.gauges, name, tags, GAUGE)) is None:
                return
            if self.track_gauge_ttl:
                self.gauge_ttl[key] = self.config.gauges_max_ttl
                self._track_base(key, sample, known)
            if sample.delta and known:
                self.gauges[key] += sample.value
            else:
                self.gauges[key] = sample.value
        elif type_ == SET:
            members = self.sets.get(key)
            if members is None:
                if (key := self._new_series(self.sets, name, tags, SET)) is None:
                    return
                members = self.sets[key] = set()
            members.add(sample.value)
        elif type_ in _OBSERVED and self.rules.exporter:
            self._append(self.observations, self.observation_counts, key, sample, OBSERVATION)
        else:
            old = self.counters.get(key)
            if old is None:
                if (key := self._new_series(self.counters, name, tags, COUNTER)) is None:
                    return
                old = 0.0
            self.counters[key] = old + sample.value * (1 / sample.rate)

    def _append(self, table: dict[Key, Values], counts: dict[Key, float], key: Key | None, sample: Sample,
                kind: str) -> None:
        """A timer (or observation) value, counted ``1/rate`` times as etsy counts them."""
        values = table.get(key)  # type: ignore[arg-type]
        if values is None:
            if (key := self._new_series(table, sample.name, sample.tags, kind)) is None:
                return
            values = table[key] = array("d")
            counts[key] = 0.0
        values.append(sample.value)  # type: ignore[arg-type]
        counts[key] += 1 / sample.rate  # type: ignore[index]

    def _track_base(self, key: Key, sample: Sample, known: bool) -> None:
        """Gauges deleted as idle lose their value here, not in the sinks (the bridge
        keeps its series): a delta arriving then is a change to the sinks' value, which
        ``Snapshot.gauge_changes`` hands them, not a value (statsd_exporter adds it)."""
        unbased = self.gauge_unbased
        if sample.delta:
            if not known:
                unbased.add(key)
            if key in unbased:
                self.gauge_changes[key] = self.gauge_changes.get(key, 0.0) + sample.value  # type: ignore[operator]
        elif unbased:
            unbased.discard(key)
            self.gauge_changes.pop(key, None)

    def _add_other(self, record: Event | ServiceCheck | Rejected) -> None:
        if record.__class__ is Rejected:
            reason, count = record  # type: ignore[misc]
            self.rejections[reason] = self.rejections.get(reason, 0) + count
        elif record.__class__ is ServiceCheck:
            self.count("service_checks_received")
            self.add(record.gauge())  # type: ignore[union-attr]
        else:
            self.count("events_received")
            if self.recording:  # the merge keeps max_events, in arrival order
                if len(self.events_at) < self.config.max_events:
                    self.events_at.append((self._next_stamp(), record))  # type: ignore[arg-type]
                else:
                    self.count("events_dropped")
            elif len(self.events) < self.config.max_events:
                self.events.append(record)  # type: ignore[arg-type]
            else:
                self.count("events_dropped")

    def ingest(self, datagram: bytes | bytearray | str) -> None:
        """One UDP datagram (or newline-framed TCP chunk): counted, parsed, added.

        The same rules as ``protocol.parse`` then ``add``, specialised for the hot path:
        a line of the common shape ``name:value|c`` (``|ms``, ``|g``, ``|s``) for an
        untagged series already in the tables is added to the plain dicts directly, with
        no ``Sample`` made. Any other line (tags, a rate, several values, a new series, a
        number ``float()`` and JavaScript might disagree on, a DogStatsD field, an event
        or a service check) goes through ``protocol.parse_line`` with the aggregator's
        ``rules``, and each record it makes (``Sample``, ``Event``, ``ServiceCheck``,
        ``Rejected``) through ``add``, in order. ``tests/server/test_protocol.py`` holds
        the two paths together.
        """
        self.packets += 1
        if not datagram.isascii():  # non-ASCII digits and spaces: float() != Number()
            parsed = parse(datagram, self.rules)
            for record in parsed.records:
                self.add(record)
            self.lines += parsed.lines
            self.bad += parsed.bad_lines
            return
        text = datagram if datagram.__class__ is str else datagram.decode("ascii")
        parts = text.split("\n")
        lines = len(parts)  # less the empty ones, found on the way
        bad = 0
        add, rules = self.add, self.rules
        records: list[Record] = []
        if "|#" in text:  # a tag could hide anywhere in a line: no shortcut then
            for line in parts:
                if not line:
                    lines -= 1
                    continue
                bad += parse_line(line, records, rules)
                for record in records:
                    add(record)
                records.clear()
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
            bad += parse_line(line, records, rules)
            if records:
                for record in records:
                    add(record)
                records.clear()
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
                          self.packets, self.lines, self.bad, internal, self.created_at, self.events_at,
                          self.rejections, self.observations, self.observation_counts)
        self.counters, self.timers, self.timer_counts, self.sets = {}, {}, {}, {}
        self.observations, self.observation_counts = {}, {}
        self.created_at, self.events_at, self.rejections = [], [], {}
        self.created, self.events = [], []  # (a recording aggregator fills neither)
        if self.gauge_ops is not None:
            self.gauge_ops = {}
        self.packets = self.lines = self.bad = 0
        return drained

    def merge(self, drained: Iterable[Drained], final: bool = False) -> None:
        """Fold workers' tables into this (main) aggregator as if it had received their
        datagrams itself, in arrival order.

        Series are created here (``_new_series``: limits, ``first_seen``) and gauge
        operations applied (``add``: TTL, the unbased-gauge bookkeeping) in stamp order
        across the parts, one walk for both, so the order of ``first_seen`` is the order
        of arrival; then counters add, timer and observation values concatenate, sets
        unite. Events join in stamp order (``max_events`` applies to the sum), rejections
        add up by reason.

        Gauge operations stamped after the earliest ``through`` of the parts wait in
        ``held_ops`` for the next merge (a worker that lags behind may still send older
        ones); ``final`` (the daemon stops, nothing more will come) applies them all.
        Series of other kinds are never held (their values belong to this interval).
        """
        ops: list[tuple[int, str, Key, float, bool]] = self.held_ops  # type: ignore[assignment]
        self.held_ops = []
        through = math.inf if final else None
        parts = list(drained)
        events: list[tuple[int, Event]] = []
        rejections = self.rejections
        for part in parts:
            if through is None or part.through < through:
                through = part.through
            self.packets += part.packets
            self.lines += part.lines
            self.bad += part.bad
            for stat, amount in part.internal.items():
                self.count(stat, amount)
            for reason, amount in part.rejections.items():
                rejections[reason] = rejections.get(reason, 0) + amount
            events += part.events
            ops += [(stamp, kind, key, _NAN, False) for stamp, kind, key in part.created]
            ops += [(stamp, GAUGE, key, value, delta) for key, recorded in part.gauge_ops.items()
                    for stamp, value, delta in recorded]
        # stable: equal stamps (from different parts) keep the order of the parts
        ops.sort(key=_stamp)
        tables = {COUNTER: self.counters, TIMER: self.timers, SET: self.sets, OBSERVATION: self.observations}
        refused: set[tuple[str, Key]] = set()
        add = self.add
        for i, (stamp, kind, key, value, delta) in enumerate(ops):
            name, tags = (key, ()) if key.__class__ is str else key
            if kind == GAUGE:
                if through is None or stamp > through:
                    self.held_ops.extend(op for op in ops[i:] if op[1] == GAUGE)  # type: ignore[misc]
                    ops = ops[i:]
                    break
                add(Sample(name, tags, value, GAUGE, 1.0, delta))
            else:
                self._ensure(tables[kind], key, name, tags, kind, refused)
        else:
            ops = []
        for stamp, kind, key, _, _ in ops:  # held back with the gauges: created now all the same
            if kind != GAUGE:
                name, tags = (key, ()) if key.__class__ is str else key
                self._ensure(tables[kind], key, name, tags, kind, refused)

        counters, timers, timer_counts, sets = self.counters, self.timers, self.timer_counts, self.sets
        for part in parts:
            for key, amount in part.counters.items():
                old = counters.get(key)
                if old is not None:  # else refused by the limits (counted)
                    counters[key] = old + amount
            for table, counts, values_of, counts_of in (
                (timers, timer_counts, part.timers, part.timer_counts),
                (self.observations, self.observation_counts, part.observations, part.observation_counts),
            ):
                for key, values in values_of.items():
                    mine = table.get(key)
                    if mine is not None:
                        mine += values
                        counts[key] += counts_of[key]
            for key, members in part.sets.items():
                mine_set = sets.get(key)
                if mine_set is not None:
                    mine_set |= members

        if events:
            events.sort(key=_stamp)
            room = max(0, self.config.max_events - len(self.events))
            self.events += [event for _, event in events[:room]]
            if len(events) > room:
                self.count("events_dropped", len(events) - room)

    def _ensure(self, table: dict, key: Key, name: str, tags: tuple[str, ...], kind: str,
                refused: set[tuple[str, Key]]) -> None:
        """A series a part created: created here too (in arrival order) unless known."""
        if key in table or (kind, key) in refused:
            return
        if self._new_series(table, name, tags, kind) is None:
            refused.add((kind, key))
        elif kind in (TIMER, OBSERVATION):
            table[key] = array("d")
            (self.timer_counts if kind == TIMER else self.observation_counts)[key] = 0.0
        else:
            table[key] = 0.0 if kind == COUNTER else set()

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
    def current(self, table: str) -> dict[SeriesKey, float | Values]:
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

    def swap(self, now: float, last: bool = False) -> Swapped:
        """The part of ``flush`` that needs the lock: detach this interval's tables.

        ``last``: the daemon is stopping and no interval follows. Series idle since the
        previous flush are then left out (counters at 0, timers and sets without values;
        the daemon's own counters and every gauge stay), where a regular flush repeats
        them: the last flush costs what arrived since the previous one, not a whole
        flush again, which at half a million names is seconds of a stop's 5.

        The daemon calls this under its lock and ``Swapped.snapshot()`` (building the
        immutable mappings) after releasing it, so receiving waits only for the swap.
        The tables for the next interval are a few hundred thousand new containers at
        half a million names: made with the collector held off (``gc_pause``), as the
        snapshot is, or its passes over every live object made the swap 5x longer.
        """
        with paused_gc():
            return self._swap(now, last)

    def _swap(self, now: float, last: bool) -> Swapped:
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
        observations, observation_counts = self.observations, self.observation_counts
        self.observations, self.observation_counts = {}, {}
        if last:
            own = {f"{self.prefix}.{stat}" for stat, _ in counts}
            counters = {k: v for k, v in counters.items() if v or k in own}
            timers = {k: v for k, v in timers.items() if v}
            timer_counts = {k: timer_counts[k] for k in timers}
            sets = {k: v for k, v in sets.items() if v}
            self.counters, self.timers, self.timer_counts, self.sets = {}, {}, {}, {}
        else:
            if config.resolved("delete_counters"):
                self.counters = {k: 0.0 for k in counters if any(s in series_key(k).name for s in _OWN_COUNTERS)}
            else:
                self.counters = dict.fromkeys(counters, 0.0)
            if config.resolved("delete_timers"):
                self.timers, self.timer_counts = {}, {}
            else:
                self.timers = {k: array("d") for k in timers}
                self.timer_counts = dict.fromkeys(timers, 0.0)
            self.sets = {} if config.resolved("delete_sets") else {k: set() for k in sets}

        gauges = dict(self.gauges)
        changes = {k: self.gauge_changes.get(k, 0.0) for k in self.gauge_unbased if k in gauges}
        self.gauge_changes = {}
        if self.track_gauge_ttl:
            for key in list(self.gauge_ttl):
                self.gauge_ttl[key] -= 1
                if self.gauge_ttl[key] < 1:
                    del self.gauge_ttl[key]
                    self.gauges.pop(key, None)
                    self.gauge_unbased.discard(key)
        created, self.created = self.created, []
        events, self.events = self.events, []
        rejections, self.rejections = self.rejections, {}
        for reason, amount in rejections.items():
            self.totals["rejected." + reason] = self.totals.get("rejected." + reason, 0) + amount

        return Swapped(now, config.flush_interval, counters, timers, timer_counts, gauges, sets,
                       self.prefix, started, changes, created, events, rejections, observations,
                       observation_counts)


@dataclass
class Swapped:
    """One interval's tables, detached from the aggregator (nothing else touches them)."""

    now: float
    interval: float
    counters: dict[Key, float]
    timers: dict[Key, Values]
    timer_counts: dict[Key, float]
    gauges: dict[Key, float]
    sets: dict[Key, set[str]]
    prefix: str
    started: float
    gauge_changes: dict[Key, float]
    created: list[tuple[str, Key]]
    events: list[Event]
    rejections: dict[str, int]
    observations: dict[Key, Values]
    observation_counts: dict[Key, float]

    def snapshot(self) -> Snapshot:
        """The immutable ``Snapshot`` of these tables (run without the aggregator's lock).

        Built a table at a time with C-level loops (``map``/``zip``), and handed to
        ``Snapshot`` as read-only views of new dicts, so nothing is copied twice: at
        half a million series the per-key Python work was a good part of a flush.
        Timer values (unsorted ``array('d')``) and set members are handed over as
        collected, not copied (nothing else holds them after the swap): each sink
        orders timer values as it needs, the Carbon one a whole table at a time in NumPy.
        """
        with paused_gc():
            return self._snapshot()

    def _snapshot(self) -> Snapshot:
        timer_keys = _series_keys(self.timers)
        timer_counts = self.timer_counts
        observation_keys = _series_keys(self.observations)
        observation_counts = self.observation_counts
        created = self.created
        return Snapshot(
            timestamp=self.now,
            interval=self.interval,
            counters=_frozen(_series_keys(self.counters), self.counters.values()),
            timers=_frozen(timer_keys, self.timers.values()),
            timer_counts=_frozen(timer_keys, map(timer_counts.get, self.timers, repeat(0.0))),
            gauges=_frozen(_series_keys(self.gauges), self.gauges.values()),
            sets=_frozen(_series_keys(self.sets), self.sets.values()),
            prefix_stats=self.prefix,
            processing_ms=(time.perf_counter() - self.started) * 1000,
            gauge_changes=_frozen(_series_keys(self.gauge_changes), self.gauge_changes.values()),
            first_seen=tuple(zip(map(itemgetter(0), created), _series_keys(map(itemgetter(1), created)))),
            events=tuple(self.events),
            rejections=MappingProxyType(dict(self.rejections)),
            observations=_frozen(observation_keys, self.observations.values()),
            observation_counts=_frozen(observation_keys, map(observation_counts.get, self.observations, repeat(0.0))),
        )


_EMPTY_TAGS: tuple[str, ...] = ()


def _series_keys(table: Iterable[Key]) -> list[SeriesKey]:
    """``series_key`` of every key (of a table, or any iterable of keys), in order;
    untagged keys (nearly all) made in one C loop."""
    keys = list(table)
    if set(map(type, keys)) <= {str}:  # (a C loop; a generator over the keys was 1/3 of this)
        return list(map(tuple.__new__, repeat(SeriesKey), zip(keys, repeat(_EMPTY_TAGS))))
    return list(map(series_key, keys))


def _frozen(keys: list[SeriesKey], values: Iterable[V]) -> Mapping[SeriesKey, V]:
    return MappingProxyType(dict(zip(keys, values)))
