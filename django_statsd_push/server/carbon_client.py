"""Delivery to Carbon on its own thread: one persistent connection, a bounded outage buffer.

Why a thread: a flush (and so receiving) must never wait for Carbon. ``send`` only
appends to the buffer; the writer thread connects and writes. While Carbon takes the
lines, nothing is dropped however many one flush has. When a write fails (Carbon down,
refusing, or not reading for ``timeout`` seconds) an *outage* begins: the points wait,
the writer retries with exponential backoff up to ``reconnect_max``, and from then on
at most ``max_lines`` points are kept, the oldest dropped and counted (``on_drop``),
so memory stays bounded; lines under the ``protect`` prefix (the daemon's own metrics)
go last. An outage is logged twice: when it begins (WARNING) and when Carbon takes
points again (INFO, with how many were buffered and how many dropped).

What it queues is text, Carbon's plaintext lines (``name value ts\n``), cut into pieces
of about ``PIECE_BYTES``: a flush of two million lines is two million tuples of two
strings and an int as lines (about 190 bytes each, and a Python loop to write them),
but 130 MB of text as pieces that go to the socket as they are. The pickle protocol
parses a piece back when it writes it (its users pay for it, not everyone's flush).

Delivery is at least once: a batch whose write fails is put back at the front and
written again after reconnecting (a point written twice is harmless: Carbon keeps the
last value for a timestamp). Before each write the socket is checked for EOF, since
Carbon never talks on its line port: that catches a restarted Carbon before points are
written into a dead connection.

``close(timeout)`` is bounded: the writer makes one attempt to deliver what is queued,
with connect and write timeouts cut to what is left of ``timeout``; what it could not
deliver is counted as dropped and logged, never waited for.
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
from collections.abc import Callable, Iterable, Iterator

log = logging.getLogger(__name__)

Line = tuple[str, str, int]
PIECE_BYTES = 1 << 18  # one write; small enough that a slow Carbon meets the timeout per piece
PICKLE_LINES = 500  # points per pickle message (carbon refuses messages over 1 MiB)


def lines_of(text: str | Iterable[str]) -> list[Line]:
    """Plaintext lines (one text, or pieces of whole lines) as ``(name, value, ts)``."""
    if not isinstance(text, str):
        text = "".join(text)
    out = []
    for line in text.split("\n"):
        if line:
            name, value, ts = line.split(" ")
            out.append((name, value, int(ts)))
    return out


def pieces(text: str, size: int = PIECE_BYTES) -> Iterator[str]:
    """``text`` (whole lines) cut after a newline about every ``size`` characters."""
    start, end_of_text = 0, len(text)
    while start < end_of_text:
        end = text.find("\n", start + size) + 1 or end_of_text
        yield text[start:end]
        start = end


def encode(text: str, protocol: str = "text") -> bytes:
    """Plaintext lines as Carbon's plaintext or pickle (length-prefixed lists) protocol."""
    if protocol != "pickle":
        return text.encode()
    points = [(n, (t, float(v))) for n, v, t in lines_of(text)]
    out = []
    for start in range(0, len(points), PICKLE_LINES):
        body = pickle.dumps(points[start:start + PICKLE_LINES], protocol=2)
        out += (struct.pack("!L", len(body)), body)
    return b"".join(out)


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
        protect: str = "",
    ) -> None:
        """``protect``: the prefix of the lines to drop last in an outage, the daemon's own
        metrics, which say what is being lost (``statsd``: names starting ``statsd.`` or
        holding ``.statsd.``, in whatever namespace)."""
        self.protect = protect
        self.reconnect_min = reconnect_min
        self.timeout = timeout
        self.on_drop = on_drop
        self._buffer: deque[str] = deque()  # pieces of whole lines, oldest first
        self._queued = 0  # lines in _buffer
        self._cond = threading.Condition()
        self._closing = False
        self._deadline = 0.0  # monotonic; set by close()
        self._sock: socket.socket | None = None
        self._sock_for: tuple[tuple[str, int], str] | None = None  # (address, protocol) of _sock
        self._busy = 0  # lines taken from the buffer but not yet written
        self._outage: tuple[float, int] | None = None  # (began, dropped_lines then) while Carbon is down
        self.configure(host, port, protocol, max_lines, reconnect_max)
        # for the management interface and etsy's graphiteStats
        self.sent_lines = 0
        self.dropped_lines = 0
        self.connects = 0
        self.last_error = ""
        self.last_written = 0  # unix time of the last successful write (0: never)
        self.last_failed = 0  # unix time of the last failed one
        self._thread = threading.Thread(target=self._run, name="carbon-writer", daemon=True)
        self._thread.start()

    def configure(self, host: str, port: int, protocol: str, max_lines: int, reconnect_max: float) -> None:
        """(Re)configure (SIGHUP); a new address or protocol applies from the next write,
        on a new connection, and the points waiting go there."""
        if protocol not in ("text", "pickle"):
            raise ValueError('protocol must be "text" or "pickle"')
        with self._cond:
            self.address = (host, port)
            self.protocol = protocol
            self.max_lines = max_lines
            self.reconnect_max = reconnect_max
            excess = self._trim()
            self._cond.notify_all()
        self._count_drops(excess)

    # --- called from other threads -------------------------------------------------
    def send(self, text: str | Iterable[str]) -> None:
        """Queue plaintext lines (one text or several, each of whole lines) for Carbon;
        never blocks on the network."""
        cut = [piece for chunk in ([text] if isinstance(text, str) else text) for piece in pieces(chunk)]
        count = sum(piece.count("\n") for piece in cut)
        with self._cond:
            self._buffer.extend(cut)
            self._queued += count
            excess = self._trim()
            self._cond.notify()
        self._count_drops(excess)

    def _trim(self) -> int:
        """During an outage, drop the oldest points beyond ``max_lines``, protected ones
        last (lock held); returns how many were dropped.

        A piece with no protected line that goes whole is dropped as it is; others are
        taken apart line by line, and their protected lines, with the rest of the last
        one, go back to the front as one piece.
        """
        if self._outage is None:
            return 0
        excess = self._queued - self.max_lines
        if excess <= 0:
            return 0
        buffer = self._buffer
        own = self.protect + "." if self.protect else None
        inside = "." + own if own else None
        kept: list[str] = []  # oldest first
        dropped = 0
        while dropped < excess and buffer:
            piece = buffer.popleft()
            lines = piece.count("\n")
            if dropped + lines <= excess and (own is None or own not in piece):
                dropped += lines  # no line of it protected: dropped whole, not taken apart
                continue
            for line in piece.split("\n")[:-1]:
                name = line.partition(" ")[0]
                if dropped < excess and not (own and (name.startswith(own) or inside in name)):
                    dropped += 1
                else:
                    kept.append(line)
        if dropped < excess:  # nothing left but protected lines: the oldest of them go too
            del kept[:excess - dropped]
            dropped = excess
        if kept:
            buffer.appendleft("\n".join(kept) + "\n")
        self._queued -= dropped
        self.dropped_lines += dropped
        return dropped

    def _count_drops(self, dropped: int) -> None:
        if dropped > 0 and self.on_drop is not None:
            self.on_drop("carbon_points_dropped", dropped)

    @property
    def pending(self) -> int:
        with self._cond:
            return self._queued + self._busy

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
        """One attempt, of at most ``timeout`` seconds, to write what is queued; then disconnect.

        What is left is counted in ``dropped_lines`` (and ``on_drop``) and logged.
        """
        with self._cond:
            self._deadline = time.monotonic() + timeout
            self._closing = True
            self._cond.notify_all()  # out of a backoff wait: the last attempt starts now
        self._thread.join(max(0.0, timeout))
        self._disconnect()  # a write still blocked fails now; the thread is a daemon anyway
        with self._cond:
            left = self._queued + self._busy
            self._buffer.clear()
            self._queued = self._busy = 0
            self.dropped_lines += left
        if left:
            log.warning("stopping: %d points not delivered to Carbon %s:%s (%s); dropped", left, *self.address,
                        self.last_error or f"not written within {timeout:g}s")
            self._count_drops(left)

    # --- the writer thread -------------------------------------------------------
    def _run(self) -> None:
        backoff = self.reconnect_min
        while True:
            with self._cond:
                while not self._buffer and not self._closing:
                    self._cond.wait()
                if not self._buffer:  # closing, everything written
                    return
                batch = self._buffer.popleft()
                self._busy = batch.count("\n")
                self._queued -= self._busy
                address, protocol, closing = self.address, self.protocol, self._closing
            try:
                timeout = max(0.01, self._deadline - time.monotonic()) if closing else self.timeout
                sock = self._connection(address, protocol, timeout)
                sock.settimeout(timeout)
                sock.sendall(encode(batch, protocol))
            except OSError as exc:
                self._disconnect()
                with self._cond:
                    self._buffer.appendleft(batch)
                    self._queued += self._busy
                    self._busy = 0
                    if self._outage is None:
                        self._outage = (time.monotonic(), self.dropped_lines)
                        log.warning("Carbon %s:%s unavailable (%s): keeping up to %d points, retrying "
                                    "(backoff up to %gs)", *address, exc, self.max_lines, self.reconnect_max)
                    excess = self._trim()
                self._count_drops(excess)
                self.last_failed = round(time.time())
                self.last_error = f"{type(exc).__name__}: {exc}"
                with self._cond:
                    self._cond.notify_all()
                    if not self._closing:
                        self._cond.wait(backoff)
                if closing:  # the last attempt failed: close() counts what is left
                    return
                backoff = min(backoff * 2, self.reconnect_max)
                continue
            backoff = self.reconnect_min
            self.last_written = round(time.time())
            with self._cond:
                self.sent_lines += self._busy
                waiting = self._queued + self._busy
                self._busy = 0
                outage, self._outage = self._outage, None
                self._cond.notify_all()
            if outage is not None:
                log.info("Carbon %s:%s takes points again after %.1fs: delivering %d buffered points, "
                         "%d dropped during the outage", *address, time.monotonic() - outage[0], waiting,
                         self.dropped_lines - outage[1])

    def _connection(self, address: tuple[str, int], protocol: str, timeout: float) -> socket.socket:
        sock = self._sock
        if sock is not None and self._sock_for != (address, protocol):  # reconfigured
            self._disconnect()
            sock = None
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
            sock = socket.create_connection(address, timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock, self._sock_for = sock, (address, protocol)
            self.connects += 1
            log.info("connected to Carbon at %s:%s", *address)
        return sock

    def _disconnect(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a write blocked in another thread
            except OSError:
                pass
            sock.close()
