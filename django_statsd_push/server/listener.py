"""Sockets in: statsd over UDP (one thread, blocking reads) and newline-framed TCP.

The UDP thread does nothing but ``recv`` and hand the datagram to ``ingest``: a big
``SO_RCVBUF`` absorbs bursts while the flusher holds the aggregator lock, and the
kernel's own drop counter for this socket (``/proc/net/udp``) is read so that losses
we never saw still show up as a metric.

``LineServer`` is a small selector loop for newline-framed TCP, shared by the statsd
TCP input and the management interface.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def kernel_drops(inode: str) -> int | None:
    """The kernel's drop count for a UDP socket (``/proc/net/udp*`` ``drops``), if Linux."""
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f)
                for row in f:
                    cols = row.split()
                    if len(cols) >= 13 and cols[9] == inode:
                        return int(cols[12])
        except (OSError, StopIteration, ValueError):
            continue
    return None


class UdpListener:
    """Receives datagrams on its own thread and passes each to ``ingest(data)``."""

    def __init__(self, host: str, port: int, ingest: Callable[[bytes], None], *,
                 receive_buffer: int = 8 << 20, max_packet_size: int = 65535,
                 count: Callable[[str, float], None] | None = None) -> None:
        self.ingest = ingest
        self.count = count or (lambda stat, n: None)
        self.max_packet_size = max_packet_size
        self.sock = socket.socket(_family(host), socket.SOCK_DGRAM)
        self.wanted_buffer = receive_buffer
        self.receive_buffer = self._grow_buffer(receive_buffer)
        self.sock.bind((host, port))
        self.address = self.sock.getsockname()[:2]
        self._stopping = False
        self._inode = str(os.fstat(self.sock.fileno()).st_ino)
        self._last_drops = self._base_drops = kernel_drops(self._inode) or 0
        self._thread = threading.Thread(target=self._run, name="statsd-udp", daemon=True)

    def _grow_buffer(self, wanted: int) -> int:
        for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
            if option is None:
                continue
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, option, wanted)
                break
            except OSError:
                continue  # SO_RCVBUFFORCE needs CAP_NET_ADMIN
        actual = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if actual < wanted:  # Linux reports twice what it grants
            log.warning(
                "UDP receive buffer is %d bytes, not the %d asked for: the kernel caps it "
                "(raise net.core.rmem_max, e.g. sysctl -w net.core.rmem_max=%d)", actual, wanted, wanted)
        return actual

    def configure(self, max_packet_size: int, receive_buffer: int) -> None:
        """New limits while running (SIGHUP): the next datagram is checked against
        ``max_packet_size``; a changed ``receive_buffer`` is asked of the kernel again."""
        self.max_packet_size = max_packet_size
        if receive_buffer != self.wanted_buffer:
            self.wanted_buffer = receive_buffer
            self.receive_buffer = self._grow_buffer(receive_buffer)

    def start(self) -> UdpListener:
        self._thread.start()
        return self

    def _run(self) -> None:
        recv, ingest = self.sock.recv, self.ingest
        size = 65536  # more than any UDP payload: a datagram is never cut short
        while True:
            try:
                data = recv(size)
            except OSError:
                if self._stopping:
                    return
                continue
            if self._stopping:
                return
            if len(data) > self.max_packet_size:
                self.count("packets_too_large", 1)
                continue
            try:
                ingest(data)
            except Exception:  # a bug must not end receiving: log it, count it, go on
                log.exception("error ingesting a datagram")
                self.count("ingest_errors", 1)

    def new_kernel_drops(self) -> int:
        """Drops by the kernel since the last call (receive buffer full)."""
        drops = kernel_drops(self._inode)
        if drops is None:
            return 0
        new, self._last_drops = drops - self._last_drops, drops
        return max(new, 0)

    def total_kernel_drops(self) -> int:
        drops = kernel_drops(self._inode)
        return 0 if drops is None else drops - self._base_drops

    def stop(self) -> None:
        self._stopping = True
        try:  # wake the blocked recv: closing the socket does not
            with socket.socket(self.sock.family, socket.SOCK_DGRAM) as s:
                s.sendto(b"", self.address)
        except OSError:
            pass
        self._thread.join(5)

    def close(self) -> None:
        """Close the socket (after ``stop``, once the last kernel drops are read)."""
        self.sock.close()


class LineServer:
    """Newline-framed TCP on one selector thread.

    ``handle(chunk, reply)`` gets whole lines (a chunk ending in ``\\n``) and may call
    ``reply(bytes)``; it returns False to close the connection. A connection sending
    more than ``max_line`` bytes without a newline has that data dropped and counted.
    """

    def __init__(self, host: str, port: int, handle: Callable[[bytes, Callable[[bytes], None]], bool],
                 *, name: str, max_line: int = 65536,
                 count: Callable[[str, float], None] | None = None, sock: socket.socket | None = None) -> None:
        """``sock``: a listening socket bound by the caller (a Unix stream socket,
        ``unix_listener.py``) instead of a TCP one on ``host``/``port``."""
        self.handle = handle
        self.max_line = max_line
        self.count = count or (lambda stat, n: None)
        self.name = name
        self.sock = sock or socket.create_server((host, port), family=_family(host), backlog=128)
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()[:2]
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.sock, selectors.EVENT_READ, None)
        self._wake_r, self._wake_w = socket.socketpair()
        self.selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._buffers: dict[socket.socket, bytearray] = {}
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> LineServer:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopping:
            for key, _ in self.selector.select():
                if key.data == "wake":
                    return
                if key.data is None:
                    self._accept()
                else:
                    self._read(key.fileobj)  # type: ignore[arg-type]

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        conn.setblocking(True)
        conn.settimeout(5)  # for replies only; reads happen when the selector says so
        self._buffers[conn] = bytearray()
        self.selector.register(conn, selectors.EVENT_READ, "conn")

    def _close(self, conn: socket.socket) -> None:
        self.selector.unregister(conn)
        self._buffers.pop(conn, None)
        conn.close()

    def _read(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        buffer = self._buffers[conn]
        buffer += data
        end = buffer.rfind(b"\n")
        if end < 0:
            if len(buffer) > self.max_line:
                self.count("lines_too_long", 1)
                buffer.clear()
            return
        chunk = bytes(buffer[: end + 1])
        del buffer[: end + 1]

        def reply(payload: bytes) -> None:
            try:
                conn.sendall(payload)
            except OSError:
                pass

        try:
            keep = self.handle(chunk, reply)
        except Exception:
            log.exception("%s: error handling input", self.name)
            keep = True
        if not keep:
            self._close(conn)

    def stop(self) -> None:
        self._stopping = True
        if self._thread.is_alive():
            self._wake_w.send(b"x")
            self._thread.join(5)
        self.close()

    def close(self) -> None:
        for conn in list(self._buffers):
            self._close(conn)
        self.selector.close()
        self.sock.close()
        self._wake_r.close()
        self._wake_w.close()
