"""The Carbon writer: persistent connection, reconnect, bounded buffer, never blocking."""

from __future__ import annotations

import logging
import pickle
import re
import struct
import time

import pytest

from django_statsd_push.server.carbon_client import CarbonClient, encode, pieces
from django_statsd_push.server.config import Settings
from django_statsd_push.server.daemon import Daemon

from .etsy import CarbonCapture


def lines(prefix: str, n: int, ts: int = 1000) -> str:
    return "".join(f"{prefix}.{i} {i} {ts}\n" for i in range(n))


def poll(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_one_persistent_connection_for_many_flushes():
    with CarbonCapture() as carbon:
        client = CarbonClient("127.0.0.1", carbon.port)
        try:
            client.send(lines("a", 3))
            client.send(lines("b", 2))
            got = carbon.lines_until(lambda line: line.startswith("b.1 "))
        finally:
            client.close()
        assert got == ["a.0 0 1000", "a.1 1 1000", "a.2 2 1000", "b.0 0 1000", "b.1 1 1000"]
        assert len(carbon._conns) == 1
        assert client.sent_lines == 5


def test_points_wait_while_carbon_is_down_and_arrive_when_it_returns(held_port):
    port = held_port()  # Carbon is down: connects are refused
    client = CarbonClient("127.0.0.1", port, reconnect_min=0.05, reconnect_max=0.2)
    try:
        started = time.monotonic()
        client.send(lines("early", 4))
        assert time.monotonic() - started < 1.0  # send never waits for Carbon (generous: a loaded machine)
        poll(lambda: client.last_error)
        assert client.pending == 4
        with CarbonCapture(port) as carbon:
            got = carbon.lines_until(lambda line: line.startswith("early.3 "))
            assert [g.split()[0] for g in got] == ["early.0", "early.1", "early.2", "early.3"]
            assert client.wait_sent(30)
    finally:
        client.close()


def test_bounded_buffer_drops_the_oldest_and_counts_them(held_port):
    port = held_port()  # Carbon is down: connects are refused
    dropped = []
    client = CarbonClient("127.0.0.1", port, max_lines=10, reconnect_min=0.05, reconnect_max=0.1,
                          on_drop=lambda stat, n: dropped.append((stat, n)))
    try:
        client.send(lines("x", 25))
        poll(lambda: client.last_error)
        assert client.dropped_lines >= 15 and sum(n for _, n in dropped) == client.dropped_lines
        assert dropped[0][0] == "carbon_points_dropped"
        with CarbonCapture(port) as carbon:
            got = carbon.lines_until(lambda line: line.startswith("x.24 "))
        assert [g.split()[0] for g in got] == [f"x.{i}" for i in range(25 - 10, 25)]
    finally:
        client.close()


def test_reconnects_after_carbon_closes_the_connection():
    with CarbonCapture() as carbon:
        client = CarbonClient("127.0.0.1", carbon.port, reconnect_min=0.05)
        try:
            client.send(lines("one", 1))
            carbon.lines_until(lambda line: line.startswith("one.0"))
            carbon.drop_connections()
            # The client looks for the FIN before writing: wait until it has arrived.
            import select

            assert select.select([client._sock], [], [], 30)[0], "the client never saw Carbon close"
            client.send(lines("two", 1))
            carbon.lines_until(lambda line: line.startswith("two.0"))
            assert client.connects == 2
        finally:
            client.close()


def test_pickle_encoding_is_what_carbon_reads():
    payload = encode("a.b 1.5 1000\nc 2 1001\n", "pickle")
    (length,) = struct.unpack("!L", payload[:4])
    assert length == len(payload) - 4
    assert pickle.loads(payload[4:]) == [("a.b", (1000, 1.5)), ("c", (1001, 2.0))]


def test_pickle_messages_hold_at_most_500_points_each():
    """carbon's pickle receiver refuses a message over 1 MiB: a big piece is several."""
    payload = encode(lines("p", 1_200), "pickle")
    messages = []
    while payload:
        (length,) = struct.unpack("!L", payload[:4])
        messages.append(pickle.loads(payload[4:4 + length]))
        payload = payload[4 + length:]
    assert [len(m) for m in messages] == [500, 500, 200]
    assert messages[2][-1] == ("p.1199", (1000, 1199.0))


def test_text_is_queued_in_pieces_of_whole_lines():
    text = lines("piece", 50_000)
    cut = list(pieces(text, size=4096))
    assert len(cut) > 100 and "".join(cut) == text
    assert all(p.endswith("\n") and len(p) < 4096 + 100 for p in cut)


def test_a_flush_larger_than_the_buffer_reaches_a_live_carbon_whole():
    """``max_lines`` bounds what waits during an outage, not what a flush may hold."""
    with CarbonCapture() as carbon:
        client = CarbonClient("127.0.0.1", carbon.port, max_lines=100)
        try:
            client.send(lines("big", 20_000))
            got = carbon.lines_until(lambda line: line.startswith("big.19999 "), timeout=60)
            assert len(got) == 20_000
            assert client.dropped_lines == 0
        finally:
            client.close()


def test_an_outage_is_logged_once_as_it_begins_and_once_as_it_ends(caplog, held_port):
    port = held_port()  # refusing while Carbon is away, and nobody else's meanwhile
    carbon = CarbonCapture(port)
    settings = Settings.from_mapping({"port": 0, "mgmt_port": 0, "flushInterval": 100, "graphitePort": port,
                                      "carbon_reconnect_max": 0.2})
    try:
        with caplog.at_level(logging.INFO, "django_statsd_push.server.carbon_client"), Daemon(settings) as daemon:
            carbon.lines_until(lambda line: ".graphiteStats.last_exception " in line)
            assert daemon.status()["graphite.last_exception"] > 1e9  # never failed: etsy's 0
            carbon.close()  # Carbon goes away: connection reset, port refusing
            poll(lambda: daemon.carbon.last_failed)
            flushes = daemon.flushes
            poll(lambda: daemon.flushes >= flushes + 5)  # five flushes, and about 5 retries, fail
            stats = daemon.status()
            assert stats["graphite.last_exception"] <= 2  # seconds since the last failed write
            assert stats["carbon.connected"] == 0 and stats["carbon.pending"] > 0
            carbon = CarbonCapture(port)  # back on the same port
            got = carbon.lines_until(lambda line: ".graphiteStats.last_exception " in line
                                     and line.split()[1] != "0")
            assert int(got[-1].split()[1]) == pytest.approx(time.time(), abs=30)  # etsy: when it failed
            poll(lambda: "takes points again" in caplog.text)
    finally:
        carbon.close()
    records = [r for r in caplog.records if r.name.endswith("carbon_client")]
    down = [r for r in records if "unavailable" in r.getMessage()]
    up = [r for r in records if "takes points again" in r.getMessage()]
    assert len(down) == 1 and down[0].levelno == logging.WARNING
    assert len(up) == 1 and up[0].levelno == logging.INFO
    assert re.search(r"delivering \d+ buffered points, 0 dropped during the outage", up[0].getMessage())


def test_in_an_outage_the_daemons_own_lines_are_dropped_last(held_port):
    port = held_port()  # Carbon is down: connects are refused
    client = CarbonClient("127.0.0.1", port, max_lines=10, reconnect_min=0.05, reconnect_max=0.1,
                          protect="statsd")
    try:
        client.send(lines("statsd.own", 3) + lines("user", 20) + lines("statsd.late", 2))
        poll(lambda: client.last_error and client.dropped_lines)
        with CarbonCapture(port) as carbon:
            got = carbon.lines_until(lambda line: line.startswith("statsd.late.1 "))
        names = [g.split()[0] for g in got]
        assert names == ["statsd.own.0", "statsd.own.1", "statsd.own.2",
                         *[f"user.{i}" for i in range(15, 20)], "statsd.late.0", "statsd.late.1"]
        assert client.dropped_lines == 15
    finally:
        client.close()


def test_a_daemon_flush_larger_than_carbon_buffer_lines_arrives_whole():
    from .helpers import send_udp, wait_received

    with CarbonCapture() as carbon:
        settings = Settings.from_mapping({"port": 0, "mgmt_port": 0, "flushInterval": 3600000,
                                          "graphitePort": carbon.port, "carbon_buffer_lines": 100})
        with Daemon(settings) as daemon:
            send_udp(daemon.port, *[("\n".join(f"big.m{i}:1|c" for i in range(j, j + 20))).encode()
                                    for j in range(0, 5000, 20)])
            wait_received(daemon, 5000)
            daemon.flush()
            got = carbon.lines_until(lambda line: ".graphiteStats.flush_length " in line, timeout=60)
            names = {line.split()[0] for line in got}
            assert {f"stats_counts.big.m{i}" for i in range(5000)} <= names
            assert {f"stats.big.m{i}" for i in range(5000)} <= names
            assert daemon.carbon.dropped_lines == 0


def test_an_outage_trim_drops_whole_pieces_and_keeps_own_lines_in_any_namespace(held_port):
    """Pieces with no protected line are dropped as they are; the daemon's own lines
    (``statsd.*``, or ``*.statsd.*`` under a namespace) survive from any piece."""
    port = held_port()  # Carbon is down: connects are refused
    client = CarbonClient("127.0.0.1", port, max_lines=1_000, reconnect_min=0.05, reconnect_max=0.1,
                          protect="statsd")
    try:
        own = lines("stats.statsd.inner", 2) + lines("statsd.first", 1)
        client.send([lines("old", 30_000) + own, lines("new", 30_000)])  # several pieces each
        poll(lambda: client.last_error and client.dropped_lines)
        assert client.pending == 1_000 and client.dropped_lines == 60_003 - 1_000
        with CarbonCapture(port) as carbon:
            got = carbon.lines_until(lambda line: line.startswith("new.29999 "))
        names = [g.split()[0] for g in got]
        assert names[:3] == ["stats.statsd.inner.0", "stats.statsd.inner.1", "statsd.first.0"]
        assert names[3:] == [f"new.{i}" for i in range(30_000 - 997, 30_000)]
    finally:
        client.close()
