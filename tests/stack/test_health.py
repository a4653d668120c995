"""Port checks and readiness polling on real sockets."""

from __future__ import annotations

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
        free = health.free_port()
        errors = health.check_ports([Port("render API", taken, "--render-port"), Port("app", free, "--app-port")])
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
    port = health.free_port()
    errors = health.check_ports([Port("render API", port, "--render-port"), Port("app", port, "--app-port")])
    assert errors == [
        f"port {port} is given both to render API (--render-port) and to app (--app-port); change one of them"
    ]


def ephemeral_range() -> range:
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    return range(low, high + 1)


def test_free_port_avoids_ports_already_chosen() -> None:
    """Avoid every port the kernel could hand out but a small window: every answer must come
    from the window. Were ``avoid`` ignored, five answers in a window of 100 out of ~28,000
    would be a one-in-10^12 coincidence."""
    ports = ephemeral_range()
    window = set(itertools.islice((p for p in ports[len(ports) // 2:] if not health.port_in_use(HOST, p, udp=True)),
                                  100))
    avoid = set(ports) - window
    chosen = [health.free_port(udp=True, avoid=avoid) for _ in range(5)]
    assert set(chosen) <= window, chosen


def test_wait_until_stops_at_the_deadline_and_on_death() -> None:
    with pytest.raises(health.NotReady, match="render API was not ready within 0.2s"):
        health.wait_until(lambda: False, "render API", 0.2, interval=0.02)
    with pytest.raises(health.NotReady, match="daemon exited before it became ready"):
        health.wait_until(lambda: False, "daemon", 30, alive=lambda: False)
    assert health.wait_until(lambda: True, "app", 1) < 1


def test_http_and_mgmt_checks_on_a_closed_port() -> None:
    port = health.free_port()
    assert health.http_status("127.0.0.1", port, "/") is None
    assert health.mgmt_healthy("127.0.0.1", port) is False
