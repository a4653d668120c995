"""``STATSD_CLIENT = "udp"`` (the default): a connected, non-blocking UDP socket."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from django_statsd_push.client.resolver import Resolver
from django_statsd_push.client.transports.base import Transport


class UDPTransport(Transport):
    """One ``send`` system call per datagram and no lookup on the way.

    Why connected: the kernel then keeps the address, so a send is one system call,
    and an ICMP "port unreachable" surfaces as ``ECONNREFUSED``, which is counted in
    ``dropped`` like any other failure instead of being raised.

        >>> transport = UDPTransport("127.0.0.1", 8125)
        >>> transport.send("orders:1|c")
    """

    def __init__(
        self,
        host: str,
        port: int,
        ipv6: bool = False,
        packet_size: int = 512,
        refresh: float = 60.0,
        lookup: Callable[..., list] = socket.getaddrinfo,
    ) -> None:
        self.packet_size = packet_size
        self._sock: socket.socket | None = None
        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        self.resolver = Resolver(
            host, port, family, socket.SOCK_DGRAM, refresh, self._connect, lookup
        )
        self.resolver.start()

    def _connect(self, family: int, address: Any) -> None:
        sock = self._sock
        if sock is not None and sock.family == family:
            # Re-pointing the same socket: concurrent senders never see it closed.
            sock.connect(address)
            return
        new = socket.socket(family, socket.SOCK_DGRAM)
        new.setblocking(False)
        new.connect(address)
        self._sock = new
        if sock is not None:
            sock.close()

    def send(self, data: str) -> None:
        sock = self._sock
        if sock is None:
            self.dropped += 1
            return
        try:
            sock.send(data.encode("ascii"))
        except (OSError, UnicodeError):
            # ECONNREFUSED after an ICMP port unreachable, EAGAIN on a full buffer,
            # EBADF after close: a metric is not worth an exception.
            self.dropped += 1

    def close(self) -> None:
        self.resolver.close()
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
