"""Limits: packet size, name length, series count; a stuck Carbon never stops receiving."""

from __future__ import annotations

import socket
import time

from django_statsd_push.server.aggregate import Aggregator, AggregatorConfig
from django_statsd_push.stack.carbon_cache import _with_first_retention
from django_statsd_push.server.config import Settings
from django_statsd_push.server.daemon import Daemon
from django_statsd_push.server.snapshot import SeriesKey

from .helpers import send_udp as send
from .helpers import wait_received


def test_series_limit_drops_new_series_and_counts_them():
    aggregator = Aggregator(AggregatorConfig(max_series=5))  # 3 of them are statsd's own
    aggregator.ingest(b"a:1|c\nb:1|c\nc:1|c\nd:1|c\nt:1|ms")
    snapshot = aggregator.flush(1000.0)
    assert {k.name for k in snapshot.counters} >= {"a", "b"}
    assert "c" not in {k.name for k in snapshot.counters}
    assert SeriesKey("t") in snapshot.timers  # the limit is per table
    assert snapshot.counters[SeriesKey("statsd.series_dropped")] == 2
    assert aggregator.flush(1001.0).counters[SeriesKey("statsd.series_dropped")] == 0  # kept, like etsy's


def test_overlong_names_and_nul_are_refused_and_counted():
    aggregator = Aggregator(AggregatorConfig(max_name_length=50))
    aggregator.ingest(b"x" * 51 + b":1|c\nok:1|c\nnul\x00name:1|c\nshort:1|c|#" + b"t" * 60)
    counters = aggregator.flush(1000.0).counters
    assert counters[SeriesKey("statsd.names_rejected")] == 3
    assert SeriesKey("ok") in counters


def test_oversized_datagram_is_dropped_and_counted():
    settings = Settings.from_mapping({"port": 0, "mgmt_port": 0, "max_packet_size": 100, "graphite_enabled": False})
    with Daemon(settings) as daemon:
        send(daemon.port, b"big:1|c\n" * 20, b"small:1|c")
        wait_received(daemon, 1)
        assert daemon.aggregator.total("packets_too_large") == 1
        assert daemon.status()["messages.metrics_received"] == 1


def test_receiving_goes_on_while_carbon_does_not_read():
    # A Carbon that accepts and never reads: the writer thread blocks, nothing else does.
    # Its receive buffer is made small, and rounds go on until the writer is seen still
    # holding an earlier flush: how much the kernel buffers (and so how many rounds that
    # takes) depends on the machine and its load.
    with socket.socket() as black_hole:
        black_hole.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen()
        settings = Settings.from_mapping({"port": 0, "mgmt_port": 0, "flushInterval": 3600000,
                                          "graphitePort": black_hole.getsockname()[1]})
        with Daemon(settings) as daemon:
            conn = None
            try:
                for round_ in range(50):
                    stuck = daemon.carbon.pending > 0  # still holding an earlier flush's lines
                    send(daemon.port, *[f"m{round_}.{i}:1|c".encode() for i in range(2000)])
                    wait_received(daemon, 2000 * (round_ + 1))
                    started = time.monotonic()
                    daemon.flush()  # ~4000 lines each
                    assert time.monotonic() - started < 5  # seconds: forever if it waited for Carbon
                    if conn is None:
                        conn, _ = black_hole.accept()
                    if stuck:
                        break
                assert stuck, "Carbon's socket buffers never filled"
            finally:
                daemon.carbon.timeout = 0.5
                if conn is not None:
                    conn.close()


def test_first_retention_override():
    text = "[a]\npattern = .*\nretentions = 10s:6h,1m:7d\n[b]\nretentions=60s:90d\n"
    assert _with_first_retention(text, "1s:1h") == "[a]\npattern = .*\nretentions = 1s:1h,1m:7d\n[b]\nretentions=1s:1h\n"


def test_tcp_line_longer_than_the_limit_is_dropped_and_counted():
    settings = Settings.from_mapping({"port": 0, "mgmt_port": 0, "max_packet_size": 100, "graphite_enabled": False})
    with Daemon(settings) as daemon, socket.create_connection(("127.0.0.1", daemon.port)) as tcp:
        tcp.sendall(b"x" * 150)
        deadline = time.monotonic() + 30
        while daemon.aggregator.total("lines_too_long") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        tcp.sendall(b"ok:1|c\n")
        wait_received(daemon, 1)
        assert daemon.aggregator.current("counters")[SeriesKey("ok")] == 1
