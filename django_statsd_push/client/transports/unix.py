"""``STATSD_CLIENT = "unix"``: a Unix stream socket (pystatsd's UnixSocketStatsClient)."""

from __future__ import annotations

import socket
from typing import Any

from django_statsd_push.client.transports.stream import StreamTransport


class UnixTransport(StreamTransport):
    """Newline-terminated lines to the daemon's socket at ``STATSD_UNIX_SOCKET``.

        >>> UnixTransport("/run/statsd.sock").send("orders:1|c")
    """

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__()

    def _address(self) -> tuple[int, Any]:
        return socket.AF_UNIX, self.path
