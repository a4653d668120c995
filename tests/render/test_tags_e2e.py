"""End to end with tags: Django with STATSD_TAG_FORMAT (the middleware's DogStatsD tags) and
raw tagged packets -> our daemon -> REAL carbon-cache with ENABLE_TAGS (posting to the render
API's TagDB, as it would to graphite-web) -> seriesByTag."""

from __future__ import annotations

import socket
import time

import pytest

from django_statsd_push.render.app import create_app
from django_statsd_push.render.settings import RenderSettings
from django_statsd_push.render.httpserver import BackgroundServer

from .test_e2e import carbon_launcher, query

pytestmark = pytest.mark.slow


def eventually(get, expected, timeout: float = 30.0) -> None:
    """Poll ``get()`` until it returns ``expected``; fail at the deadline showing the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        got = get()
        if got == expected:
            return
        assert time.monotonic() < deadline, f"still {got!r}, expected {expected!r}"
        time.sleep(0.2)


@pytest.mark.statsd_send  # the Django client's datagrams must reach the daemon
def test_carbon_posts_tagged_series_and_seriesbytag_finds_them(tmp_path, settings):
    from django.test import Client

    from django_statsd_push.client import statsd

    from django_statsd_push.server.config import Settings
    from django_statsd_push.server.daemon import Daemon

    CarbonCache = carbon_launcher()
    whisper_dir = tmp_path / "carbon" / "whisper"
    whisper_dir.mkdir(parents=True)
    app = create_app(RenderSettings(whisper_root=str(whisper_dir)))
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
                eventually(lambda: daemon.status()["messages.packets_received"] >= 4, True)  # the daemon received
                daemon.flush()
                assert daemon.carbon.wait_sent(10)
                # Carbon writes files and posts tags from two threads, file by file: every check
                # below waits (with a deadline) for its expected answer rather than reading once.
                eventually(lambda: query(url, "/tags/findSeries", {"expr": ["name=stats_counts.e2e.hits", "env=prod"]}),
                           ["stats_counts.e2e.hits;env=prod;host=a", "stats_counts.e2e.hits;env=prod;host=b"])

                def values(target: str) -> dict:
                    doc = query(url, "/render", {"target": target, "from": "-5min", "format": "json"})
                    return {s["target"]: [v for v, _ in s["datapoints"] if v is not None] for s in doc}

                by_tag = "sumSeries(seriesByTag('name=stats_counts.e2e.hits','env=prod'))"
                eventually(lambda: values(by_tag), {by_tag: [7]})
                eventually(lambda: values("seriesByTag('name=stats_counts.e2e.hits')|groupByTags('sum','env')"),
                           {"stats_counts.e2e.hits;env=dev": [5], "stats_counts.e2e.hits;env=prod": [7]})
                # each counter is two series (stats.* rate and stats_counts.*)
                eventually(lambda: query(url, "/tags/env", {})["values"],
                           [{"value": "dev", "count": 2}, {"value": "prod", "count": 4}])
                # what Django's middleware sent with STATSD_TAG_FORMAT = "dogstatsd"
                eventually(lambda: values("aliasByTags(seriesByTag('name=stats_counts.response'), 'status_class')"),
                           {"2xx": [2], "4xx": [1]})
                eventually(lambda: "polls_detail" in query(url, "/tags/autoComplete/values",
                                                           {"tag": "view", "expr": "name=~stats.timers.request"}), True)
                # plain dotted names are not posted (SKIP_TAGS_FOR_NONTAGGED)
                assert query(url, "/tags/findSeries", {"expr": ["name=~stats_counts.plain.*"]}) == []
    app.tagdb.close()
    app.events.close()
    # a render server started later over the same files (without carbon) indexes them itself
    (tmp_path / "carbon" / "tagdb.sqlite3").unlink()
    later = create_app(RenderSettings(whisper_root=str(whisper_dir)))
    try:
        assert later.tagdb.find_series(["host=a", "name=~stats_counts"]) == [
            "stats_counts.e2e.hits;env=dev;host=a", "stats_counts.e2e.hits;env=prod;host=a"]
        assert len(later.tagdb.find_series(["name=~stats.*e2e"])) == 6
    finally:
        later.tagdb.close()
        later.events.close()
