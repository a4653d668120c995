"""The Carbon lines for one flush equal etsy statsd 0.9's (reference capture + rules)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from django_statsd_push.server.aggregate import Aggregator, AggregatorConfig
from django_statsd_push.server.carbon_client import lines_of
from django_statsd_push.server.graphite import GraphiteConfig, all_safe, etsy_key, format_snapshot, is_safe, sanitize
from django_statsd_push.server.graphite_sink import GraphiteSink
from django_statsd_push.server.js import js_str, js_strs
from django_statsd_push.server.snapshot import SeriesKey
from django_statsd_push.server.timer_stats import timer_stats, timer_table

from .etsy_lines import FIXTURES, fixture_lines, masked
from .helpers import Collect, ingest_as_workers

T0 = 1795417881.0


def fixture_packets() -> list[bytes]:
    return [packet.encode("latin-1") for packet in json.loads((FIXTURES / "packets.json").read_text())]


def run_fixture(collect: Collect, feed: Callable[[Aggregator, list[bytes]], None]) -> None:
    """The fixture's flushes; ``feed(aggregator, packets)`` gets the packets into ``aggregator``."""
    aggregator = Aggregator(AggregatorConfig(flush_interval=1.0))
    sink = GraphiteSink(collect, GraphiteConfig(histogram=[("api.latency", [10, 50, 100, "inf"])]),
                        aggregator.count)
    sink.flush(aggregator.flush(T0))  # the capture is not statsd's first flush (timestamp_lag)
    feed(aggregator, fixture_packets())
    sink.flush(aggregator.flush(T0 + 1))
    sink.flush(aggregator.flush(T0 + 2))


def assert_fixture_output(collect: Collect) -> None:
    _, flush, idle = collect.batches
    assert masked(flush) == fixture_lines("flush-legacy.txt")
    assert masked(idle) == fixture_lines("flush-legacy-next-idle.txt")
    assert {t for _, _, t in flush} == {round(T0 + 1)}


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_fixture_flush_and_next_idle_flush_match_etsy(workers):
    """One aggregator, or the packets spread over recording ones merged as the daemon's
    workers are (``mem.free``'s set and deltas then cross workers)."""
    collect = Collect()
    run_fixture(collect, lambda aggregator, packets: ingest_as_workers(aggregator, packets, workers))
    assert_fixture_output(collect)


def test_sanitising_and_tags():
    assert sanitize("my metric/with spaces$%") == "my_metric-with_spaces"
    assert etsy_key(SeriesKey("web.hits", ("env:prod", "region:eu"))) == "web.hits;env=prod;region=eu"
    assert etsy_key(SeriesKey("a", ("k;x:v:w",))) == "a;k_x=vw"
    assert etsy_key(SeriesKey("a b", ("k:v/w",)), sanitize_tags=False) == "a_b;k=v/w"
    # keyNameSanitize=false: etsy's backend cleans up to the first ";", even one in the name
    assert etsy_key(SeriesKey("a b;x$y"), sanitize_tags=False) == "a_b;x$y"
    assert etsy_key(SeriesKey("a b;x$y"), sanitize_tags=True) == "a_b;xy"


TAG_CASES = [
    # (series, keyNameSanitize, Graphite name, tags dropped)
    (SeriesKey("a", ("flag",)), True, "a;flag=true", 0),  # DogStatsD bare tag (etsy: "a;flag")
    (SeriesKey("a", ("k:",)), True, "a;k=true", 0),
    (SeriesKey("a", (":v", "", "k:v")), True, "a;k=v", 2),
    (SeriesKey("a", ("k:v;w;x",)), True, "a;k=v_w;x=true", 0),  # etsy: first ";" -> "_", the 2nd splits
    (SeriesKey("a", ("\u20ac:v",)), True, "a", 1),  # the name sanitises away
    (SeriesKey("a", ("k!^:~v",)), False, "a;k__=_v", 0),
    (SeriesKey("a,env=prod,region=eu"), True, "a;env=prod;region=eu", 0),  # Telegraf (etsy: "aenv=prodregion=eu")
    (SeriesKey("a,env=prod,bare", ("k:v",)), True, "a;env=prod;bare=true;k=v", 0),
]


@pytest.mark.parametrize("series, sanitize_tags, expected, dropped", TAG_CASES)
def test_tags_are_written_as_carbon_accepts_them(series, sanitize_tags, expected, dropped):
    """carbon's own TaggedSeries.parse is the oracle: it accepts every tagged name written."""
    from tests.conftest import require

    try:
        from carbon.util import TaggedSeries
    except ImportError:
        TaggedSeries = None  # noqa: N806
    seen: list[str] = []
    name = etsy_key(series, sanitize_tags, seen.append)
    assert (name, len(seen)) == (expected, dropped)
    require(TaggedSeries is not None, "carbon is not installed")
    if ";" in name:
        parsed = TaggedSeries.parse(name)  # raises on a tag Carbon refuses
        assert parsed.tags["name"] == name.split(";")[0]


def flush_lines(packets, graphite: GraphiteConfig, **agg) -> dict[str, str]:
    aggregator = Aggregator(AggregatorConfig(flush_interval=10.0, **agg))
    for packet in packets:
        aggregator.ingest(packet)
    return {n: v for n, v, _ in lines_of(format_snapshot(aggregator.flush(T0), graphite))}


def test_non_legacy_namespace_prefixes_and_suffix():
    lines = flush_lines(
        [b"hits:20|c|#env:prod", b"t:5|ms", b"g:1|g", b"s:a|s"],
        GraphiteConfig(legacy_namespace=False, global_prefix="p", prefix_counter="",
                       prefix_gauge="gg", global_suffix="sfx"),
    )
    assert lines["p.hits.rate.sfx;env=prod"] == "2"
    assert lines["p.hits.count.sfx;env=prod"] == "20"
    assert lines["p.timers.t.upper.sfx"] == "5"
    assert lines["p.gg.g.sfx"] == "1"
    assert lines["p.sets.s.count.sfx"] == "1"
    assert lines["p.statsd.numStats.sfx"] == "7"
    assert "p.statsd.processing_time.sfx" in lines
    assert not any(n.startswith("stats_counts") for n in lines)


def test_percent_threshold_list_decimal_and_negative():
    values = [float(v) for v in range(1, 11)]
    stats = timer_stats(values, 10, 1.0, [90, 99.5, -20, 0.1])
    assert stats["upper_90"] == 9 and stats["sum_90"] == 45
    assert stats["count_99_5"] == 10 and stats["upper_99_5"] == 10
    assert stats["lower_top20"] == 9 and stats["sum_top20"] == 19 and stats["mean_top20"] == 9.5
    assert "count_0_1" not in stats  # round(0.01) == 0: etsy skips it
    # a top threshold covering every value: etsy writes NaN, we write the true sum
    assert timer_stats([1.0, 2.0], 2, 1.0, [-100])["sum_top100"] == 3


def test_histogram_bins_and_calculated_timer_metrics():
    stats = timer_stats([1.0, 5.0, 5.5, 500.0], 4, 1.0, [90], [5, 7.5, 100])
    assert stats["histogram"] == {"bin_5": 1, "bin_7_5": 2, "bin_100": 0}  # 500: above the last bin
    # etsy walks the values once: a bin after a larger edge takes nothing
    assert timer_stats([1.0, 5.0, 5.5, 500.0], 4, 1.0, [90], [100, 5, "inf"])["histogram"] == \
        {"bin_100": 3, "bin_5": 0, "bin_inf": 1}
    only = timer_stats([1.0, 2.0], 2, 1.0, [90], (), ["upper_percent", "count"])
    assert set(only) == {"upper_90", "count"}


def test_delete_idle_stats_and_gauge_ttl():
    aggregator = Aggregator(AggregatorConfig(flush_interval=1.0, delete_idle_stats=True, gauges_max_ttl=2))
    aggregator.ingest(b"c:1|c\nt:1|ms\ng:5|g\ns:x|s")
    first = aggregator.flush(T0)
    assert {k.name for k in first.counters} >= {"c"}
    second = aggregator.flush(T0 + 1)
    assert set(second.counters) == {SeriesKey("statsd.bad_lines_seen"), SeriesKey("statsd.packets_received"),
                                     SeriesKey("statsd.metrics_received")}
    assert not second.timers and not second.sets
    assert SeriesKey("g") in second.gauges  # ttl 2: one idle flush still reports it
    third = aggregator.flush(T0 + 2)
    assert SeriesKey("g") not in third.gauges
    assert third.gauges[SeriesKey("statsd.timestamp_lag")] == 0


def test_without_delete_idle_stats_counters_reset_and_gauges_persist():
    aggregator = Aggregator(AggregatorConfig(flush_interval=1.0))
    aggregator.ingest(b"c:3|c\ng:5|g\ng:-1|g")
    assert aggregator.flush(T0).counters[SeriesKey("c")] == 3
    idle = aggregator.flush(T0 + 1)
    assert idle.counters[SeriesKey("c")] == 0 and idle.gauges[SeriesKey("g")] == 4


@pytest.mark.parametrize("value,text", [(150.0, "150"), (54.111111111111114, "54.111111111111114"),
                                        (1e21, "1e+21"), (1e16, "10000000000000000"), (1e-7, "1e-7"),
                                        (0.00001, "0.00001"), (-0.5, "-0.5"), (float("nan"), "NaN")])
def test_numbers_are_written_as_javascript_does(value, text):
    assert js_str(value) == text


@pytest.mark.parametrize("column", [
    [1.0, 5.0, 900.0], [0.5, 2.0, -3.25], [-0.0, 0.0, 7.0], [54.111111111111114, -0.0], [1e-7, 2.0, 1e21],
    [1e16, 3.5], [float("nan"), 1.0], [float("inf"), -1.0], [3, 4, 2**60], [0.0001, -0.0001, 0.00009999],
    [2.0**53, 2.0**53 - 1], [], [7, 8.5],
], ids=repr)
def test_whole_columns_are_written_as_js_str_writes_each_value(column):
    import numpy as np

    expected = [js_str(v) for v in column]
    assert js_strs(column) == expected
    if column and all(isinstance(v, float) for v in column):
        assert js_strs(np.array(column)) == expected


def test_timers_computed_together_equal_each_computed_alone():
    """timer_table over rows of one length gives each row what a one-row table gives it."""
    import random

    rnd = random.Random(7)
    for n in (1, 2, 5, 11):
        rows = [sorted(rnd.choice([rnd.randint(0, 900), rnd.random() * 1e3, rnd.random() / 3]) for _ in range(n))
                for _ in range(40)]
        counts = [rnd.choice([n, n * 10, n / 0.3]) for _ in rows]
        args = (2.5, [90, 50, 99.9, -10, -100], [0.5, 100, 50, "inf"], None)
        together = timer_table(rows, counts, *args)
        for i, (row, count) in enumerate(zip(rows, counts)):
            alone = timer_table([row], [count], *args)
            assert list(alone) == list(together)
            assert [js_strs(c[i:i + 1]) for c in together.values()] == [js_strs(c) for c in alone.values()]


@pytest.mark.parametrize("name", ["a/b", "a\x00b", "a b", "..", "a..b", "x" * 300, "a." + "b" * 201, "a\\b"])
def test_unsafe_names_are_refused(name):
    assert not is_safe(name)
    assert not all_safe(["ok", name])
    assert not all_safe([name, "ok"])


def test_an_empty_name_anywhere_is_not_safe():
    assert not is_safe("")
    assert not all_safe(["", "a"]) and not all_safe(["a", ""]) and not all_safe(["a", "", "b"])
    aggregator = Aggregator(AggregatorConfig(flush_interval=1.0))
    aggregator.ingest(b"$$:1|c\nok:1|c")  # "$$" sanitises to nothing
    names = {n for n, _, _ in lines_of(format_snapshot(aggregator.flush(T0), GraphiteConfig()))}
    assert "stats.ok" in names and "stats." not in names and "stats_counts." not in names


@pytest.mark.parametrize("names", [["a.b", "c;t=v"], ["a;t=..v"], ["x" * 200], ["é.b"]], ids=repr)
def test_safe_names_are_safe_one_by_one_whatever_all_safe_says(names):
    assert all(is_safe(n) for n in names)
    assert all_safe(names) == all(n.isascii() and ".." not in n for n in names)


def test_rejected_names_are_counted_not_written():
    aggregator = Aggregator(AggregatorConfig(flush_interval=1.0))
    aggregator.ingest(b"ok:1|c\n" + b"a..b:1|c\n" + b"a..$b:1|c\n" + b"v:1|c|#k:a/b")
    collect = Collect()
    sink = GraphiteSink(collect, GraphiteConfig(key_name_sanitize=False), aggregator.count)
    sink.flush(aggregator.flush(T0))
    names = {n for n, _, _ in collect.batches[0]}
    assert "stats.ok" in names
    assert not any("a..b" in n or "a/b" in n for n in names)
    nxt = aggregator.flush(T0 + 1)
    # once a flush for each Graphite name ("a..b" and "a..$b" are one name)
    assert nxt.counters[SeriesKey("statsd.names_rejected")] == 2


def test_dropped_tags_are_counted_once_a_flush_per_series_and_mended_tags_written():
    """Through the sink's column-wise formatting: clean names (taken whole) beside tagged
    ones; a series whose tag Carbon refuses is counted once a flush, though it is a
    counter, a timer (values and counts) and a gauge; a bare tag becomes ``=true``."""
    aggregator = Aggregator(AggregatorConfig(flush_interval=1.0))
    clean = b"\n".join(b"web.m%d:1|c" % i for i in range(50))
    aggregator.ingest(clean + b"\nhits:1|c|#:v,flag\nhits:2|ms|#:v,flag\nhits:3|g|#:v,flag\nq:1|c|#k:")
    collect = Collect()
    sink = GraphiteSink(collect, GraphiteConfig(), aggregator.count)
    sink.flush(aggregator.flush(T0))
    lines = {n: v for n, v, _ in collect.batches[0]}
    assert lines["stats.hits;flag=true"] == "1"
    assert lines["stats.timers.hits.upper;flag=true"] == "2"
    assert lines["stats.gauges.hits;flag=true"] == "3"
    assert lines["stats.q;k=true"] == "1"
    assert lines["stats.web.m49"] == "1"
    nxt = aggregator.flush(T0 + 1)
    assert nxt.counters[SeriesKey("statsd.tags_dropped")] == 1
    assert SeriesKey("statsd.names_rejected") not in nxt.counters


def test_raw_names_that_clean_up_alike_are_one_graphite_series():
    """etsy sanitises at parse time, so these are one series each there: one line per name."""
    aggregator = Aggregator(AggregatorConfig(flush_interval=1.0))
    aggregator.ingest(b"a b:1|c\na_b:2|c\na \t b:3|c|@0.5\nx/y:1|c\nx-y:4|c\n"
                      b"h:1|c|#env:prod\nh;env=prod:2|c\nh:4|c|#env$:prod\n"
                      b"t x:5|ms\nt_x:1|ms|@0.5\nt$_x:3|ms\n"
                      b"g a:1|g\ng_a:5|g\n"
                      b"s a:x|s\ns_a:y|s\ns%_a:x|s")
    lines = lines_of(format_snapshot(aggregator.flush(T0), GraphiteConfig(histogram=[("t_x", [2, 4, "inf"])])))
    names = [n for n, _, _ in lines]
    assert len(names) == len(set(names))
    got = dict((n, v) for n, v, _ in lines)
    assert got["stats_counts.a_b"] == "9" and got["stats.a_b"] == "9"
    assert got["stats_counts.x-y"] == "5"
    assert got["stats_counts.h;env=prod"] == "7"
    assert got["stats.timers.t_x.count"] == "4"  # 1 + 1/0.5 + 1
    assert got["stats.timers.t_x.upper"] == "5" and got["stats.timers.t_x.lower"] == "1"
    assert got["stats.timers.t_x.median"] == "3" and got["stats.timers.t_x.sum"] == "9"
    assert got["stats.timers.t_x.histogram.bin_2"] == "1" and got["stats.timers.t_x.histogram.bin_4"] == "1"
    assert got["stats.gauges.g_a"] == "5"  # both new: the later-seen one
    assert got["stats.sets.s_a.count"] == "2"  # {x, y}
    # three user counters, three of the daemon's, one timer, one gauge, one set
    assert got["statsd.numStats"] == "9"


def test_colliding_names_are_combined_with_key_name_sanitize_off_too():
    """etsy writes stats_counts.a_b twice then (Carbon keeps the last); we write the sum."""
    aggregator = Aggregator(AggregatorConfig(flush_interval=1.0))
    aggregator.ingest(b"a b:1|c\na_b:2|c")
    lines = lines_of(format_snapshot(aggregator.flush(T0), GraphiteConfig(key_name_sanitize=False)))
    assert [v for n, v, _ in lines if n == "stats_counts.a_b"] == ["3"]


def test_colliding_gauges_take_the_latest_update():
    aggregator = Aggregator(AggregatorConfig(flush_interval=1.0))
    collect = Collect()
    sink = GraphiteSink(collect, GraphiteConfig())
    values = []
    for i, packet in enumerate([b"g a:1|g\ng_a:5|g", b"g a:7|g", b"", b"g_a:5|g", b"g_a:6|g",
                                b"statsd.timestamp lag:100|g"]):
        if packet:
            aggregator.ingest(packet)
        sink.flush(aggregator.flush(T0 + i))
        got = {n: v for n, v, _ in collect.batches[-1]}
        values.append(got["stats.gauges.g_a"])
    assert values[:3] == ["5", "7", "7"]  # the one that changed wins, then the value stays
    assert values[3] == "7"  # documented limit: re-setting g_a to its own value goes unnoticed
    assert values[4] == "6"
    # the daemon sets its lag at flush time, after every update, in etsy too
    assert got["stats.gauges.statsd.timestamp_lag"] == "0"
    # without a history (a bare format_snapshot) the later-seen raw series wins
    bare = {n: v for n, v, _ in lines_of(format_snapshot(aggregator.flush(T0 + 6), GraphiteConfig()))}
    assert bare["stats.gauges.g_a"] == "6"
