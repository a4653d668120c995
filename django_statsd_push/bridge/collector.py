"""The store's exposition: a prometheus_client Collector, and the page it renders.

The store (``store.py``) owns the numbers; this module turns them into the page,
once per change: between two flushes every scrape gets the same bytes, so N scrapers
cost one rendering. The store's series go through ``exposition.TextRenderer`` (text
format 0.0.4, byte-equal to ``generate_latest`` but incremental); the bridge's own
few metrics through ``generate_latest`` itself. ``collect()`` stays a plain Collector
(register it in any ``CollectorRegistry``, e.g. for another encoder). A family that
fails to render is skipped and counted (``statsd_push_bridge_render_errors_total``);
a scrape never fails because of one bad series.
"""

from __future__ import annotations

import logging
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
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from django_statsd_push.bridge.exposition import TextRenderer, quantile_values, render_metrics
from django_statsd_push.bridge.store import (
    COUNTER,
    GAUGE,
    HISTOGRAM,
    OWN_PREFIX,
    SUMMARY,
    Family,
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
        self._renderer = TextRenderer()
        self._render_lock = threading.Lock()

    def describe(self) -> list[Metric]:
        return []  # unchecked, like statsd_exporter's: series come and go at runtime

    def render(self) -> bytes:
        """The text exposition; reused until the store changes."""
        with self._render_lock:
            store = self.store
            generation = store.generation
            cached = self._cache
            if cached is not None and cached[0] == generation:
                return cached[1]
            with store.lock:
                now = store.clock()
                text = self._renderer.render(list(store.families.values()), now, self._failed)
                own = list(self._own(*self._own_state()))
            output = text + render_metrics(own)
            self._cache = (generation, output)
            return output

    def _failed(self, family: Family) -> None:
        self.render_errors += 1
        log.exception("cannot render family %s", family.name)

    def collect(self) -> Iterator[Metric]:
        store = self.store
        with store.lock:
            now = store.clock()
            families = []
            for family in list(store.families.values()):
                try:
                    families.append(_family(family, now))
                except Exception:  # noqa: BLE001 - one bad family must not fail the scrape
                    self._failed(family)
            own = self._own_state()
        yield from families
        yield from self._own(*own)

    def _own_state(self) -> tuple[dict[tuple[str, str], float], int, int, float]:
        """What the bridge's own metrics need, read under the store's lock."""
        store = self.store
        return dict(store.stats), store.series_count, len(store.families), store.last_flush_seconds

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
        yield by("sample_errors", "Problems with statsd lines, by reason (statsd_exporter's sample_errors_total reasons).",
                 "reason", "sample_errors", ())
        yield counter("tag_errors", "Malformed tags skipped (the sample was kept).", stats.get(("tag_errors", ""), 0.0))
        yield counter("expired_series", "Series removed because their mapping's ttl ran out.", stats.get(("expired", ""), 0.0))
        yield counter("flushes", "Snapshots applied.", stats.get(("flushes", ""), 0.0))
        yield by("mapping_reloads", "Mapping file reloads (SIGHUP), by outcome.", "outcome", "mapping_reloads", ("failure", "success"))
        yield counter("render_errors", "Metric families skipped while rendering /metrics.", float(self.render_errors))
        yield GaugeMetricFamily(OWN_PREFIX + "series", "Series held now.", value=series)
        yield GaugeMetricFamily(OWN_PREFIX + "series_limit", "Most series held at once (--max-series).", value=self.store.max_series)
        yield GaugeMetricFamily(OWN_PREFIX + "families", "Metric names held now.", value=families)
        yield GaugeMetricFamily(OWN_PREFIX + "mapping_rules", "Rules in the mapping file.", value=len(self.store.mapper))
        yield GaugeMetricFamily(OWN_PREFIX + "flush_duration_seconds", "Time the last snapshot took to apply.", value=flush_seconds)


def _family(family: Family, now: float) -> Metric:
    names = family.label_names
    metric: Metric
    if family.type == COUNTER:
        # Metric, not CounterMetricFamily: that strips a "_total" the store already
        # stripped once ("a_total_total" would get HELP/TYPE "a_total" over "a_total_total").
        metric = Metric(family.name, family.help, COUNTER)
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
            labels = dict(zip(names, series.labels))
            quantiles = zip(family.quantiles, quantile_values(family, series, now))
            for (quantile, _error), value in quantiles:
                metric.samples.append(Sample(family.name, {**labels, "quantile": floatToGoString(quantile)}, value, None, None))
            metric.add_metric(series.labels, series.count, series.sum)
    return metric
