"""One formatter, one parser: what the client sends over real UDP is read back by the
daemon's parser (django_statsd_push.server.protocol) as exactly what was meant."""

from __future__ import annotations

import pytest
from django.test import Client

from django_statsd_push import names, statsd
from django_statsd_push.server.protocol import parse
from django_statsd_push.testing import capture_metrics


@pytest.mark.parametrize("tag_format", [None, "dogstatsd", "graphite"])
def test_client_lines_parse_back(udp, settings, tag_format, monkeypatch):
    settings.STATSD_TAG_FORMAT = tag_format
    settings.STATSD_PREFIX = "app"
    monkeypatch.setattr("random.random", lambda: 0.0)  # keep every sampled metric
    with capture_metrics() as metrics:
        statsd.incr(names.cache_result("default", "get", "hit"), 3, rate=0.25)
        statsd.timing(names.db_query("default", "postgresql", "select"), 1.25)
        statsd.gauge("queue", 7)
        statsd.gauge("queue", -2, delta=True)
        statsd.set("users", "u-42")
        statsd.incr("weird name:|#")
    parsed = [s for d in udp.datagrams() for s in parse(d).samples]
    assert len(parsed) == len(metrics.records) == 6
    for record, sample in zip(metrics.records, parsed):
        wire_name = sample.name.split(";", 1)[0]
        assert wire_name == record.name
        assert sample.type == record.type
        assert sample.rate == record.rate
        expected_tags = {f"{k}:{v}" for k, v in record.tags.items()}
        if tag_format == "dogstatsd":
            assert set(sample.tags) == expected_tags
        elif tag_format == "graphite":
            assert sample.name == record.name + "".join(f";{k}={v}" for k, v in record.tags.items())
        if record.type == "s":
            assert sample.value == record.value
        else:
            assert sample.value == float(record.value)
    assert parsed[3].delta is True
    assert parsed[0].tags if tag_format == "dogstatsd" else not parsed[0].tags


def test_a_request_datagram_parses_without_bad_lines(udp, settings):
    settings.STATSD_HOOKS = ["db"]
    Client().get("/ten/")
    (datagram,) = udp.datagrams()
    result = parse(datagram)
    assert result.bad_lines == 0
    assert result.lines == 17  # 10 from the view, timer, 2 sizes, 2 responses, 2 db
