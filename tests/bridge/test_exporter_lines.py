"""statsd_exporter's own line tests as data: the bridge reads each line as it does.

Cases are those of ``pkg/line/line_test.go`` (``TestLineToEvents``, all four tag styles
on) in prometheus/statsd_exporter, written here as data: a line, and the events
statsd_exporter's ``LineToEvents`` makes of it (counter value after the sample rate,
gauge value and whether it is relative, observations in its units: ``ms`` / 1000,
``h``/``d`` as they are, one per ``1/rate``), or the reason it counts when it makes
none. Where its test leaves a case without expectations, the expectation is what its
``line.go`` does. Ours: ``protocol.parse`` with the bridge's rules, then the labels the
store reads from the name and the DogStatsD tags (``bridge.tags.split_tags``).
``origin_tags`` is on, because statsd_exporter keeps ``|c:`` as the label
``container_id`` (the bridge's default drops it; see docs/bridge.rst).
"""

from __future__ import annotations

import pytest

from django_statsd_push.bridge.tags import split_tags
from django_statsd_push.server.protocol import Rules, parse

RULES = Rules(exporter=True, origin_tags=True)


def C(name: str, value: float, **labels: str) -> tuple:  # noqa: N802 - reads like the Go table
    return ("counter", name, value, False, labels)


def G(name: str, value: float, relative: bool = False, **labels: str) -> tuple:  # noqa: N802
    return ("gauge", name, value, relative, labels)


def O(name: str, value: float, **labels: str) -> tuple:  # noqa: N802, E743
    return ("observer", name, value, False, labels)


TAGS = {"tag1": "bar", "tag2": "baz"}
AGG = (0.5, 120, 3000, 10, 20000, 0.01)

# line -> events, or line -> {reason: count} when statsd_exporter makes no event
CASES: dict[str, tuple[bytes, list | dict]] = {
    "simple counter": (b"foo:2|c", [C("foo", 2)]),
    "simple gauge": (b"foo:3|g", [G("foo", 3)]),
    "gauge with sampling": (b"foo:3|g|@0.2", [G("foo", 3)]),
    "gauge decrement": (b"foo:-10|g", [G("foo", -10, True)]),
    "simple timer": (b"foo:200|ms", [O("foo", 0.2)]),
    "simple histogram": (b"foo:200|h", [O("foo", 200)]),
    "simple distribution": (b"foo:200|d", [O("foo", 200)]),
    "distribution with sampling": (b"foo:0.01|d|@0.2|#tag1:bar,#tag2:baz", [O("foo", 0.01, **TAGS)] * 5),
    "librato tag extension": (b"foo#tag1=bar,tag2=baz:100|c", [C("foo", 100, **TAGS)]),
    "librato tag keys unsupported by prometheus": (
        b"foo#09digits=0,tag.with.dots=1:100|c", [C("foo", 100, _09digits="0", tag_with_dots="1")]),
    "influxdb tag extension": (b"foo,tag1=bar,tag2=baz:100|c", [C("foo", 100, **TAGS)]),
    "SignalFx tag extension": (b"foo.[tag1=bar,tag2=baz]test:100|c", [C("foo.test", 100, **TAGS)]),
    "SignalFx tags at end of name": (b"foo.test[tag1=bar,tag2=baz]:100|c", [C("foo.test", 100, **TAGS)]),
    "SignalFx tags at beginning of name": (b"[tag1=bar,tag2=baz]foo.test:100|c", [C("foo.test", 100, **TAGS)]),
    "SignalFx no tags": (b"foo.[]test:100|c", [C("foo.test", 100)]),
    "SignalFx non-kv tags": (b"foo.[tag1,tag2]test:100|c", [C("foo.test", 100)]),
    "SignalFx missing closing bracket": (
        b"[tag1=bar,tag2=bazfoo.test:100|c", [C("[tag1=bar,tag2=bazfoo.test", 100)]),
    "SignalFx missing opening bracket": (
        b"tag1=bar,tag2=baz]foo.test:100|c", [C("tag1=bar,tag2=baz]foo.test", 100)]),
    "influxdb tag keys unsupported by prometheus": (
        b"foo,09digits=0,tag.with.dots=1:100|c", [C("foo", 100, _09digits="0", tag_with_dots="1")]),
    "datadog tag extension": (b"foo:100|c|#tag1:bar,tag2:baz", [C("foo", 100, **TAGS)]),
    "datadog # in all keys (php client)": (b"foo:100|c|#tag1:bar,#tag2:baz", [C("foo", 100, **TAGS)]),
    "datadog tag keys unsupported by prometheus": (
        b"foo:100|c|#09digits:0,tag.with.dots:1", [C("foo", 100, _09digits="0", tag_with_dots="1")]),
    "datadog valueless tags: ignored": (b"foo:100|c|#tag_without_a_value", [C("foo", 100)]),
    "datadog valueless tags (edge case)": (
        b"foo:100|c|#tag_without_a_value,tag:value", [C("foo", 100, tag="value")]),
    "datadog empty tags (edge case)": (b"foo:100|c|#tag:value,,", [C("foo", 100, tag="value")]),
    "datadog tag extension with sampling": (b"foo:100|c|@0.1|#tag1:bar,#tag2:baz", [C("foo", 1000, **TAGS)]),
    "librato/dogstatsd mixed tag styles": (b"foo#tag1=foo,tag3=bing:100|c|#tag1:bar,#tag2:baz", []),
    "signalfx/dogstatsd mixed tag styles": (b"foo[tag1=foo,tag3=bing]:100|c|#tag1:bar,#tag2:baz", []),
    "influxdb/dogstatsd mixed tag styles": (b"foo,tag1=foo,tag3=bing:100|c|#tag1:bar,#tag2:baz", []),
    "mixed tag styles with sampling": (b"foo#tag1=foo,tag3=bing:100|c|@0.1|#tag1:bar,#tag2:baz", []),
    "histogram with sampling": (b"foo:0.01|h|@0.2|#tag1:bar,#tag2:baz", [O("foo", 0.01, **TAGS)] * 5),
    "datadog tag with multiple colons": (b"foo:100|c|@0.1|#tag1:foo:bar", [C("foo", 1000, tag1="foo:bar")]),
    "datadog invalid utf8 tag values": (b"foo:100|c|@0.1|#tag:\xc3\x28invalid", {"invalid_utf8": 1}),
    "datadog valid and invalid utf8 tag values": (
        b"foo:100|c|@0.1|#tag1:valid,tag2:\xc3\x28invalid", {"invalid_utf8": 1}),
    "datadog timings, extended aggregation": (
        b"foo_timing:0.5:120:3000:10:20000:0.01|ms|#tag1:bar,tag2:baz",
        [O("foo_timing", v / 1000, **TAGS) for v in AGG]),
    "datadog timings, extended aggregation, no tags": (
        b"foo_timing:0.5:120:3000:10:20000:0.01|ms", [O("foo_timing", v / 1000) for v in AGG]),
    "datadog timings, extended aggregation and sampling": (
        b"foo_timing:0.5:120:3000:10:20000:0.01|ms|@0.5", [O("foo_timing", v / 1000) for v in AGG for _ in "xx"]),
    "datadog timings, extended aggregation, sampling, tags": (
        b"foo_timing:0.5:120:3000:10:20000:0.01|ms|@0.5|#tag1:bar,tag2:baz",
        [O("foo_timing", v / 1000, **TAGS) for v in AGG for _ in "xx"]),
    "datadog histogram, extended aggregation, tags": (
        b"foo_histogram:0.5:120:3000:10:20000:0.01|h|#tag1:bar,tag2:baz", [O("foo_histogram", v, **TAGS) for v in AGG]),
    "datadog distribution, extended aggregation": (
        b"foo_distribution:0.5:120:3000:10:20000:0.01|d|#tag1:bar,tag2:baz",
        [O("foo_distribution", v, **TAGS) for v in AGG]),
    "datadog counter, invalid extended aggregation": (
        b"foo_counter:0.5:120:3000:10:20000:0.01|c|#tag1:bar,tag2:baz", {"invalid_extended_aggregate_type": 1}),
    "datadog gauge, invalid extended aggregation": (
        b"foo_gauge:0.5:120:3000:10:20000:0.01|g|#tag1:bar,tag2:baz", {"invalid_extended_aggregate_type": 1}),
    "extended aggregation with signalfx tags": (
        b"foo.[tag1=bar,tag2=baz]test:0.5:120:3000:10:20000:0.01|ms", [O("foo.test", v / 1000, **TAGS) for v in AGG]),
    "SignalFX counter, invalid extended aggregation": (
        b"foo.[tag1=bar,tag2=baz]test:0.5:120:3000:10:20000:0.01|c", {"invalid_extended_aggregate_type": 1}),
    "SignalFX no tags counter, invalid extended aggregation": (
        b"foo.[]test:0.5:120:3000:10:20000:0.01|c", {"invalid_extended_aggregate_type": 1}),
    "SignalFX no tags, extended aggregation, timings": (
        b"foo.[]test:0.5:120:3000:10:20000:0.01|ms", [O("foo.test", v / 1000) for v in AGG]),
    "no tags, extended aggregation, timings": (
        b"foo.test:0.5:120:3000:10:20000:0.01|ms", [O("foo.test", v / 1000) for v in AGG]),
    "timings with sampling factor": (b"foo.timing:0.5|ms|@0.1", [O("foo.timing", 0.0005)] * 10),
    "bad line": (b"foo", {"malformed_line": 1}),
    "bad component": (b"foo:1", {"not_enough_parts_after_colon": 1}),
    "bad value": (b"foo:1o|c", {"malformed_value": 1}),
    "illegal sampling factor": (b"foo:1|c|@bar", [C("foo", 1)]),  # counted, and used as 1
    "zero sampling factor": (b"foo:2|c|@0", [C("foo", 2)]),
    "illegal stat type": (b"foo:2|t", {"illegal_event": 1}),
    "empty metric name": (b":100|ms", {"malformed_line": 1}),
    "empty component": (b"foo:1|c|", {"malformed_component": 1}),
    "invalid utf8": (b"invalid\xc3\x28utf8:1|c", {"invalid_utf8": 1}),
    "ms timer with conversion to seconds": (b"foo:200|ms", [O("foo", 0.2)]),
    "invalid event split over lines part 1": (
        b"karafka.consumer.consume.cpu_idle_second:  0.111090  -0.055903  -0.195390 (  2.419002)",
        {"not_enough_parts_after_colon": 1}),
    "invalid event split over lines part 2": (
        b"|h|#consumer:Kafka::SharedConfigurationConsumer,topic:shared_configuration_update,partition:1,"
        b"consumer_group:tc_rc_us", {"not_enough_parts_after_colon": 1}),
    "dogstatsd container ID": (b"foo:100|c|#tag1:value|c:container123",
                               [C("foo", 100, tag1="value", container_id="container123")]),
    "dogstatsd container ID with tags": (b"foo:100|c|#tag1:bar,tag2:baz|c:container456",
                                         [C("foo", 100, **TAGS, container_id="container456")]),
    "dogstatsd container ID with gauge": (b"foo:50|g|#tag1:value|c:gauge_container",
                                          [G("foo", 50, tag1="value", container_id="gauge_container")]),
    "dogstatsd container ID with timer": (b"foo:1000|ms|#tag1:value|c:timer_container",
                                          [O("foo", 1, tag1="value", container_id="timer_container")]),
    "dogstatsd container ID with histogram": (b"foo:500|h|#tag1:value|c:hist_container",
                                              [O("foo", 500, tag1="value", container_id="hist_container")]),
    "dogstatsd container ID malformed - no colon": (b"foo:100|c|#tag1:value|c", {"malformed_container_id": 1}),
    "dogstatsd container ID malformed - no value": (b"foo:100|c|#tag1:value|c:", {"malformed_container_id": 1}),
    "dogstatsd container ID with complex value": (
        b"foo:100|c|#tag1:value|c:sha256:abcd1234efgh5678",
        [C("foo", 100, tag1="value", container_id="sha256:abcd1234efgh5678")]),
    "dogstatsd container ID with sampling": (
        b"foo:100|c|@0.1|#service:abc,client:go|c:3a88c225dbeb98f20bbb40cbd39ef90b094ce74291ae66fbd98b7f06f2a15b86",
        [C("foo", 1000, service="abc", client="go",
           container_id="3a88c225dbeb98f20bbb40cbd39ef90b094ce74291ae66fbd98b7f06f2a15b86")]),
    "dogstatsd container ID with sampling and histogram": (
        b"foo:200|h|@0.5|#env:prod|c:container_hist", [O("foo", 200, env="prod", container_id="container_hist")] * 2),
    "too many components": (b"foo:100|c|@0.1|#tag1:value|c:container|extra:component", {"invalid_sample_factor": 1}),
    "dogstatsd v1.3 timestamp counter": (b"page.views:15|c|#env:dev|T1656581400", [C("page.views", 15, env="dev")]),
    "dogstatsd v1.3 timestamp gauge": (
        b"temperature:98.6|g|#location:kitchen|T1656581400", [G("temperature", 98.6, location="kitchen")]),
    "dogstatsd v1.3 timestamp without tags": (b"foo:42|c|T1656581400", [C("foo", 42)]),
    "dogstatsd v1.3 timestamp, sampling, tags, container ID": (
        b"requests:100|c|@0.1|#service:web|c:abc123|T1656581400",
        [C("requests", 1000, service="web", container_id="abc123")]),
    "dogstatsd v1.3 timestamp non-numeric is dropped": (b"foo:100|c|#tag:val|Tnot-a-ts", [C("foo", 100, tag="val")]),
    "dogstatsd v1.3 timestamp empty value is dropped": (b"foo:100|c|#tag:val|T", [C("foo", 100, tag="val")]),
    # line.go, beyond its test table
    "more than six fields": (b"foo:1|c|#a:b|T1|T2|T3|T4", {"malformed_component": 1}),
    "etsy multi-metric": (b"foo:1|c:2|g", [C("foo", 1), G("foo", 2)]),
    "multi-metric is off for a tagged line": (b"foo:1|c:2|g|#a:b", {"malformed_component": 1}),
    "negative timer": (b"foo:-5|ms", [O("foo", -0.005)]),
    "relative gauge up": (b"foo:+5|g", [G("foo", 5, True)]),
    "padded value": (b"foo: 5 |c", [C("foo", 5)]),  # Go refuses it; see docs/bridge.rst
}


def exporter_events(line: bytes) -> tuple[list[tuple], dict[str, int]]:
    """What the bridge makes of a line, in statsd_exporter's event terms."""
    parsed = parse(line, RULES)
    events = []
    for sample in parsed.samples:
        tagged = split_tags(sample.name, sample.tags)
        if tagged.mixed:
            continue  # the store drops it (dropped_total{reason="mixed_tag_styles"})
        value, rate, labels = sample.value, sample.rate, tagged.labels
        if sample.type == "c":
            events.append(("counter", tagged.name, value / rate, False, labels))
        elif sample.type == "g":
            events.append(("gauge", tagged.name, value, sample.delta, labels))
        else:
            unit = 1000 if sample.type == "ms" else 1
            events += [("observer", tagged.name, value / unit, False, labels)] * int(1 / rate)
    return events, parsed.rejected


@pytest.mark.parametrize("name", CASES)
def test_line_as_statsd_exporter_reads_it(name: str) -> None:
    line, expected = CASES[name]
    events, rejected = exporter_events(line)
    if isinstance(expected, dict):
        assert (events, rejected) == ([], expected)
    else:
        assert [(k, n, pytest.approx(v), r, lab) for k, n, v, r, lab in events] == expected
        assert set(rejected) <= {"invalid_sample_factor"}  # @bar: counted, yet used


def test_unreadable_rate_is_counted_but_the_value_kept() -> None:
    assert parse(b"foo:1|c|@bar", RULES).rejected == {"invalid_sample_factor": 1}
    assert parse(b"foo:1|c|@0", RULES).rejected == {}
