"""The one parser: etsy statsd 0.9's line rules, raw names, tags kept apart."""

from __future__ import annotations

import json
import math
import socket

import pytest
import statsd

from django_statsd_push.server.js import js_number
from django_statsd_push.server.protocol import (
    ETSY, EXPORTER, Event, Rules, Sample, ServiceCheck, parse,
)

from .etsy_lines import FIXTURES


def fixture_packets() -> list[bytes]:
    return [p.encode("latin-1") for p in json.loads((FIXTURES / "packets.json").read_text())]


def test_fixture_counts_lines_and_bad_lines_like_etsy():
    totals = [parse(p) for p in fixture_packets()]
    assert sum(t.lines for t in totals) == 36
    assert sum(t.bad_lines for t in totals) == 6


def test_several_lines_and_several_values_per_line():
    parsed = parse(b"a:1|c:2|ms\nb:3|g\n\nc:x|s")
    assert parsed.lines == 3
    assert parsed.bad_lines == 0
    assert parsed.samples == [
        Sample("a", (), 1.0, "c"),
        Sample("a", (), 2.0, "ms"),
        Sample("b", (), 3.0, "g"),
        Sample("c", (), "x", "s"),
    ]


def test_raw_names_and_dogstatsd_tags_are_kept_separately():
    (sample,) = parse(b"my metric/x$:1|c|@0.5|#env:prod,region:eu").samples
    assert sample.name == "my metric/x$"
    assert sample.tags == ("env:prod", "region:eu")
    assert sample.rate == 0.5
    (untagged,) = parse(b"a:1|c|#").samples
    assert untagged.tags == ()


@pytest.mark.parametrize(
    "line",
    [
        "nocolon",  # value defaults to 1 without a type
        "a:abc|c",
        "a:|c",
        "a:1|c|@x",
        "a:1|c|@-0.5",
        "a:1|c|@0",  # etsy divides by zero
        "a:1|c|@+0.5",  # etsy crashes its process
        "a:-3|ms",
        "a:xyz|g",
        "a:1_000|c",  # Python float() accepts it, JavaScript Number() does not
        "a:nan|c",
        "a:inf|c",
        "a:Infinity|c",  # etsy writes Infinity to Carbon; we refuse it
        "a:1e999|c",
    ],
)
def test_bad_values_are_counted_and_skipped(line):
    parsed = parse(line.encode())
    assert (parsed.lines, parsed.bad_lines, parsed.samples) == (1, 1, [])


def test_types_rates_and_gauge_deltas():
    samples = parse(b"c:2|c|@0.1\nh:5|h\nu:7|zz\ng:+4|g\ng:-4|g\ng:4|g\nt:0x10|ms|@1e-3").samples
    assert [(s.type, s.kind) for s in samples[:3]] == [("c", "c"), ("h", "c"), ("zz", "c")]
    assert samples[0].rate == 0.1
    assert [s.delta for s in samples[3:6]] == [True, True, False]
    # etsy reads the rate with /^@([\d.]+)/, so "@1e-3" means 1; Number("0x10") is 16.
    assert samples[6] == Sample("t", (), 16.0, "ms", 1.0)


def test_empty_set_member_is_zero_like_etsy():
    assert parse(b"s:|s").samples == [Sample("s", (), "0", "s")]


def test_js_number():
    assert js_number(" 12 ") == 12
    assert js_number("  ") == 0
    assert js_number(".5") == 0.5
    assert js_number("5.") == 5
    assert js_number("0b101") == 5
    assert js_number("-Infinity") == -math.inf
    assert js_number("1.2.3") is None
    assert js_number("infinity") is None


def test_undecodable_bytes_do_not_raise():
    parsed = parse(b"caf\xe9:1|c\n\xff\xfe")
    assert parsed.lines == 2
    assert parsed.samples[0].name == "caf\ufffd"


def test_round_trip_with_the_client_formatter():
    """pystatsd formats, we parse: the two ends of the wire format agree."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        client = statsd.StatsClient("127.0.0.1", server.getsockname()[1], prefix="app")
        try:
            client.incr("hits", 3, rate=1)
            client.timing("view", 12.5)
            client.gauge("depth", -2, delta=True)
            client.set("users", "alice")
            received = [parse(server.recv(65536)).samples[0] for _ in range(4)]
        finally:
            client.close()
    assert received == [
        Sample("app.hits", (), 3.0, "c"),
        Sample("app.view", (), 12.5, "ms"),
        Sample("app.depth", (), -2.0, "g", delta=True),
        Sample("app.users", (), "alice", "s"),
    ]


CORPUS = [
    "c:1|c", "c:2.5|c", "c:1_0|c", "c:nan|c", "c:inf|c", "c:Infinity|c", "c: 3 |c", "c:0x10|c", "c:|c",
    "c:1|c|@0.5", "c:1|c:2|c", "c:1:2|c", "c|#t:1|c", "c:1|c|#t:v", "c:1|C", "c:1|c ", "c:1e3|c", "c:-1|c",
    "t:1|ms", "t:-1|ms", "t:-0|ms", "t:1_0|ms", "t:abc|ms", "t:1|ms|@0.1", "t:5.5|ms", "t: 2|ms",
    "g:5|g", "g:+3|g", "g:-2|g", "g: +3|g", "g:1_0|g", "g:+|g", "g:x|g", "g:-0|g",
    "s:a|s", "s:|s", "s:a:b|s", "s:a|s|@0.5", "s:1|s",
    "h:3|h", "u:1|zz", "nocolon", "x:1", ":1|c", "",
    # DogStatsD: fields after the type, packing, events, service checks
    "c:1|c|T1656581400", "c:1|c|c:abc", "c:1|c|card:high|e:x", "c:1|c|#t:v|c:abc|T1", "c:1|c|c:",
    "t:1:2:3|ms", "t:1:2|ms|@0.5|#t:v", "g:1:2|g", "c:1::2|c", "c:1|c|x", "c:1|c|",
    "g:+3|g|T1", "s:a|s|c:abc", "c:1|c|@0.5:2|ms", "c:-5|ms", "c: 3|c",
    "_e{5,4}:title|text|t:info|#env:prod", "_e{5,40}:title|text", "_sc|check|0|#env:prod", "_sc|check|7",
    "_e{1,1}:a|c", "_sc|c|1",
]


@pytest.mark.parametrize("rules", [ETSY, EXPORTER], ids=["etsy", "exporter"])
def test_hot_path_and_parser_agree(rules: Rules):
    """Aggregator.ingest's shortcut == parse() + add(), line by line, under both rules."""
    from django_statsd_push.server.aggregate import Aggregator, AggregatorConfig

    prime = b"c:0|c\nt:0|ms\ng:0|g\ns:z|s\nh:0|h\nu:0|zz\nx:0|c"
    fast, slow = Aggregator(AggregatorConfig(rules=rules)), Aggregator(AggregatorConfig(rules=rules))
    fast.ingest(prime)
    for sample in parse(prime, rules).records:
        slow.add(sample)
    fast_bad = slow_bad = 0
    for line in CORPUS:
        before = fast.bad
        fast.ingest(line.encode())
        fast_bad += fast.bad - before
        parsed = parse(line.encode(), rules)
        slow_bad += parsed.bad_lines
        for record in parsed.records:
            slow.add(record)
        assert (fast.counters, fast.timers, fast.gauges, fast.sets, fast.rejections, fast.events) == \
               (slow.counters, slow.timers, slow.gauges, slow.sets, slow.rejections, slow.events), line
    assert fast_bad == slow_bad
    # Several lines per datagram, in order: a tag anywhere sends the whole datagram the
    # slow way, so the untagged lines go alone too, twice (the second time from the
    # counter lines the hot path remembers).
    untagged = [line for line in CORPUS if "|#" not in line]
    lines_before = fast.lines
    for datagram in (CORPUS, untagged, untagged):
        fast.ingest("\n".join(datagram) + "\n")
        for line in datagram:
            for record in parse(line.encode(), rules).records:
                slow.add(record)
        assert (fast.counters, fast.timer_counts, fast.gauges, fast.sets, fast.rejections, fast.events) == \
               (slow.counters, slow.timer_counts, slow.gauges, slow.sets, slow.rejections, slow.events)
    assert fast.lines - lines_before == sum(parse(line, rules).lines for line in CORPUS + 2 * untagged)


def test_digits_of_other_scripts_are_not_numbers_as_in_javascript():
    parsed = parse("a:\u0661\u0662|c\nb:\u00a012\u00a0|c".encode())
    assert parsed.bad_lines == 1
    assert parsed.samples == [Sample("b", (), 12.0, "c")]  # Unicode spaces are trimmed, as by Number()


def test_dogstatsd_fields_in_any_order_are_not_glued_into_tags():
    """The agent's fields after the type: none ends up inside a tag value."""
    for rules in (ETSY, EXPORTER):
        parsed = parse(b"a:1|c|#tag1:value|c:container123|T1656581400|card:low\n"
                       b"b:2|c|T1656581400|@0.5|e:it-true|#x:y", rules)
        assert parsed.samples == [Sample("a", ("tag1:value",), 1.0, "c"), Sample("b", ("x:y",), 2.0, "c", 0.5)]
        assert parsed.bad_lines == 0
    kept = parse(b"a:1|c|#t:v|c:abc|card:high", Rules(origin_tags=True)).samples
    assert kept == [Sample("a", ("t:v", "container_id:abc", "cardinality:high"), 1.0, "c")]


def test_packed_values_are_one_sample_each():
    parsed = parse(b"t:0.5:120:3|ms|@0.5|#env:prod\nd:1:2|d\nc:1:x:3|c")
    assert [(s.name, s.value, s.rate, s.tags) for s in parsed.samples] == [
        ("t", 0.5, 0.5, ("env:prod",)), ("t", 120.0, 0.5, ("env:prod",)), ("t", 3.0, 0.5, ("env:prod",)),
        ("d", 1.0, 1.0, ()), ("d", 2.0, 1.0, ()), ("c", 1.0, 1.0, ()), ("c", 3.0, 1.0, ()),
    ]
    assert (parsed.lines, parsed.bad_lines, parsed.rejected) == (3, 1, {"malformed_value": 1})


def test_etsy_readings_kept_where_etsy_and_statsd_exporter_differ():
    """serve follows etsy on classic lines; the bridge follows statsd_exporter."""
    line = b"a:1|c|@x\nb:1|c|@0\nt:-1|ms\nu:1|zz\nv:0x10|c\ns:a:b|s\n:1|c"
    etsy, exporter = parse(line), parse(line, EXPORTER)
    assert [(s.name, s.value, s.rate) for s in etsy.samples] == [("u", 1.0, 1.0), ("v", 16.0, 1.0), ("s", "b", 1.0),
                                                                 ("", 1.0, 1.0)]
    assert etsy.bad_lines == 4
    assert [(s.name, s.value, s.rate) for s in exporter.samples] == [("a", 1.0, 1.0), ("b", 1.0, 1.0),
                                                                     ("t", -1.0, 1.0)]
    assert exporter.rejected == {"invalid_sample_factor": 1, "illegal_event": 1, "malformed_value": 1,
                                 "invalid_extended_aggregate_type": 1, "malformed_line": 1}


def test_invalid_utf8_is_replaced_for_etsy_and_refused_for_the_bridge():
    data = b"caf\xe9:1|c\nok:1|c"
    assert parse(data).samples[0].name == "caf\ufffd"
    refused = parse(data, EXPORTER)
    assert [s.name for s in refused.samples] == ["ok"]
    assert (refused.lines, refused.bad_lines, refused.rejected) == (2, 1, {"invalid_utf8": 1})


def test_events_as_the_agent_reads_them():
    parsed = parse("_e{11,12}:Deploy done|v1.2 shipped|t:info|#env:prod\n"
                   "_e{6,10}:héllo|line\\nnext|d:1700000000|h:web1|k:agg|p:low|s:ci|t:bogus|c:abc\n"
                   "_e{0,1}:|x\n_e{5,50}:short|text\n_e{x,1}:a|b".encode())
    assert parsed.events == [
        Event("Deploy done", "v1.2 shipped", ("env:prod",), alert_type="info"),
        Event("héllo", "line\nnext", (), 1700000000, "web1", "agg", "low", "ci", "info"),  # title length in bytes
    ]
    assert (parsed.lines, parsed.bad_lines, parsed.rejected) == (5, 3, {"malformed_event": 3})


def test_service_checks_become_gauges():
    parsed = parse(b"_sc|db.up|2|#env:prod|m:connection refused|h:web1\n_sc|x|5\n_sc||0\n_sc|y")
    assert parsed.service_checks == [ServiceCheck("db.up", 2.0, ("env:prod",), None, "web1", "connection refused")]
    assert parsed.service_checks[0].gauge() == Sample("service_check.db.up", ("env:prod",), 2.0, "g")
    assert (parsed.bad_lines, parsed.rejected) == (3, {"malformed_service_check": 3})


def test_events_per_flush_are_bounded_and_handed_over_once():
    from django_statsd_push.server.aggregate import Aggregator, AggregatorConfig

    aggregator = Aggregator(AggregatorConfig(max_events=2))
    aggregator.ingest(b"_e{1,1}:a|x\n_e{1,1}:b|y\n_e{1,1}:c|z")
    snapshot = aggregator.flush(1000.0)
    assert [e.title for e in snapshot.events] == ["a", "b"]
    assert snapshot.counters[("statsd.events_received", ())] == 3
    assert snapshot.counters[("statsd.events_dropped", ())] == 1
    assert aggregator.flush(1001.0).events == ()
