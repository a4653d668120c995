"""The incremental text renderer against prometheus_client's ``generate_latest``.

``BridgeCollector.render()`` writes the store's series itself (``exposition.py``);
``generate_latest(collector.registry)`` renders the same store through the
collector's metric families. The two must be byte-equal, after every flush: a series
whose text is reused must still show its current values.
"""

from __future__ import annotations

import math

from prometheus_client.exposition import generate_latest

from django_statsd_push.server.snapshot import SeriesKey, Snapshot
from tests.bridge.test_store import Bridge

MAPPING = (
    "mappings:\n"
    "- match: q.*\n  name: q_seconds\n  observer_type: summary\n  help: \"Quantiles, with a \\\\ and a\\nnewline.\"\n"
    "  summary_options: {quantiles: [{quantile: 0.5, error: 0.01}, {quantile: 0.99, error: 0.001}], max_age: 30s}\n"
    "- match: h.*\n  name: h_seconds\n  labels: {kind: $1}\n  histogram_options: {buckets: [0.001, 0.1, 1, 1e7]}\n"
    "- match: short.*\n  name: short_total\n  ttl: 2s\n  labels: {what: $1}\n"
)


def same_page(collector) -> str:
    page = collector.render().decode()
    assert page == generate_latest(collector.registry).decode()
    return page


def test_every_type_renders_as_generate_latest_does_across_flushes() -> None:
    bridge = Bridge(MAPPING)
    bridge.feed(
        "hits:1|c|#path:/a\nhits:3|c|@0.1|#path:/b\n"
        "temp:21.5|g\ntemp:-3|g|#room:cellar\n"
        "users:a|s\nusers:b|s\n"
        "h.get:0.5|ms\nh.get:300|ms\nh.post:5000|ms\n"
        "q.a:1|ms\nq.a:7|ms\nq.b:2|ms\n"
        "short.x:1|c\n"
        "twice_total_total:2|c\n"
    )
    first = same_page(bridge.collector)
    assert 'h_seconds_bucket{kind="get",le="1e+07"} 2.0' in first
    assert "# TYPE twice_total_total counter\ntwice_total_total 2.0\n" in first
    assert 'q_seconds{quantile="0.99"} 0.007\n' in first and "# HELP q_seconds Quantiles, with a \\\\ and a\\nnewline." in first
    # Some series change, some stay, a set empties, a gauge moves relatively.
    bridge.feed("hits:1|c|#path:/a\ntemp:+1.5|g\nh.get:2|ms\nq.a:3|ms")
    second = same_page(bridge.collector)
    assert 'hits_total{path="/a"} 2.0' in second and 'hits_total{path="/b"} 30.0' in second
    assert "users 0.0" in second and "temp 23.0" in second
    # The ttl removes a series; one with the same labels comes back as a new series.
    bridge.feed(advance=5.0)
    assert "short_total" not in same_page(bridge.collector)
    bridge.feed("short.x:4|c")
    assert 'short_total{what="x"} 4.0' in same_page(bridge.collector)
    # Summary quantiles age out between flushes: NaN, as generate_latest writes it.
    bridge.feed(advance=60.0)
    assert 'q_seconds{quantile="0.5"} NaN' in same_page(bridge.collector)


def test_label_values_with_quotes_backslashes_newlines_and_percent() -> None:
    bridge = Bridge()
    odd = ['a"b', "back\\slash", "new\nline", "100%s %d", "ünï€ode", "le", "{x=\"y\"}"]
    keys = {SeriesKey("odd", (f"path:{value}", "le_:1")): 1.0 for value in odd}
    timers = {SeriesKey("lat", (f"zone:{value}",)): (3.0,) for value in odd}
    bridge.store.apply(Snapshot(1.0, 1.0, counters=keys, timers=timers, timer_counts=dict.fromkeys(timers, 1.0)))
    page = same_page(bridge.collector)
    assert 'odd_total{le_="1",path="new\\nline"} 1.0' in page
    assert 'lat_bucket{le="0.005",zone="100%s %d"} 1.0' in page


def test_nan_inf_and_go_float_formatting() -> None:
    bridge = Bridge(idle_repeats=False)
    values = {"nan": math.nan, "inf": math.inf, "minf": -math.inf, "huge": 1e300, "tiny": 1e-7,
              "big": 123456789.0, "neg": -0.0, "int": 42.0}  # fmt: skip
    gauges = {SeriesKey(f"g_{k}"): v for k, v in values.items()}
    bridge.store.apply(Snapshot(1.0, 1.0, gauges=gauges, counters={SeriesKey("c_inf"): math.inf}))
    page = same_page(bridge.collector)
    for line in ("g_nan NaN", "g_inf +Inf", "g_minf -Inf", "g_huge 1e+300", "g_big 1.23456789e+08", "g_neg -0.0"):
        assert line + "\n" in page
    # 0.0 == -0.0, yet they print differently: a sign flip of a zero is not "unchanged"
    bridge.store.apply(Snapshot(2.0, 1.0, gauges={SeriesKey("g_neg"): 0.0, SeriesKey("g_int"): -0.0}))
    assert "g_neg 0.0\n" in same_page(bridge.collector)


def test_empty_family_is_its_help_and_type_only() -> None:
    bridge = Bridge()
    bridge.feed("gone:1|g\nkept:1|c")
    same_page(bridge.collector)
    bridge.store.families["gone"].series.clear()  # a family left without series
    bridge.store.generation += 1
    page = same_page(bridge.collector)
    assert "# TYPE gone gauge\n# HELP " in page and "\ngone " not in page


def test_unchanged_flush_reuses_series_text() -> None:
    bridge = Bridge()
    bridge.feed("a:1|g\nb:1|ms")
    first = bridge.collector.render()
    bridge.store.generation += 1  # a flush that changed nothing
    second = bridge.collector.render()
    assert second == first and second is not first


def test_summary_without_quantiles_is_count_and_sum() -> None:
    bridge = Bridge("mappings:\n- match: q.*\n  name: q\n  observer_type: summary\n")
    bridge.feed("q.a:1|ms")
    bridge.store.families["q"].quantiles = ()  # the mapping never leaves none; the writer must not care
    assert "# TYPE q summary\nq_count 1.0\nq_sum 0.001\n" in same_page(bridge.collector)
