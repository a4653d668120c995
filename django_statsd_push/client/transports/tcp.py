"""``STATSD_CLIENT = "tcp"``: the daemon's TCP listener, address kept by the resolver."""

from __future__ import annotations

import socket
from typing import Any

from django_statsd_push.client.resolver import Resolver
from django_statsd_push.client.transports.stream import StreamTransport


class TCPTransport(StreamTransport):
    """Newline-terminated lines over TCP (``statsd-push serve`` and etsy statsd accept it).

        >>> TCPTransport("127.0.0.1", 8125).send("orders:1|c")
    """

    def __init__(self, host: str, port: int, ipv6: bool = False, refresh: float = 60.0) -> None:
        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        super().__init__()
        self.resolver = Resolver(
            host, port, family, socket.SOCK_STREAM, refresh, self.reconnect
        )
        self.resolver.start()

    def _address(self) -> tuple[int, Any]:
        if self.resolver.address is None:
            raise OSError("statsd host not resolved")
        return self.resolver.family, self.resolver.address

    def close(self) -> None:
        self.resolver.close()
        super().close()
