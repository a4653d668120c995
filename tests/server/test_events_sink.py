"""DogStatsD events into Graphite events: a real ``serve`` posting to a real ``render``,
and the sink's promises (never blocking a flush, bounded, failures counted and logged
once per outage) against real sockets."""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.parse
import urllib.request

import pytest

from django_statsd_push.server.events_sink import EventsSink
from django_statsd_push.server.protocol import Event
from django_statsd_push.server.snapshot import Snapshot
from tests.conftest import require_import
from tests.render.conftest import render_process

from .helpers import Serve, eventually


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


class Counts:
    def __init__(self) -> None:
        self.counts: dict[str, float] = {}

    def __call__(self, stat: str, amount: float = 1) -> None:
        self.counts[stat] = self.counts.get(stat, 0) + amount


def snapshot(*events: Event) -> Snapshot:
    return Snapshot(timestamp=time.time(), interval=1.0, events=events)


def test_dogstatsd_event_reaches_render_events_api_and_events_function(tmp_path):
    root = tmp_path / "whisper"
    root.mkdir()
    base = require_import("datadog.dogstatsd.base")
    with render_process(root) as render, \
            Serve("--no-graphite", "--flush-interval", "200", "--events-url", render.url + "/events/") as daemon:
        client = base.DogStatsd("127.0.0.1", daemon.port, disable_telemetry=True)
        try:
            client.event("Deploy v1.4", "rolled out to web", alert_type="success", tags=["deploy", "env:prod"])
        finally:
            client.close_socket()
        events = eventually(lambda: get_json(render.url + "/events/get_data?from=-1h"), lambda found: found)
        assert len(events) == 1, events
        event = events[0]
        assert (event["what"], event["data"], sorted(event["tags"])) == \
            ("Deploy v1.4", "rolled out to web", ["deploy", "env:prod"])
        assert abs(event["when"] - time.time()) < 120
        target = urllib.parse.quote('events("deploy")')
        series = get_json(f"{render.url}/render?target={target}&from=-10min&format=json")
        assert [s["target"] for s in series] == ['events("deploy")']
        assert sum(v for v, _ in series[0]["datapoints"] if v is not None) == 1
        assert "DogStatsD events not posted" not in daemon.log()


def test_bridge_posts_events_too(tmp_path):
    from tests.bridge.test_standalone import Cli

    root = tmp_path / "whisper"
    root.mkdir()
    base = require_import("datadog.dogstatsd.base")
    with render_process(root) as render:
        command = lambda port, listen: ["bridge", "--statsd-port", str(port), "--listen", listen,  # noqa: E731
                                        "--flush-interval", "50", "--events-url", render.url + "/events/"]
        with Cli(command) as bridge:
            client = base.DogStatsd("127.0.0.1", bridge.statsd_port, disable_telemetry=True)
            try:
                client.event("Bridge event", "from the bridge", tags=["bridge"])
            finally:
                client.close_socket()
            events = eventually(lambda: get_json(render.url + "/events/get_data?tags=bridge"), lambda found: found)
            assert [(e["what"], e["data"]) for e in events] == [("Bridge event", "from the bridge")]
        assert bridge.proc.returncode == 0, bridge.log()


def test_event_timestamp_is_kept_and_long_titles_are_cut(tmp_path):
    root = tmp_path / "whisper"
    root.mkdir()
    with render_process(root) as render:
        sink = EventsSink(render.url + "/events/", Counts())
        an_hour_ago = int(time.time()) - 3600
        sink.flush(snapshot(Event("x" * 300, "text", ("a",), timestamp=an_hour_ago)))
        sink.close(30)
        assert sink.posted == 1, sink.dropped
        (event,) = get_json(render.url + "/events/get_data?from=-2h&until=-30min")
        assert event["when"] == an_hour_ago and event["what"] == "x" * 255


def test_outage_is_counted_and_logged_once_then_recovery_once(tmp_path, caplog, held_port):
    dead = f"http://127.0.0.1:{held_port()}/events/"  # refused, and nothing else can listen there
    counts = Counts()
    caplog.set_level(logging.INFO, "django_statsd_push.server.events_sink")
    sink = EventsSink(dead, counts)
    try:
        sink.flush(snapshot(*(Event(f"e{i}", "") for i in range(3))))
        eventually(lambda: counts.counts.get("events_dropped"), lambda n: n == 3)
        assert counts.counts["events_dropped"] == 3
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and dead in warnings[0].getMessage()
        root = tmp_path / "whisper"
        root.mkdir()
        with render_process(root) as render:
            sink.url = render.url + "/events/"  # the server is back (at its own port)
            sink.flush(snapshot(Event("back", "")))
            eventually(lambda: sink.posted, lambda n: n == 1)
            assert [e["what"] for e in get_json(render.url + "/events/get_data")] == ["back"]
        assert "answers again; 3 event(s) dropped meanwhile" in caplog.text
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    finally:
        sink.close(0)


def test_flush_never_waits_for_a_stuck_server_and_the_queue_is_bounded():
    with socket.socket() as stuck:  # accepts connections (backlog) and never answers
        stuck.bind(("127.0.0.1", 0))
        stuck.listen(16)
        counts = Counts()
        sink = EventsSink(f"http://127.0.0.1:{stuck.getsockname()[1]}/events/", counts, timeout=5, max_queued=5)
        started = time.monotonic()
        for _ in range(4):
            sink.flush(snapshot(*(Event(f"e{i}", "") for i in range(10))))
        assert time.monotonic() - started < 2.5  # not one post's timeout: 40 events queued or dropped
        dropped_by_queue = counts.counts.get("events_dropped", 0)
        assert dropped_by_queue >= 40 - 5 - 1  # at most the queue and the one being posted wait
        started = time.monotonic()
        sink.close(0.5)
        assert time.monotonic() - started < 5
        eventually(lambda: sink.dropped, lambda n: n == 40)
        assert sink.posted == 0 and sink.dropped == 40


@pytest.mark.parametrize("url", ["127.0.0.1:8080/events/", "ftp://x/events/"])
def test_events_url_must_be_http(url):
    from django_statsd_push.server.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="events_url"):
        Settings.from_mapping({"events_url": url})
