"""What the TCP and Unix transports share: a stream socket opened on first send."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from django_statsd_push.client.transports.base import Transport

# Connect timeout, and how long to drop metrics after a failed connect instead of
# trying again on every request.
STREAM_TIMEOUT = 1.0
STREAM_RETRY_AFTER = 5.0
STREAM_PACKET_SIZE = 8192


class StreamTransport(Transport):
    """A stream socket, one newline-terminated chunk per send.

    Connects on first send (at most ``STREAM_TIMEOUT`` seconds, then no new attempt
    for ``STREAM_RETRY_AFTER`` seconds): use UDP where even that is too much.
    Subclasses say where to connect (``_address``).
    """

    packet_size = STREAM_PACKET_SIZE

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._retry_at = 0.0

    def _address(self) -> tuple[int, Any]:
        """``(family, address)`` to connect to now; OSError when there is none yet."""
        raise NotImplementedError

    def _open(self) -> socket.socket:
        family, address = self._address()
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(STREAM_TIMEOUT)
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        return sock

    def send(self, data: str) -> None:
        with self._lock:
            try:
                if self._sock is None:
                    if time.monotonic() < self._retry_at:
                        self.dropped += 1
                        return
                    self._sock = self._open()
                self._sock.sendall(data.encode("ascii") + b"\n")
            except (OSError, UnicodeError):
                self.dropped += 1
                self._retry_at = time.monotonic() + STREAM_RETRY_AFTER
                self._drop_socket()

    def _drop_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def reconnect(self, *_: Any) -> None:
        """Close the connection; the next send opens a new one (the address changed)."""
        with self._lock:
            self._drop_socket()
            self._retry_at = 0.0

    def close(self) -> None:
        with self._lock:
            self._drop_socket()
