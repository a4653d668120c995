"""Exposition of the series store through prometheus_client: a custom Collector.

The store (``registry.py``) owns the numbers; this module only turns them into metric
families, once per change: between two flushes every scrape gets the same bytes, so
N scrapers cost one rendering. A family that fails to render is skipped and counted
(``statsd_push_bridge_render_errors_total``); a scrape never fails because of one bad
series.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from django_statsd_push.bridge.registry import (
    COUNTER,
    GAUGE,
    HISTOGRAM,
    OWN_PREFIX,
    SUMMARY,
    Family,
    Series,
    SeriesStore,
)

__all__ = ["BridgeCollector", "OWN_PREFIX"]

log = logging.getLogger(__name__)

# Reasons always exported (at 0 too) so alerts can rely on the series existing.
_DROP_REASONS = ("mapping_drop", "series_limit", "negative_counter", "empty_name", "mixed_tag_styles", "reserved_label")
_CONFLICT_KINDS = ("type", "labels", "name")


class BridgeCollector:
    """Yields the store's families plus the bridge's own metrics."""

    def __init__(self, store: SeriesStore) -> None:
        self.store = store
        self.render_errors = 0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self._cache: tuple[int, bytes] | None = None
        self._render_lock = threading.Lock()

    def describe(self) -> list[Metric]:
        return []  # unchecked, like statsd_exporter's: series come and go at runtime

    def render(self) -> bytes:
        """The text exposition; reused until the store changes."""
        with self._render_lock:
            generation = self.store.generation
            cached = self._cache
            if cached is not None and cached[0] == generation:
                return cached[1]
            output = generate_latest(self.registry)
            self._cache = (generation, output)
            return output

    def collect(self) -> Iterator[Metric]:
        store = self.store
        now = store.clock()
        with store.lock:
            families = []
            for family in list(store.families.values()):
                try:
                    families.append(_family(family, now))
                except Exception:  # noqa: BLE001 - one bad family must not fail the scrape
                    self.render_errors += 1
                    log.exception("cannot render family %s", family.name)
            stats = dict(store.stats)
            series_count, family_count = store.series_count, len(store.families)
            flush_seconds = store.last_flush_seconds
        yield from families
        yield from self._own(stats, series_count, family_count, flush_seconds)

    def _own(
        self, stats: dict[tuple[str, str], float], series: int, families: int, flush_seconds: float
    ) -> Iterator[Metric]:
        def counter(name: str, help_: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(OWN_PREFIX + name, help_, value=value)

        def by(
            name: str, help_: str, label: str, kind: str, known: tuple[str, ...], skip: tuple[str, ...] = ()
        ) -> CounterMetricFamily:
            family = CounterMetricFamily(OWN_PREFIX + name, help_, labels=[label])
            details = dict.fromkeys(known, 0.0)
            details.update({d: v for (k, d), v in stats.items() if k == kind and d not in skip})
            for detail, value in sorted(details.items()):
                family.add_metric([detail], value)
            return family

        yield counter("lines", "statsd lines received (the daemon's metrics_received).", stats.get(("daemon", "metrics_received"), 0.0))
        yield counter("packets", "statsd datagrams/TCP chunks received.", stats.get(("daemon", "packets_received"), 0.0))
        yield counter("bad_lines", "statsd lines that could not be parsed and were skipped.", stats.get(("daemon", "bad_lines_seen"), 0.0))
        yield by("samples", "Series updates applied, by statsd type.", "type", "samples", (COUNTER, GAUGE, HISTOGRAM, SUMMARY, "set"))
        yield by("dropped", "Series updates dropped, by reason.", "reason", "dropped", _DROP_REASONS)
        yield by("conflicts", "Series updates dropped because the name was taken with another type, label set or exposed name.", "kind", "conflicts", _CONFLICT_KINDS)
        yield by(
            "daemon_events", "The daemon's own counters beyond lines/packets/bad lines (udp_kernel_drops, series_dropped ...).",
            "event", "daemon", (),
            skip=("metrics_received", "packets_received", "bad_lines_seen"),
        )  # fmt: skip
        yield counter("tag_errors", "Malformed tags skipped (the sample was kept).", stats.get(("tag_errors", ""), 0.0))
        yield counter("expired_series", "Series removed because their mapping's ttl ran out.", stats.get(("expired", ""), 0.0))
        yield counter("flushes", "Snapshots applied.", stats.get(("flushes", ""), 0.0))
        yield counter("render_errors", "Metric families skipped while rendering /metrics.", float(self.render_errors))
        yield GaugeMetricFamily(OWN_PREFIX + "series", "Series held now.", value=series)
        yield GaugeMetricFamily(OWN_PREFIX + "series_limit", "Most series held at once (--max-series).", value=self.store.max_series)
        yield GaugeMetricFamily(OWN_PREFIX + "families", "Metric names held now.", value=families)
        yield GaugeMetricFamily(OWN_PREFIX + "mapping_rules", "Rules in the mapping file.", value=len(self.store.mapper))
        yield GaugeMetricFamily(OWN_PREFIX + "flush_duration_seconds", "Time the last snapshot took to apply.", value=flush_seconds)


def _family(family: Family, now: float) -> Metric:
    names = family.label_names
    if family.type == COUNTER:
        metric: Metric = CounterMetricFamily(family.name, family.help, labels=names)
        sample_name = family.name + "_total"
        for series in family.series.values():
            metric.samples.append(Sample(sample_name, dict(zip(names, series.labels)), series.value, None, None))
    elif family.type == GAUGE:
        metric = GaugeMetricFamily(family.name, family.help, labels=names)
        for series in family.series.values():
            metric.samples.append(Sample(family.name, dict(zip(names, series.labels)), series.value, None, None))
    elif family.type == HISTOGRAM:
        # Samples built directly (add_metric re-zips the labels for every bucket line).
        metric = HistogramMetricFamily(family.name, family.help, labels=names)
        bounds = [floatToGoString(b) for b in family.buckets] + ["+Inf"]
        bucket, count, total = family.name + "_bucket", family.name + "_count", family.name + "_sum"
        append = metric.samples.append
        for series in family.series.values():
            labels = dict(zip(names, series.labels))
            for le, value in zip(bounds, series.buckets + [series.count]):  # type: ignore[operator]
                append(Sample(bucket, {**labels, "le": le}, value, None, None))
            append(Sample(count, labels, series.count, None, None))
            append(Sample(total, labels, series.sum, None, None))
    else:
        metric = SummaryMetricFamily(family.name, family.help, labels=names)
        for series in family.series.values():
            _quantiles(metric, family, series, now)
            metric.add_metric(series.labels, series.count, series.sum)
    return metric


def _quantiles(metric: Metric, family: Family, series: Series, now: float) -> None:
    """Quantiles over the observations of the last ``max_age`` (exact, on a bounded window)."""
    window = series.window
    assert window is not None
    while window and now - window[0][0] > family.max_age:
        window.popleft()
    values = sorted(v for _, v in window)
    labels = dict(zip(family.label_names, series.labels))
    for quantile, _error in family.quantiles:
        if values:
            value = values[min(len(values) - 1, max(0, math.ceil(quantile * len(values)) - 1))]  # nearest rank
        else:
            value = float("nan")
        metric.samples.append(Sample(family.name, {**labels, "quantile": floatToGoString(quantile)}, value, None, None))
