"""Fixtures for the Django client tests: a real UDP receiver on 127.0.0.1, port 0."""

from __future__ import annotations

import socket

import pytest

from django_statsd_push.client import statsd


class Receiver:
    """A UDP socket the tests read real datagrams from."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def datagram(self, timeout: float = 2.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(65535).decode("ascii")

    def datagrams(self, timeout: float = 0.2) -> list[str]:
        """Everything that has arrived; waits ``timeout`` for the first one only."""
        out = []
        try:
            out.append(self.datagram(timeout))
            self.sock.setblocking(False)
            while True:
                out.append(self.sock.recv(65535).decode("ascii"))
        except (BlockingIOError, TimeoutError):
            pass
        return out

    def lines(self, timeout: float = 0.2) -> list[str]:
        return [line for d in self.datagrams(timeout) for line in d.split("\n")]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def udp(settings, receiver, statsd_send):
    """The global ``statsd`` sends real UDP to ``receiver``."""
    settings.STATSD_CLIENT = "udp"
    settings.STATSD_HOST = "127.0.0.1"
    settings.STATSD_PORT = receiver.port
    yield receiver
    statsd.reset()


@pytest.fixture(autouse=True)
def _fresh_client():
    # Each test starts from the settings it sets; the socket is closed afterwards.
    statsd.reset()
    yield
    statsd.reset()
