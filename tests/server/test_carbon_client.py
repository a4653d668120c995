"""The Carbon writer: persistent connection, reconnect, bounded buffer, never blocking."""

from __future__ import annotations

import pickle
import struct
import time

from django_statsd_push.server.carbon_client import CarbonClient, encode

from .etsy import CarbonCapture, free_port


def lines(prefix: str, n: int, ts: int = 1000):
    return [(f"{prefix}.{i}", str(i), ts) for i in range(n)]


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


def test_points_wait_while_carbon_is_down_and_arrive_when_it_returns():
    port = free_port()
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


def test_bounded_buffer_drops_the_oldest_and_counts_them():
    port = free_port()
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
    payload = encode([("a.b", "1.5", 1000), ("c", "2", 1001)], "pickle")
    (length,) = struct.unpack("!L", payload[:4])
    assert length == len(payload) - 4
    assert pickle.loads(payload[4:]) == [("a.b", (1000, 1.5)), ("c", (1001, 2.0))]
