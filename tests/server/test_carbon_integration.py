"""Packets -> our daemon -> REAL carbon-cache -> whisper files, read with ``whisper``."""

from __future__ import annotations

import struct
import time

import pytest

from tests.conftest import require_import

whisper = require_import("whisper")

from django_statsd_push.stack.carbon_cache import CarbonCache
from django_statsd_push.server.config import Settings
from django_statsd_push.server.daemon import Daemon

from .helpers import send_udp, wait_received

pytestmark = pytest.mark.slow

PACKETS = [b"app.hits:3|c\napp.hits:4|c", b"app.lat:10|ms\napp.lat:30|ms\napp.lat:20|ms",
           b"app.depth:42|g", b"app.users:a|s\napp.users:b|s", b"web.hits:1|c|#env:prod",
           b"../../etc/evil:1|c"]


def points(carbon: CarbonCache, metric: str, timeout: float = 60.0) -> list[float]:
    """The non-empty points of a whisper file, once carbon has written it."""
    path = carbon.whisper_file(metric)
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, values = whisper.fetch(str(path), time.time() - 600, time.time() + 1)
        except (OSError, whisper.WhisperException, struct.error):
            values = []  # not there yet, or carbon is still writing its header
        found = [v for v in values if v is not None]
        if found:
            return found
        assert time.monotonic() < deadline, f"{path} has no points"
        time.sleep(0.1)


@pytest.mark.parametrize("protocol", ["text", "pickle"])
def test_packets_end_up_in_whisper_even_when_carbon_starts_late(tmp_path, protocol, held_port):
    # Held, not picked and let go: until carbon binds them (late, on purpose) anything
    # binding port 0 could get them, carbon would exit, and the points go nowhere.
    line_port, pickle_port = held_port(), held_port()
    settings = Settings.from_mapping({
        "port": 0, "mgmt_port": 0, "flushInterval": 60000, "graphiteProtocol": protocol,
        "graphitePort": line_port, "graphitePicklePort": pickle_port, "carbon_reconnect_max": 0.2,
    })
    with Daemon(settings) as daemon:
        send_udp(daemon.port, *PACKETS)
        wait_received(daemon, 10)
        daemon.flush()  # Carbon is not up yet: the points wait in the buffer
        assert daemon.carbon.pending > 0
        with CarbonCache(tmp_path / "carbon", line_port=line_port, pickle_port=pickle_port,
                         first_retention="1s:1h") as carbon:
            assert points(carbon, "stats_counts.app.hits") == [7]
            assert points(carbon, "stats.app.hits") == [7 / 60]
            assert points(carbon, "stats.timers.app.lat.upper") == [30]
            assert points(carbon, "stats.timers.app.lat.mean") == [20]
            assert points(carbon, "stats.timers.app.lat.count") == [3]
            assert points(carbon, "stats.gauges.app.depth") == [42]
            assert points(carbon, "stats.sets.app.users.count") == [2]
            assert points(carbon, "stats_counts.web.hits;env=prod") == [1]
            # the hostile name: sanitised to "..-..-etc-evil", whose empty path segments
            # are refused, counted (once a flush), and written nowhere
            assert daemon.aggregator.total("names_rejected") == 1
            assert daemon.carbon.wait_sent(30)
            assert not [p for p in tmp_path.parent.rglob("*evil*")]
            info = whisper.info(str(carbon.whisper_file("stats_counts.app.hits")))
            assert info["archives"][0]["secondsPerPoint"] == 1
            assert info["aggregationMethod"] == "sum"
            assert whisper.info(str(carbon.whisper_file("stats.timers.app.lat.upper")))["aggregationMethod"] == "max"
            daemon.stop()  # while Carbon still runs: the last flush is delivered, not waited for
            assert daemon.carbon.pending == 0
