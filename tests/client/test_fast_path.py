"""The client's fast path (cached name heads, no pystatsd call chain) writes exactly the
lines pystatsd's own StatsClientBase writes for the same calls, with and without a
request batch, a prefix and tags; the calls it does not take (sample rates, gauges,
sets, timedeltas) go through pystatsd and must agree too. A capture keeps the fast
path on (tests/client/test_testing.py)."""

from __future__ import annotations

import datetime
import re

import pytest
from statsd.client.base import StatsClientBase
from statsd.client.udp import Pipeline

from django_statsd_push import names, statsd
from django_statsd_push.client import batching


class PystatsdLines(StatsClientBase):
    """pystatsd's formatting, unchanged, recording each datagram instead of sending it."""

    def __init__(self, prefix: str | None) -> None:
        self._prefix = prefix
        self._maxudpsize = 512
        self.lines: list[str] = []

    def _send(self, data: str) -> None:
        self.lines.extend(data.split("\n"))

    def pipeline(self) -> Pipeline:
        return Pipeline(self)


CACHE_GET = names.cache_op("default", "get")
HIT = names.cache_result("default", "get", "hit")
QUERY = names.db_query("default", "postgresql", "select")

# (method, stat, args, kwargs): every call is made twice, the second one with the name
# already known (the fast path where it applies).
CALLS = [
    ("timing", CACHE_GET, (1.25,), {}),
    ("timing", QUERY, (0,), {}),
    ("timing", QUERY, (12345.6789012,), {}),
    ("timing", "plain.timer", (datetime.timedelta(milliseconds=3),), {}),
    ("timing", CACHE_GET, (2.5,), {"rate": 0.5}),
    ("incr", HIT, (), {}),
    ("incr", HIT, (3,), {}),
    ("incr", "view.metric0", (), {}),
    ("incr", "view.metric0", (-2,), {}),
    ("incr", "view.metric0", (True,), {}),
    ("incr", "view.metric0", (1.0,), {}),
    ("incr", HIT, (4,), {"rate": 0.25}),
    ("decr", "plain.counter", (5,), {}),
    ("gauge", "queue", (7,), {}),
    ("gauge", "queue", (3,), {"delta": True}),
    ("gauge", "queue", (-2,), {"delta": True}),
    ("gauge", names.migrations("default", "unapplied"), (-4,), {}),
    ("gauge", "queue", (1.5,), {"rate": 0.5}),
    ("set", "users", ("u-42",), {}),
    ("set", HIT, (17,), {"rate": 0.1}),
]


def expected_lines(prefix: str | None, tag_format: str | None) -> list[str]:
    """What pystatsd writes for CALLS, for the name our naming gives (tags appended)."""
    reference = PystatsdLines(prefix)
    lines: list[str] = []
    for method, stat, args, kwargs in CALLS * 2:
        name, tail, _ = names.render(stat, None, tag_format)
        reference.lines = []
        getattr(reference, method)(name, *args, **kwargs)
        lines.extend(line + tail for line in reference.lines)
    return lines


@pytest.mark.parametrize("tag_format", [None, "dogstatsd", "graphite"])
@pytest.mark.parametrize("prefix", [None, "app"])
@pytest.mark.parametrize("in_batch", [True, False])
def test_lines_equal_pystatsd_output(udp, settings, monkeypatch, prefix, tag_format, in_batch):
    settings.STATSD_PREFIX = prefix
    settings.STATSD_TAG_FORMAT = tag_format
    monkeypatch.setattr("random.random", lambda: 0.0)  # keep every sampled line
    statsd.incr("warm.up")  # settings read: the fast path is on from here
    assert statsd._heads is not None
    udp.lines()

    def make_calls() -> None:
        for method, stat, args, kwargs in CALLS * 2:
            getattr(statsd, method)(stat, *args, **kwargs)

    if in_batch:
        with batching():
            make_calls()
    else:
        make_calls()
    assert udp.lines(timeout=1.0) == expected_lines(prefix, tag_format)


def test_lines_of_known_names_on_the_wire(udp, settings):
    """Literal lines, so the test above cannot agree with itself on a wrong name."""
    settings.STATSD_PREFIX = "app"
    settings.STATSD_TAG_FORMAT = "dogstatsd"
    with batching():
        for _ in range(2):
            statsd.timing(CACHE_GET, 1.25)
            statsd.incr(HIT)
            statsd.incr("view.metric0", 2)
    assert udp.lines() == [
        "app.cache:1.250000|ms|#alias:default,op:get",
        "app.cache.hit:1|c|#alias:default,op:get",
        "app.view.metric0:2|c",
    ] * 2


def test_fast_path_follows_setting_changes(udp, settings):
    statsd.incr("a.b")
    statsd.incr("a.b")
    settings.STATSD_PREFIX = "new"
    statsd.incr("a.b")
    statsd.incr("a.b")
    settings.STATSD_ENABLED = False
    statsd.incr("a.b")
    assert statsd._heads is None
    assert udp.lines() == ["a.b:1|c", "a.b:1|c", "new.a.b:1|c", "new.a.b:1|c"]


def test_a_global_sample_rate_takes_the_general_path(udp, settings, monkeypatch):
    settings.STATSD_SAMPLE_RATE = 0.5
    monkeypatch.setattr("random.random", lambda: 0.0)
    statsd.incr("a")
    statsd.incr("a")
    assert statsd._heads is None
    assert udp.lines() == ["a:1|c|@0.5", "a:1|c|@0.5"]


def test_bad_values_and_names_behave_as_before(udp):
    statsd.incr("a")
    statsd.timing("t", "not a number")  # dropped, as pystatsd's path did
    statsd.timing(["unhashable"], 1)  # a name that is not a string: str() of it
    statsd.incr(("plain", "tuple"))
    assert udp.lines() == ["a:1|c", "__unhashable__:1.000000|ms", "__plain____tuple__:1|c"]


@pytest.mark.parametrize("tag_format", [None, "dogstatsd", "graphite"])
def test_middleware_lines_equal_the_general_path(udp, settings, tag_format, monkeypatch):
    """The middleware's per-route lines against its general path (fast path switched off)."""
    from django.test import Client

    settings.STATSD_TAG_FORMAT = tag_format
    settings.STATSD_PREFIX = "app"
    settings.STATSD_HOOKS = ["db"]
    client = Client(raise_request_exception=False)
    requests = [("get", "/ten/"), ("get", "/db/"), ("post", "/db/"), ("get", "/boom/"),
                ("get", "/not-found/"), ("get", "/nowhere/"), ("generic", "/ten/")]

    def lines_of(method: str, url: str) -> list[str]:
        args = ("BREW", url) if method == "generic" else (url,)
        getattr(client, method)(*args)
        return [re.sub(r":[0-9.]+\|ms", ":T|ms", line) for line in udp.lines()]

    for method, url in requests * 2:
        fast = lines_of(method, url)
        assert statsd._heads is not None
        with monkeypatch.context() as general_path:
            general_path.setattr(statsd, "fast", None)
            general_path.setattr(statsd, "_heads", None)
            general = lines_of(method, url)
        assert fast == general and any("request" in line for line in fast), (method, url)
