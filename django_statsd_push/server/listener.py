"""Sockets in: statsd over UDP (one thread) and newline-framed TCP.

The UDP thread does nothing but receive and hand each datagram to ``ingest``: a big
``SO_RCVBUF`` absorbs bursts while the flusher holds the aggregator lock, and the
kernel's own drop counter for this socket (``/proc/net/udp``) is read so that losses
we never saw still show up as a metric. It reads through ``datagrams.DatagramReader``,
which keeps up while a flush keeps the interpreter busy for seconds: in each turn it
holds the interpreter lock it first moves every queued datagram into a bounded
backlog, with reads that do not give the lock up, and parses afterwards (see there).

``LineServer`` is a small selector loop for newline-framed TCP, shared by the statsd
TCP input and the management interface.
"""

from __future__ import annotations

import fcntl
import logging
import os
import selectors
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable

from django_statsd_push.server.datagrams import DatagramReader

log = logging.getLogger(__name__)

_SIOCGSTAMPNS = 0x8907  # Linux: the arrival time of the last datagram read from a socket
_TIMESPEC = struct.Struct("@ql")


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
    """Receives datagrams on its own thread (or a worker's loop, ``read_queued``) and
    passes each to ``ingest(data)``; reading is ``DatagramReader``'s."""

    def __init__(self, host: str, port: int, ingest: Callable[[bytes], None], *,
                 receive_buffer: int = 8 << 20, max_packet_size: int = 65535,
                 count: Callable[[str, float], None] | None = None, reuse_port: bool = False) -> None:
        """``reuse_port``: share the port with other sockets of this user (SO_REUSEPORT),
        as the daemon's worker processes do; the kernel spreads senders over them."""
        self.sock = socket.socket(_family(host), socket.SOCK_DGRAM)
        if reuse_port:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.wanted_buffer = receive_buffer
        self.receive_buffer = self._grow_buffer(receive_buffer)
        self.sock.bind((host, port))
        self.address = self.sock.getsockname()[:2]
        self.reader = DatagramReader(self.sock, ingest, max_packet_size=max_packet_size,
                                     count=count or (lambda stat, n: None), name=f"UDP port {self.address[1]}")
        self._inode = str(os.fstat(self.sock.fileno()).st_ino)
        self._last_drops = self._base_drops = kernel_drops(self._inode) or 0
        self._thread = threading.Thread(target=self.reader.run, name="statsd-udp", daemon=True)
        self._stamps = True
        self.arrival_ns()  # the first ask turns the kernel's stamping on (and finds nothing)

    def arrival_ns(self) -> int:
        """When the kernel received the datagram read last (``time.time_ns`` scale).

        Orders gauge operations across worker processes. Costs one ``ioctl``; where
        the kernel cannot tell, the current time.
        """
        stamp = self._kernel_stamp()
        return time.time_ns() if stamp is None else stamp

    def _kernel_stamp(self) -> int | None:
        if self._stamps:
            try:
                sec, nsec = _TIMESPEC.unpack(fcntl.ioctl(self.sock.fileno(), _SIOCGSTAMPNS, bytes(_TIMESPEC.size)))
                return sec * 1_000_000_000 + nsec
            except FileNotFoundError:  # nothing read yet
                pass
            except OSError:
                self._stamps = False  # not Linux, or not supported
        return None

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

    def read_queued(self, limit: int = 256) -> int:
        """Ingest up to ``limit`` datagrams already queued, without waiting; how many.

        A worker process's loop (one thread: no lock per datagram, and its answers to
        the daemon fall between datagrams, never inside one). ``arrival_ns`` then
        tells when the last of them arrived.
        """
        return self.reader.read_queued(limit)

    def processed_through(self) -> int:
        """A time (``arrival_ns`` scale) up to which every datagram that reached this
        socket has been read: now if nothing is queued, else the arrival of the last
        one read. For a reader between datagrams (``read_queued``)."""
        queued = struct.unpack("i", fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]
        if not queued:
            return time.time_ns()
        stamp = self._kernel_stamp()
        if stamp is not None:
            return stamp
        # No kernel stamps: operations were stamped when parsed, all before now.
        # Else nothing has been read yet, so nothing is final.
        return time.time_ns() if not self._stamps else 0

    def configure(self, max_packet_size: int, receive_buffer: int) -> None:
        """New limits while running (SIGHUP): the next datagram is checked against
        ``max_packet_size``; a changed ``receive_buffer`` is asked of the kernel again."""
        self.reader.max_packet_size = max_packet_size
        if receive_buffer != self.wanted_buffer:
            self.wanted_buffer = receive_buffer
            self.receive_buffer = self._grow_buffer(receive_buffer)

    def start(self) -> UdpListener:
        self._thread.start()
        return self

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
        """Stop receiving once the datagrams already queued are ingested.

        Shutting the socket for reading wakes the reader's ``poll`` (closing it does
        not); Linux still hands over what was queued. A wake-up datagram sent to the
        port could land in another worker's socket.
        """
        self.reader.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass  # ENOTCONN for an unconnected UDP socket, after waking the reader
        if self._thread.is_alive():
            self._thread.join(5)

    def close(self) -> None:
        """Close the socket (after ``stop``, once the last kernel drops are read).

        Not while the reader thread still runs (``stop`` gave up waiting for it: senders
        kept it busy): its reads name the socket by descriptor number, which the next
        file opened could take. The process is ending then; the socket goes with it.
        """
        if not self._thread.is_alive():
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

    def _receive(self, conn: socket.socket) -> bytes | None:
        """What the connection sent, or None once it is closed (then it is unregistered)."""
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return None
        return data

    def _read(self, conn: socket.socket) -> None:
        data = self._receive(conn)
        if data is None:
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
