"""End to end with tags: Django with STATSD_TAG_FORMAT (the middleware's DogStatsD tags) and
raw tagged packets -> our daemon -> REAL carbon-cache with ENABLE_TAGS (posting to the render
API's TagDB, as it would to graphite-web) -> seriesByTag."""

from __future__ import annotations

import socket
import time

import pytest

from django_statsd_push.render.app import create_app
from django_statsd_push.render.httpserver import BackgroundServer

from .test_e2e import carbon_launcher, query

pytestmark = pytest.mark.slow


def wait_for(check, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_carbon_posts_tagged_series_and_seriesbytag_finds_them(tmp_path, settings):
    from django.test import Client

    from django_statsd_push.client import statsd

    from django_statsd_push.server.config import Settings
    from django_statsd_push.server.daemon import Daemon

    CarbonCache = carbon_launcher()
    whisper_dir = tmp_path / "carbon" / "whisper"
    whisper_dir.mkdir(parents=True)
    app = create_app(str(whisper_dir), static_dir=None)
    with BackgroundServer(app) as url:
        with CarbonCache(tmp_path / "carbon", first_retention="1s:1h",
                         settings={"GRAPHITE_URL": url, "ENABLE_TAGS": "True"}) as carbon:
            config = Settings.from_mapping({"port": 0, "mgmt_port": 0, "flushInterval": 60000,
                                            "graphitePort": carbon.line_port})
            with Daemon(config) as daemon:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.sendto(b"e2e.hits:3|c|#env:prod,host:a\ne2e.hits:4|c|#env:prod,host:b\n"
                                b"e2e.hits:5|c|#env:dev,host:a\nplain.hits:1|c", ("127.0.0.1", daemon.port))
                settings.STATSD_CLIENT, settings.STATSD_HOST, settings.STATSD_PORT = "udp", "127.0.0.1", daemon.port
                settings.STATSD_TAG_FORMAT = "dogstatsd"
                statsd.reset()
                try:
                    for path in ("/ns/detail/", "/ns/detail/", "/not-found/"):
                        Client().get(path)  # one datagram per request, the middleware's tags included
                finally:
                    statsd.reset()
                wait_for(lambda: daemon.status()["messages.packets_received"] >= 4, "the daemon to receive")
                daemon.flush()
                assert daemon.carbon.wait_sent(10)
                # carbon creates the files, then its tag thread POSTs them to /tags/tagMultiSeries
                found = wait_for(lambda: query(url, "/tags/findSeries", {"expr": ["name=stats_counts.e2e.hits"]}),
                                 "carbon to tag the series")
                wait_for(lambda: len(query(url, "/tags/findSeries",
                                           {"expr": ["name=stats_counts.e2e.hits"]})) == 3, "all three series")
                assert query(url, "/tags/findSeries", {"expr": ["name=stats_counts.e2e.hits", "env=prod"]}) == [
                    "stats_counts.e2e.hits;env=prod;host=a", "stats_counts.e2e.hits;env=prod;host=b"]
                assert found
                # plain dotted names are not posted (SKIP_TAGS_FOR_NONTAGGED)
                assert query(url, "/tags/findSeries", {"expr": ["name=~stats_counts.plain.*"]}) == []

                def prod_sum():
                    doc = query(url, "/render", {"target": "sumSeries(seriesByTag('name=stats_counts.e2e.hits',"
                                                           "'env=prod'))", "from": "-5min"})
                    return [v for s in doc for v, _ in s["datapoints"] if v is not None] == [7] and doc

                doc = wait_for(prod_sum, "carbon to write the points")
                assert doc[0]["target"] == "sumSeries(seriesByTag('name=stats_counts.e2e.hits','env=prod'))"
                grouped = query(url, "/render", {"target": "seriesByTag('name=stats_counts.e2e.hits')"
                                                           "|groupByTags('sum','env')", "from": "-5min"})
                assert {s["target"]: [v for v, _ in s["datapoints"] if v is not None] for s in grouped} == {
                    "stats_counts.e2e.hits;env=dev": [5], "stats_counts.e2e.hits;env=prod": [7]}
                # each counter is two series (stats.* rate and stats_counts.*)
                assert query(url, "/tags/env", {})["values"] == [{"value": "dev", "count": 2},
                                                                  {"value": "prod", "count": 4}]
                # what Django's middleware sent with STATSD_TAG_FORMAT = "dogstatsd"
                by_class = wait_for(lambda: [s for s in query(url, "/render", {
                    "target": "aliasByTags(seriesByTag('name=stats_counts.response'), 'status_class')",
                    "from": "-5min"}) if any(v is not None for v, _ in s["datapoints"])], "the response counters")
                assert {s["target"]: [v for v, _ in s["datapoints"] if v is not None] for s in by_class} == {
                    "2xx": [2], "4xx": [1]}
                views = query(url, "/tags/autoComplete/values", {"tag": "view", "expr": "name=~stats.timers.request"})
                assert "polls_detail" in views
    app.tagdb.close()
    app.events.close()
    # a render server started later over the same files (without carbon) indexes them itself
    (tmp_path / "carbon" / "tagdb.sqlite3").unlink()
    later = create_app(str(whisper_dir), static_dir=None)
    try:
        assert later.tagdb.find_series(["host=a", "name=~stats_counts"]) == [
            "stats_counts.e2e.hits;env=dev;host=a", "stats_counts.e2e.hits;env=prod;host=a"]
        assert len(later.tagdb.find_series(["name=~stats.*e2e"])) == 6
    finally:
        later.tagdb.close()
        later.events.close()
