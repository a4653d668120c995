"""Series store + collector, fed by the daemon's real parser and aggregator.

Each test sends statsd text through ``Aggregator.ingest``/``flush`` (the same path the
daemon and the standalone bridge use), applies the snapshot, renders the exposition
with prometheus_client and parses it back.
"""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from django_statsd_push.bridge.collector import BridgeCollector
from django_statsd_push.bridge.mapping import Mapper, parse_mapping
from django_statsd_push.bridge.store import SeriesStore
from django_statsd_push.server.aggregate import Aggregator, AggregatorConfig
from django_statsd_push.server.protocol import ETSY, EXPORTER, Rules


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Bridge:
    """A store, its collector and an aggregator: feed text, read samples back."""

    def __init__(self, mapping: str = "", *, idle_repeats: bool = True, rules: Rules = ETSY, **store_options) -> None:
        self.clock = Clock()
        mapper = parse_mapping(mapping) if mapping else Mapper([])
        self.store = SeriesStore(mapper, clock=self.clock, idle_repeats=idle_repeats, **store_options)
        self.collector = BridgeCollector(self.store)
        self.aggregator = Aggregator(AggregatorConfig(flush_interval=1.0, delete_idle_stats=not idle_repeats,
                                                      rules=rules))

    def feed(self, *datagrams: str, advance: float = 1.0) -> None:
        for datagram in datagrams:
            self.aggregator.ingest(datagram.encode())
        self.clock.now += advance
        self.store.apply(self.aggregator.flush(self.clock.now))

    def text(self) -> str:
        return self.collector.render().decode()

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        out = {}
        for family in text_string_to_metric_families(self.text()):
            for sample in family.samples:
                out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
        return out

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples().get((name, tuple(sorted(labels.items()))))

    def own(self, name: str, **labels: str) -> float:
        value = self.value(f"statsd_push_bridge_{name}_total", **labels)
        if value is None:
            value = self.value("statsd_push_bridge_" + name, **labels)  # a gauge
        assert value is not None, name
        return value

    def types(self) -> dict[str, str]:
        return {f.name: f.type for f in text_string_to_metric_families(self.text())}


def test_counter_accumulates_with_sample_rate() -> None:
    bridge = Bridge()
    bridge.feed("hits:1|c\nhits:1|c|@0.1")
    assert bridge.value("hits_total") == 11.0
    bridge.feed("hits:2|c")
    assert bridge.value("hits_total") == 13.0  # cumulative across flushes, as Prometheus wants
    assert bridge.types()["hits"] == "counter"
    assert bridge.own("lines") == 3.0


def test_gauge_absolute_and_relative() -> None:
    bridge = Bridge()
    bridge.feed("temp:10|g\ntemp:+5|g\ntemp:-2|g")
    assert bridge.value("temp") == 13.0
    bridge.feed("temp:-3|g")
    assert bridge.value("temp") == 10.0
    assert bridge.types()["temp"] == "gauge"


@pytest.mark.parametrize("idle_repeats", [True, False])
def test_relative_gauge_keeps_its_base_across_flushes(idle_repeats: bool) -> None:
    """``g:333|g``, a flush, then ``g:+4|g`` is 337 (statsd_exporter, serve), also when
    the daemon deleted the idle gauge in between (the standalone bridge does)."""
    bridge = Bridge(idle_repeats=idle_repeats, rules=EXPORTER)
    bridge.feed("g:333|g")
    bridge.feed("g:+4|g")
    assert bridge.value("g") == 337.0
    bridge.feed()  # idle
    bridge.feed("g:-7|g\ng:+1|g")
    assert bridge.value("g") == 331.0
    bridge.feed("g:5|g")
    bridge.feed("g:+1|g")
    assert bridge.value("g") == 6.0
    bridge.feed("new:+3|g")  # a first delta starts from 0
    assert bridge.value("new") == 3.0


def test_gauge_kept_relative_over_several_idle_flushes() -> None:
    """gaugesMaxTTL > 1: the daemon keeps a delta-born gauge for a while; its idle
    repeats change nothing, and a later delta still adds to the bridge's value."""
    bridge = Bridge(idle_repeats=False, rules=EXPORTER)
    bridge.aggregator.config.gauges_max_ttl = 3
    bridge.feed("g:100|g")
    bridge.feed()
    bridge.feed()
    bridge.feed()  # deleted in the daemon now
    bridge.feed("g:+1|g")
    bridge.feed()
    bridge.feed("g:+1|g")
    assert bridge.value("g") == 102.0


def test_first_type_seen_in_a_flush_keeps_the_name() -> None:
    """statsd_exporter keeps the type it saw first; the snapshot's tables are read
    type by type, so the store creates new series in arrival order."""
    bridge = Bridge(rules=EXPORTER)
    bridge.feed("x:5|g\nx:1|c")
    assert bridge.types()["x"] == "gauge"
    assert bridge.value("x") == 5.0
    assert bridge.own("conflicts", kind="type") == 1.0
    other = Bridge(rules=EXPORTER)
    other.feed("y:1|c\ny:5|g\nz:1|ms\nz:1|c")
    assert other.types()["y"] == "counter"
    assert other.types()["z"] == "histogram"


def test_zero_counter_creates_its_series() -> None:
    for idle_repeats in (True, False):
        bridge = Bridge(idle_repeats=idle_repeats, rules=EXPORTER)
        bridge.feed("raw.zero:0|c")
        assert bridge.value("raw_zero_total") == 0.0


def test_parse_problems_are_counted_by_reason() -> None:
    bridge = Bridge(rules=EXPORTER)
    bridge.feed("a:1|c|@bar\nb:x|c\nc:1:2|c\nd:1|zz\n_sc||9\n_e{0,1}:|x")
    assert bridge.own("sample_errors", reason="invalid_sample_factor") == 1.0
    assert bridge.own("sample_errors", reason="malformed_value") == 1.0
    assert bridge.own("sample_errors", reason="invalid_extended_aggregate_type") == 1.0
    assert bridge.own("sample_errors", reason="illegal_event") == 1.0
    assert bridge.own("sample_errors", reason="malformed_service_check") == 1.0
    assert bridge.own("sample_errors", reason="malformed_event") == 1.0
    assert bridge.own("bad_lines") == 5.0  # the @bar value was used
    assert bridge.value("a_total") == 1.0


def test_dogstatsd_fields_and_service_checks() -> None:
    bridge = Bridge(rules=EXPORTER)
    bridge.feed("foo:42|c|T1656581400\nlat:0.5:120:3|ms|#env:prod|c:abc|card:high|e:it-false\n"
                "_sc|db.up|2|#env:prod|m:down\n_e{11,12}:Deploy done|v1.2 shipped|t:info|#env:prod")
    assert bridge.value("foo_total") == 42.0
    assert bridge.value("lat_count", env="prod") == 3.0
    assert bridge.value("lat_sum", env="prod") == pytest.approx(0.1235)
    assert bridge.value("service_check_db_up", env="prod") == 2.0
    assert bridge.own("bad_lines") == 0.0
    assert bridge.own("daemon_events", event="events_received") == 1.0
    assert bridge.own("daemon_events", event="service_checks_received") == 1.0


def test_timer_becomes_histogram_in_seconds() -> None:
    bridge = Bridge()
    bridge.feed("rt:3|ms\nrt:7|ms\nrt:120|ms\nrt:20000|ms")
    assert bridge.types()["rt"] == "histogram"
    assert bridge.value("rt_bucket", le="0.005") == 1.0
    assert bridge.value("rt_bucket", le="0.01") == 2.0
    assert bridge.value("rt_bucket", le="0.25") == 3.0
    assert bridge.value("rt_bucket", le="10.0") == 3.0
    assert bridge.value("rt_bucket", le="+Inf") == 4.0
    assert bridge.value("rt_count") == 4.0
    assert bridge.value("rt_sum") == pytest.approx(20.130)


def test_timer_sample_rate_weights_the_histogram() -> None:
    bridge = Bridge()
    bridge.feed("rt:4|ms|@0.5\nrt:4|ms|@0.5")
    assert bridge.value("rt_count") == 4.0
    assert bridge.value("rt_bucket", le="0.005") == 4.0
    assert bridge.value("rt_sum") == pytest.approx(0.016)


def test_timer_mapped_to_summary_with_quantiles_and_scale() -> None:
    bridge = Bridge(
        "mappings:\n- match: q.*\n  name: q_seconds\n  observer_type: summary\n"
        "  summary_options:\n    quantiles: [{quantile: 0.5, error: 0.01}, {quantile: 0.9, error: 0.01}]\n"
        "- match: n.*\n  name: n_items\n  scale: 1000\n  histogram_options: {buckets: [1, 10]}\n"
    )
    bridge.feed("".join(f"q.a:{v}|ms\n" for v in range(1, 11)) + "n.a:5|ms\nn.a:50|ms")
    assert bridge.types()["q_seconds"] == "summary"
    assert bridge.value("q_seconds", quantile="0.5") == pytest.approx(0.005)
    assert bridge.value("q_seconds", quantile="0.9") == pytest.approx(0.009)
    assert bridge.value("q_seconds_count") == 10.0
    assert bridge.value("q_seconds_sum") == pytest.approx(0.055)
    # scale 1000 undoes ms -> s: a timer carrying counts keeps its unit
    assert bridge.value("n_items_bucket", le="10.0") == 1.0
    assert bridge.value("n_items_sum") == pytest.approx(55.0)


def test_set_is_a_gauge_of_unique_values_per_window() -> None:
    bridge = Bridge()
    bridge.feed("users:a|s\nusers:b|s\nusers:a|s")
    assert bridge.value("users") == 2.0
    bridge.feed("users:c|s")
    assert bridge.value("users") == 1.0
    bridge.feed()
    assert bridge.value("users") == 0.0  # a window without values counts none


def test_all_tag_styles_become_labels() -> None:
    bridge = Bridge()
    bridge.feed(
        "dog:1|c|#env:prod,region:eu\n"
        "influx,env=prod,region=us:1|c\n"
        "librato#env=dev:1|c\n"
        "sfx[env=qa].requests:1|c\n"
    )
    assert bridge.value("dog_total", env="prod", region="eu") == 1.0
    assert bridge.value("influx_total", env="prod", region="us") == 1.0
    assert bridge.value("librato_total", env="dev") == 1.0
    assert bridge.value("sfx_requests_total", env="qa") == 1.0


def test_mixed_tag_styles_and_bad_tags_are_counted() -> None:
    bridge = Bridge()
    bridge.feed("mixed,env=a:1|c|#region:b\nok:1|c|#novalue,env:x")
    assert bridge.value("mixed_total", env="a") is None
    assert bridge.own("dropped", reason="mixed_tag_styles") == 1.0
    assert bridge.value("ok_total", env="x") == 1.0
    assert bridge.own("tag_errors") == 1.0


def test_mapping_labels_override_tags_unless_honor_labels() -> None:
    bridge = Bridge(
        "mappings:\n- match: a.*\n  name: a\n  labels: {env: fixed, k: $1}\n"
        "- match: b.*\n  name: b\n  honor_labels: true\n  labels: {env: fixed, k: $1}\n"
    )
    bridge.feed("a.x:1|g|#env:tag\nb.x:1|g|#env:tag\nb.y:2|g")
    assert bridge.value("a", env="fixed", k="x") == 1.0
    assert bridge.value("b", env="tag", k="x") == 1.0
    assert bridge.value("b", env="fixed", k="y") == 2.0


def test_type_conflict_is_counted_and_dropped() -> None:
    bridge = Bridge()
    bridge.feed("thing:1|g")
    bridge.feed("thing:1|ms")
    assert bridge.types()["thing"] == "gauge"
    assert bridge.own("conflicts", kind="type") == 1.0


def test_label_set_conflict_is_counted_and_dropped() -> None:
    bridge = Bridge()
    bridge.feed("req:1|c|#code:200")
    bridge.feed("req:1|c|#code:200,path:/x")
    assert bridge.value("req_total", code="200") == 1.0
    assert bridge.value("req_total", code="200", path="/x") is None
    assert bridge.own("conflicts", kind="labels") == 1.0


def test_exposed_name_collision_is_a_conflict() -> None:
    bridge = Bridge()
    bridge.feed("lat:5|ms")
    bridge.feed("lat_count:1|g")  # would collide with the histogram's lat_count line
    assert bridge.value("lat_count") == 1.0  # the histogram's count, not the gauge
    assert bridge.own("conflicts", kind="name") == 1.0


def test_negative_counter_is_dropped() -> None:
    bridge = Bridge()
    bridge.feed("c:5|c\nneg:-1|c")
    bridge.feed("c:-2|c")
    assert bridge.value("c_total") == 5.0
    assert bridge.value("neg_total") is None  # not even created at zero
    assert bridge.own("dropped", reason="negative_counter") == 2.0


def test_mapping_drop_action_is_counted() -> None:
    bridge = Bridge("mappings:\n- match: noisy.*\n  action: drop\n  name: dropped\n")
    bridge.feed("noisy.a:1|c\nkept:1|c")
    assert not any(name.startswith("noisy") for name, _ in bridge.samples())
    assert bridge.own("dropped", reason="mapping_drop") == 1.0


def test_max_series_limit_drops_and_counts() -> None:
    bridge = Bridge(max_series=5)
    bridge.feed("".join(f"flood.n{i}:1|c\n" for i in range(50)))
    assert bridge.own("series") == 5.0
    assert bridge.own("dropped", reason="series_limit") == 45.0


def test_ttl_expires_series_and_idle_repeats_do_not_revive_them() -> None:
    bridge = Bridge("mappings:\n- match: short.*\n  name: short_${1}\n  ttl: 10s\n")
    bridge.feed("short.a:1|c\nshort.b:1|g\nlong:1|c")
    for _ in range(5):
        bridge.feed(advance=3.0)  # the aggregator keeps reporting zero counters and the gauge
    assert bridge.value("short_a_total") is None
    assert bridge.value("short_b") is None
    assert bridge.value("long_total") == 1.0  # no ttl: kept
    assert bridge.own("expired_series") == 2.0
    bridge.feed("short.a:4|c")
    assert bridge.value("short_a_total") == 4.0  # a real update brings it back, fresh


def test_ttl_with_idle_deleting_producer_keeps_repeated_gauges_alive() -> None:
    bridge = Bridge("defaults:\n  ttl: 5s\n", idle_repeats=False)
    for _ in range(4):
        bridge.feed("level:7|g", advance=3.0)  # same value, but each one a real update
    assert bridge.value("level") == 7.0


def test_label_values_are_escaped_in_the_exposition() -> None:
    bridge = Bridge()
    bridge.feed('odd:1|c|#path:a"b\\c')
    assert bridge.value("odd_total", path='a"b\\c') == 1.0


def test_nan_and_huge_values_render() -> None:
    bridge = Bridge()
    bridge.feed("g:1e300|g")
    assert bridge.value("g") == 1e300
    assert not math.isnan(bridge.own("flush_duration_seconds"))


def test_render_is_reused_until_the_next_flush() -> None:
    bridge = Bridge()
    bridge.feed("a:1|c")
    first = bridge.collector.render()
    assert bridge.collector.render() is first
    bridge.feed("a:1|c")
    assert bridge.collector.render() is not first


def test_own_prefix_is_not_exported_as_user_series() -> None:
    bridge = Bridge()
    bridge.feed("x:1|c", "bad line without type")
    names = {name for name, _ in bridge.samples()}
    assert not any(name.startswith("statsd_") and not name.startswith("statsd_push_bridge_") for name in names)
    assert bridge.own("bad_lines") == 1.0
    assert bridge.own("packets") == 2.0


def test_daemon_counters_beyond_lines_are_exported() -> None:
    bridge = Bridge()
    bridge.aggregator.count("udp_kernel_drops", 3)
    bridge.feed("x:1|c")
    assert bridge.own("daemon_events", event="udp_kernel_drops") == 3.0
    assert bridge.value("statsd_push_bridge_daemon_events_total", event="metrics_received") is None


def test_labels_that_would_break_the_page_drop_the_sample() -> None:
    bridge = Bridge()
    bridge.feed("t:5|ms|#le:x\nq:1|c|#__name__:evil\nok:1|c|#le:fine")
    assert bridge.own("dropped", reason="reserved_label") == 2.0
    assert bridge.value("ok_total", le="fine") == 1.0  # "le" is only reserved on histograms


def test_a_statsd_name_cannot_take_the_bridges_own_names() -> None:
    bridge = Bridge()
    bridge.feed("statsd_push_bridge_series:5|g")
    assert bridge.own("series") == 0.0
    assert bridge.own("conflicts", kind="name") == 1.0


def test_dogstatsd_histograms_and_distributions_are_observations() -> None:
    """statsd_exporter observes h/d in their own unit; a timer of the same name shares it."""
    bridge = Bridge(rules=EXPORTER)
    bridge.feed("size:0.5:3|h\nlat:250|ms\nlat:0.1|h")
    bridge.feed("size:2|d|@0.5")
    assert bridge.types()["size"] == "histogram"
    assert bridge.value("size_count") == 4.0
    assert bridge.value("size_sum") == pytest.approx(7.5)
    assert bridge.value("size_bucket", le="0.5") == 1.0
    assert bridge.value("lat_count") == 2.0
    assert bridge.value("lat_sum") == pytest.approx(0.35)
    etsy = Bridge()  # serve's reading: counters, as etsy statsd
    etsy.feed("size:5|h")
    assert etsy.value("size_total") == 5.0
