"""Delivery to Carbon on its own thread: one persistent connection, a bounded buffer.

Why a thread: a flush (and so receiving) must never wait for Carbon. ``send`` only
appends to the buffer. The writer thread connects, writes, and when Carbon is down
keeps the points and retries with exponential backoff; beyond ``max_lines`` the oldest
points are dropped and counted (``on_drop``), so memory stays bounded.

Delivery is at least once: a batch whose write fails is put back at the front and
written again after reconnecting (a point written twice is harmless: Carbon keeps the
last value for a timestamp). Before each write the socket is checked for EOF, since
Carbon never talks on its line port: that catches a restarted Carbon before points are
written into a dead connection.
"""

from __future__ import annotations

import logging
import pickle
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

Line = tuple[str, str, int]


def encode(lines: list[Line], protocol: str = "text") -> bytes:
    """Carbon's plaintext (``name value ts\\n``) or pickle (length-prefixed list) format."""
    if protocol == "pickle":
        body = pickle.dumps([(n, (t, float(v))) for n, v, t in lines], protocol=2)
        return struct.pack("!L", len(body)) + body
    return "".join([f"{n} {v} {t}\n" for n, v, t in lines]).encode()


class CarbonClient:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2003,
        protocol: str = "text",
        max_lines: int = 1_000_000,
        reconnect_min: float = 0.1,
        reconnect_max: float = 30.0,
        timeout: float = 10.0,
        on_drop: Callable[[str, float], None] | None = None,
    ) -> None:
        if protocol not in ("text", "pickle"):
            raise ValueError('protocol must be "text" or "pickle"')
        self.address = (host, port)
        self.protocol = protocol
        self.max_lines = max_lines
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        self.timeout = timeout
        self.on_drop = on_drop
        self.batch_size = 500 if protocol == "pickle" else 5000
        self._buffer: deque[Line] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="carbon-writer", daemon=True)
        self._busy = 0  # lines taken from the buffer but not yet written
        # counters for the management interface
        self.sent_lines = 0
        self.dropped_lines = 0
        self.connects = 0
        self.last_error = ""
        self._thread.start()

    # --- called from other threads -------------------------------------------------
    def send(self, lines: list[Line]) -> None:
        """Queue lines for Carbon; never blocks on the network."""
        with self._cond:
            self._buffer.extend(lines)
            excess = len(self._buffer) - self.max_lines
            if excess > 0:
                for _ in range(excess):
                    self._buffer.popleft()
                self.dropped_lines += excess
            self._cond.notify()
        if excess > 0:
            log.warning("Carbon buffer full: dropped the %d oldest points", excess)
            if self.on_drop is not None:
                self.on_drop("carbon_points_dropped", excess)

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._buffer) + self._busy

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def wait_sent(self, timeout: float) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._buffer or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for up to ``timeout`` seconds), then disconnect."""
        self.wait_sent(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout + self.timeout)
        self._disconnect()

    # --- the writer thread -------------------------------------------------------
    def _run(self) -> None:
        backoff = self.reconnect_min
        while True:
            with self._cond:
                while not self._buffer and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                batch = [self._buffer.popleft() for _ in range(min(self.batch_size, len(self._buffer)))]
                self._busy = len(batch)
            try:
                sock = self._connection()
                sock.sendall(encode(batch, self.protocol))
            except OSError as exc:
                if not self.last_error or backoff >= self.reconnect_max:  # not at every quick retry
                    log.warning("Carbon %s:%s unavailable (%s); retrying in %.1fs", *self.address, exc, backoff)
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._disconnect()
                with self._cond:
                    self._buffer.extendleft(reversed(batch))
                    self._busy = 0
                    self._cond.notify_all()
                    if self._closing:
                        return
                    self._cond.wait(backoff)
                backoff = min(backoff * 2, self.reconnect_max)
                continue
            backoff = self.reconnect_min
            self.last_error = ""
            with self._cond:
                self.sent_lines += len(batch)
                self._busy = 0
                self._cond.notify_all()

    def _connection(self) -> socket.socket:
        sock = self._sock
        if sock is not None:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:  # Carbon never writes: readable means closed (or reset)
                try:
                    peer_closed = sock.recv(1) == b""
                except OSError:
                    peer_closed = True
                if peer_closed:
                    self._disconnect()
                    sock = None
        if sock is None:
            sock = socket.create_connection(self.address, timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self.connects += 1
            log.info("connected to Carbon at %s:%s", *self.address)
        return sock

    def _disconnect(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
