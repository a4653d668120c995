"""Port checks and readiness polling on real sockets."""

from __future__ import annotations

import contextlib
import errno
import itertools
import socket
from pathlib import Path

import pytest

from django_statsd_push.stack import health
from django_statsd_push.stack.health import HOST, Port


def test_taken_tcp_port_names_the_port_and_the_flag() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        with health.PortHold() as free:  # held for a child: free as far as the check goes
            errors = health.check_ports([Port("render API", taken, "--render-port"),
                                         Port("app", free.port, "--app-port")])
    assert len(errors) == 1
    assert f"port {taken} (render API, TCP) is already in use" in errors[0]
    assert "--render-port PORT" in errors[0]


def test_taken_udp_port_counts_for_the_statsd_port() -> None:
    for _ in range(5):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, socket.socket() as tcp_twin:
            s.bind(("127.0.0.1", 0))
            taken = s.getsockname()[1]
            try:  # another process may hold the TCP port of the same number: pick again
                tcp_twin.bind(("127.0.0.1", taken))
            except OSError:
                continue
            tcp_twin.close()
            assert health.check_ports([Port("statsd", taken, "--statsd-port", udp=False)]) == []
            errors = health.check_ports([Port("statsd", taken, "--statsd-port", udp=True)])
            break
    assert errors and "--statsd-port" in errors[0] and "UDP/TCP" in errors[0]


def test_one_port_given_twice_is_an_error() -> None:
    with health.PortHold() as hold:
        port = hold.port
        errors = health.check_ports([Port("render API", port, "--render-port"), Port("app", port, "--app-port")])
    assert errors == [
        f"port {port} is given both to render API (--render-port) and to app (--app-port); change one of them"
    ]


def ephemeral_range() -> range:
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    return range(low, high + 1)


def test_port_hold_avoids_ports_already_chosen() -> None:
    """Avoid every port the kernel could hand out but a small window: every answer must come
    from the window. The window lies in the lower half of the range, where Linux picks
    the port of a socket with SO_REUSEADDR (as a hold is). Were ``avoid`` ignored, five
    answers in a window of 100 out of ~14,000 would be a one-in-10^10 coincidence."""
    ports = ephemeral_range()
    window = set(itertools.islice((p for p in ports[len(ports) // 4:] if not health.port_in_use(HOST, p, udp=True)),
                                  100))
    avoid = set(ports) - window
    chosen = []
    for _ in range(5):
        with health.PortHold(udp=True, avoid=avoid) as hold:
            chosen.append(hold.port)
    assert set(chosen) <= window, chosen


def test_a_held_port_refuses_connects_and_other_binders_but_admits_a_server_reusing_addresses() -> None:
    """What lets a test or the stack tell a program a port number: until the program
    binds it, nobody else can, and a client is refused as on a free port."""
    with health.PortHold() as hold:
        with socket.socket() as other, pytest.raises(OSError) as taken:
            other.bind((HOST, hold.port))  # no SO_REUSEADDR: refused
        assert taken.value.errno == errno.EADDRINUSE
        assert refused(hold.port)
        with socket.create_server((HOST, hold.port)) as server:  # SO_REUSEADDR, as servers set it
            with socket.create_connection((HOST, hold.port), timeout=30):
                server.accept()[0].close()
        assert refused(hold.port)  # still held after the server closed


def test_no_port_0_bind_is_given_a_held_port() -> None:
    """A bound socket that never listens keeps the port from every bind to port 0 (with or
    without SO_REUSEADDR) and from every connect's local port. Were it handed out, 500
    picks among 500 held ports out of ~28,000 would meet one with odds of 1 - e^-9."""
    with contextlib.ExitStack() as holds:
        held = {holds.enter_context(health.PortHold()).port for _ in range(500)}
        given = []
        for i in range(500):
            with socket.socket() as s:
                if i % 2:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((HOST, 0))
                else:
                    s.connect_ex((HOST, 9))  # the local port a connect picks (9: discard, refused)
                given.append(s.getsockname()[1])
    assert held.isdisjoint(given)


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == errno.ECONNREFUSED


def test_wait_until_stops_at_the_deadline_and_on_death() -> None:
    with pytest.raises(health.NotReady, match="render API was not ready within 0.2s"):
        health.wait_until(lambda: False, "render API", 0.2, interval=0.02)
    with pytest.raises(health.NotReady, match="daemon exited before it became ready"):
        health.wait_until(lambda: False, "daemon", 30, alive=lambda: False)
    assert health.wait_until(lambda: True, "app", 1) < 1


def test_http_and_mgmt_checks_on_a_closed_port() -> None:
    with health.PortHold() as closed:  # refuses connections, and nothing else can listen there
        assert health.http_status("127.0.0.1", closed.port, "/") is None
        assert health.mgmt_healthy("127.0.0.1", closed.port) is False
