"""django_statsd_push.testing: capture context manager, fixture and assertion helpers."""

from __future__ import annotations

import pytest
from django.test import Client

from django_statsd_push import names, statsd
from django_statsd_push.testing import capture_metrics


def test_capture_records_what_is_sent_and_it_is_really_sent(udp, settings):
    settings.STATSD_PREFIX = "app"
    with capture_metrics() as metrics:
        statsd.incr("orders", 2)
        statsd.gauge("queue", 5)
        statsd.set("users", "u1")
        statsd.timing(names.cache_op("default", "get"), 1.5)
    assert metrics.names() == ["app.orders", "app.queue", "app.users", "app.cache.default.get"]
    metrics.assert_incr("orders", value=2, count=1)
    metrics.assert_incr("app.orders")  # full name matches too
    metrics.assert_gauge("queue", 5)
    metrics.assert_set("users", "u1")
    metrics.assert_timing("cache.default.get", count=1)
    metrics.assert_not_sent("orders", type="ms")
    assert udp.lines() == [r.line for r in metrics.records]


def test_assertion_messages_list_what_was_sent():
    with capture_metrics() as metrics:
        statsd.incr("a")
    with pytest.raises(AssertionError, match=r"no metric 'b'.*\n  a:1\|c"):
        metrics.assert_incr("b")
    with pytest.raises(AssertionError, match="sent 1 times, expected 2"):
        metrics.assert_incr("a", count=2)
    with pytest.raises(AssertionError, match="was sent"):
        metrics.assert_not_sent("a")


def test_tags_are_recorded(settings):
    settings.STATSD_TAG_FORMAT = "graphite"
    with capture_metrics() as metrics:
        statsd.incr(names.model_event("polls", "question", "insert"))
    (record,) = metrics.assert_incr("model.insert", tags={"app": "polls", "model": "question"})
    assert record.line == "model.insert;app=polls;model=question:1|c"
    assert metrics.filter(tags={"app": "other"}) == []


def test_nothing_recorded_when_disabled(settings):
    settings.STATSD_ENABLED = False
    with capture_metrics() as metrics:
        statsd.incr("x")
    assert metrics.records == []


def test_fixture_sees_request_metrics(statsd_metrics):
    Client().get("/ten/")
    statsd_metrics.assert_timing("request.ten.GET", count=1)
    statsd_metrics.assert_incr("response.200", count=1)
    assert len(statsd_metrics.filter(type="c")) == 12


def test_capture_stops_at_the_end_of_the_block():
    with capture_metrics() as metrics:
        pass
    statsd.incr("later")
    assert metrics.records == []


def test_capture_keeps_the_fast_path_production_runs(udp, settings):
    """Hook and middleware tests record the lines the fast path writes, not another path's."""
    settings.STATSD_PREFIX = "app"
    settings.STATSD_TAG_FORMAT = "dogstatsd"
    with capture_metrics() as metrics:
        Client().get("/ten/")
        assert statsd.fast is not None and statsd._heads is not None
        Client().get("/ten/")  # known names and route: the fast path's lines
    sent = udp.lines()
    assert len(sent) == 28  # (10 + timer + 2 sizes + one tagged response) x 2
    assert [r.line for r in metrics.records] == sent
    (timer, *_) = metrics.assert_timing("request", count=2, tags={"view": "ten", "method": "GET"})
    assert timer.name == "app.request" and timer.stat == "request" and timer.rate == 1.0
    metrics.assert_incr("view.metric0", value=1, count=2)


def test_records_appear_when_the_batch_is_sent():
    from django_statsd_push.client import batching

    with capture_metrics() as metrics:
        with batching():
            statsd.incr("buffered")
            assert metrics.records == []
        metrics.assert_incr("buffered", count=1)


def test_settings_changed_inside_the_block_are_still_recorded(settings):
    with capture_metrics() as metrics:
        statsd.incr("before")
        settings.STATSD_PREFIX = "new"
        statsd.incr("after")
    assert metrics.names() == ["before", "new.after"]
    assert metrics.records[1].stat == "after"
    assert type(statsd.state.transport).__name__ == "CaptureTransport"  # unwrapped again


def test_under_pytest_a_network_client_sends_nothing(settings, receiver):
    """The plugin's default: STATSD_CLIENT = "udp" in a project's settings, no datagram."""
    settings.STATSD_CLIENT = "udp"
    settings.STATSD_HOST = "127.0.0.1"
    settings.STATSD_PORT = receiver.port
    with capture_metrics() as metrics:
        statsd.incr("kept")
    metrics.assert_incr("kept", count=1)
    assert list(statsd.transport.datagrams) == ["kept:1|c"]
    assert receiver.datagrams(timeout=0.2) == []


@pytest.mark.parametrize("opt_in", ["fixture", "setting"])
def test_opting_in_sends_real_datagrams(request, settings, receiver, opt_in):
    if opt_in == "fixture":
        request.getfixturevalue("statsd_send")
    else:
        settings.STATSD_PYTEST_SEND = True
    settings.STATSD_CLIENT = "udp"
    settings.STATSD_HOST = "127.0.0.1"
    settings.STATSD_PORT = receiver.port
    statsd.incr("sent")
    assert receiver.lines(timeout=5) == ["sent:1|c"]


@pytest.mark.statsd_send
def test_the_marker_lets_a_test_send(settings, receiver):
    settings.STATSD_CLIENT = "udp"
    settings.STATSD_HOST = "127.0.0.1"
    settings.STATSD_PORT = receiver.port
    statsd.incr("sent")
    assert receiver.lines(timeout=5) == ["sent:1|c"]
