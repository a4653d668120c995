"""What one flush hands to every sink (``server/sink.py``): an immutable ``Snapshot``.

The aggregator swaps its tables at each flush and wraps the old ones here, so every
sink (the Carbon writer, the Prometheus bridge) reads the same numbers and nothing is
parsed or aggregated twice. Sinks must treat a snapshot as read-only; the mappings
are read-only views, and nothing else holds the tables any more.

Series are keyed by ``SeriesKey(name, tags)`` with the RAW name and the raw DogStatsD
tag strings (``("env:prod", "region:eu")``), exactly as ``protocol.Sample`` carries
them. Graphite naming (etsy's sanitising, ``name;env=prod``) is the Carbon sink's job.

Fields of ``Snapshot``:

``timestamp``      unix time of this flush (float seconds; etsy rounds it for Carbon)
``interval``       the configured flush interval in seconds (etsy divides by it for rates)
``counters``       ``SeriesKey -> float``: sum of value/rate this interval. Idle counters
                   kept by the aggregator appear with ``0.0`` (unless deleteCounters).
                   Includes the daemon's own counters (``statsd.packets_received``,
                   ``statsd.metrics_received``, ``statsd.bad_lines_seen``, and any of
                   ours that became non-zero) as etsy does, named with ``prefix_stats``.
``timers``         ``SeriesKey -> Sequence[float]``: the values seen, in arrival order
                   (from the aggregator an ``array('d')``; sinks must not change it and
                   sort a copy when they need order). An idle timer kept by the
                   aggregator has no values.
``timer_counts``   ``SeriesKey -> float``: sum of 1/rate per timer value (same keys as
                   ``timers``; etsy's ``count``).
``gauges``         ``SeriesKey -> float``: current values (gauges persist across flushes).
``sets``           ``SeriesKey -> AbstractSet[str]``: distinct members this interval
                   (the aggregator's own ``set``, handed over: sinks must not change it).
``prefix_stats``   the prefix of the daemon's own metrics (etsy ``prefixStats``, "statsd").
``processing_ms``  milliseconds the aggregator spent producing this snapshot.
``gauge_changes``  ``SeriesKey -> float`` for gauges whose value in ``gauges`` has no
                   base (a delta arrived after the daemon deleted the gauge as idle):
                   the change this interval, for a sink that kept the series to add.
                   etsy writes such a gauge's value as it is, and so does Carbon here.
``first_seen``     ``(kind, SeriesKey)`` of the series created this interval, in arrival
                   order (kind: ``c``, ``ms``, ``g``, ``s``).
``events``         DogStatsD events received this interval (``protocol.Event``); the
                   hook for sinks that keep events. Others ignore them.
``rejections``     parse problems this interval by reason (``protocol.Rejected``).
``observations``   ``SeriesKey -> Sequence[float]``, as ``timers``: DogStatsD ``h``/``d`` values
                   in their own unit, only under statsd_exporter's rules (the bridge;
                   etsy's rules count them as counters). ``observation_counts`` as
                   ``timer_counts``. Never repeated idle; the Carbon sink ignores them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple


class SeriesKey(NamedTuple):
    name: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    timestamp: float
    interval: float
    counters: Mapping[SeriesKey, float] = field(default_factory=dict)
    timers: Mapping[SeriesKey, Sequence[float]] = field(default_factory=dict)
    timer_counts: Mapping[SeriesKey, float] = field(default_factory=dict)
    gauges: Mapping[SeriesKey, float] = field(default_factory=dict)
    sets: Mapping[SeriesKey, AbstractSet[str]] = field(default_factory=dict)
    prefix_stats: str = "statsd"
    processing_ms: float = 0.0
    gauge_changes: Mapping[SeriesKey, float] = field(default_factory=dict)
    first_seen: tuple[tuple[str, SeriesKey], ...] = ()
    events: tuple[Any, ...] = ()  # protocol.Event (not imported: sinks need no parser)
    rejections: Mapping[str, int] = field(default_factory=dict)
    observations: Mapping[SeriesKey, Sequence[float]] = field(default_factory=dict)
    observation_counts: Mapping[SeriesKey, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Freeze plain dicts passed in (tests, other producers) the same way.
        for name in ("counters", "timers", "timer_counts", "gauges", "sets", "gauge_changes", "rejections",
                     "observations", "observation_counts"):
            value = getattr(self, name)
            if not isinstance(value, MappingProxyType):
                object.__setattr__(self, name, MappingProxyType(dict(value)))
