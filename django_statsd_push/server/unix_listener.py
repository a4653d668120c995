"""Sockets in over Unix domain sockets, beside UDP and TCP.

Two kinds, because the clients teams run use two:

* datagram (``unix_dgram_path``): DogStatsD's mode (Datadog's clients with
  ``socket_path=``); each datagram is one packet, exactly as over UDP. Unlike UDP, a
  full receive queue makes the sender wait or fail, so nothing is lost unseen here.
* stream (``unix_stream_path``): pystatsd's ``UnixSocketStatsClient`` and this
  project's ``unix`` transport; newline-framed lines, read by the TCP input's
  ``LineServer`` (same line limit, same ``lines_too_long`` count). Datadog's clients
  on a stream socket send length-prefixed packets instead: each connection's framing
  is told from its first bytes.

The socket file is the daemon's: a stale one (nobody answers on it) is replaced at
start, a live one or a file that is not a socket is refused, and at stop the file is
removed only if it is still the one this daemon bound. Its mode (default 0o660) and
group are set right after the bind; until then the process umask applies, and
connecting needs write permission, so a usual umask lets no one else in meanwhile.
"""

from __future__ import annotations

import errno
import grp
import logging
import os
import socket
import stat
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from django_statsd_push.server.config import ConfigError
from django_statsd_push.server.datagrams import DatagramReader
from django_statsd_push.server.listener import LineServer

if TYPE_CHECKING:
    from django_statsd_push.server.config import Settings

log = logging.getLogger(__name__)

def group_id(group: str) -> int:
    """A group name or number -> its id; ConfigError naming the setting when unknown."""
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ConfigError(f"unix_socket_group: there is no group named {group!r}") from None


def _clear_stale(path: str, kind: int) -> None:
    """Remove a socket file nobody listens on; refuse a live socket or any other file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(f"{path} exists and is not a socket: not replacing it")
    with socket.socket(socket.AF_UNIX, kind) as probe:
        probe.settimeout(1)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            log.info("replacing the stale socket file %s", path)
            os.unlink(path)
            return
        except OSError as exc:
            if exc.errno != errno.EPROTOTYPE:  # EPROTOTYPE: a live socket of the other kind
                raise
    raise OSError(f"{path} is in use by another process")


class SocketFile:
    """The filesystem side of one bound Unix socket: claimed, permissions, removed."""

    def __init__(self, sock: socket.socket, path: str, mode: int, group: str | None) -> None:
        gid = group_id(group) if group else None  # before touching the filesystem
        _clear_stale(path, sock.type)
        try:
            sock.bind(path)
        except OSError as exc:  # a missing directory, a path over 107 bytes: name the path
            raise OSError(f"cannot bind the Unix socket {path}: {exc.strerror or exc}") from exc
        self.path = path
        self.identity = self._identity()
        try:
            os.chmod(path, mode)
            if gid is not None:
                os.chown(path, -1, gid)
        except OSError:
            self.remove()
            raise
        self.identity = self._identity()

    def _identity(self) -> tuple[int, int, int]:
        """Which file this is: the inode number alone may be reused at once by a successor."""
        st = os.lstat(self.path)
        return st.st_dev, st.st_ino, st.st_ctime_ns

    def remove(self) -> None:
        """Unlink the file if it is still ours (a successor may have replaced it)."""
        try:
            if self._identity() == self.identity:
                os.unlink(self.path)
        except FileNotFoundError:
            pass


def _bound(kind: int, path: str, mode: int, group: str | None) -> tuple[socket.socket, SocketFile]:
    sock = socket.socket(socket.AF_UNIX, kind)
    try:
        return sock, SocketFile(sock, path, mode, group)
    except BaseException:
        sock.close()
        raise


QLEN_SYSCTL = "/proc/sys/net/unix/max_dgram_qlen"
QLEN_WANTED = 512


def datagram_queue_length() -> int | None:
    """How many datagrams Linux queues on a Unix socket (``net.unix.max_dgram_qlen``)."""
    try:
        with open(QLEN_SYSCTL) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


class UnixListener(Protocol):
    path: str
    kind: str  # "datagram" or "stream"

    def start(self) -> UnixListener: ...

    def configure(self, max_packet_size: int) -> None: ...

    def stop(self) -> None: ...


class UnixDatagramListener:
    """One thread reading datagrams and passing each to ``ingest(data)``; reading is
    ``DatagramReader``'s, as for UDP (so a busy interpreter does not keep senders waiting)."""

    kind = "datagram"

    def __init__(self, path: str, ingest: Callable[[bytes], None], *, max_packet_size: int = 65535,
                 count: Callable[[str, float], None] | None = None, mode: int = 0o660,
                 group: str | None = None) -> None:
        self.path = path
        self.sock, self.file = _bound(socket.SOCK_DGRAM, path, mode, group)
        self.reader = DatagramReader(self.sock, ingest, max_packet_size=max_packet_size,
                                     count=count or (lambda stat, n: None), name=path)
        self.queue_length = datagram_queue_length()
        if self.queue_length is not None and self.queue_length < QLEN_WANTED:
            # Not a buffer size but a count, the same for every socket, and no socket
            # option raises it: past it a sender waits, or (non-blocking) loses the datagram.
            log.warning(
                "%s: the kernel queues at most %d datagrams on a Unix socket, so a client that does not "
                "wait (Datadog's default socket_timeout=0) loses a burst beyond that while the daemon is busy; "
                "raise it (sysctl -w net.unix.max_dgram_qlen=%d) or enable the client's buffering",
                path, self.queue_length, QLEN_WANTED)
        self._thread = threading.Thread(target=self.reader.run, name="statsd-unix-dgram", daemon=True)

    def start(self) -> UnixDatagramListener:
        self._thread.start()
        return self

    def configure(self, max_packet_size: int) -> None:
        self.reader.max_packet_size = max_packet_size

    def stop(self) -> None:
        """Stop reading once what is queued is ingested, close the socket, remove its
        file (idempotent). Senders are refused from the shutdown on (EPIPE)."""
        self.reader.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader's poll (Linux)
        except OSError:
            pass
        if self._thread.is_alive():
            self._thread.join(5)
        if not self._thread.is_alive():  # see UdpListener.close
            self.sock.close()
        self.file.remove()


class _StreamServer(LineServer):
    """The TCP input's ``LineServer``, also reading DogStatsD's stream framing.

    Datadog's clients on a stream socket (``unixstream://``, or a bare ``socket_path``
    that turns out to be a stream socket) prefix each packet with its length, 4 bytes
    little-endian, as the agent's ``dogstatsd_stream_socket`` expects. A connection's
    first four bytes tell which framing it uses: statsd text never holds NUL, and the
    prefix of a packet within ``max_packet_size`` (at most 65535) ends in two NULs.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._framed: dict[socket.socket, bool] = {}

    def _read(self, conn: socket.socket) -> None:
        framed = self._framed.get(conn)
        if framed is None:
            try:
                head = conn.recv(4, socket.MSG_PEEK)
            except OSError:
                head = b""
            # Fewer than 4 bytes: a text client's short write (a prefix comes in one piece).
            framed = self._framed[conn] = len(head) == 4 and head[2:] == b"\0\0"
        if not framed:
            super()._read(conn)
            return
        data = self._receive(conn)
        if data is None:
            return
        buffer = self._buffers[conn]
        buffer += data
        while len(buffer) >= 4:
            size = int.from_bytes(buffer[:4], "little")
            if size > self.max_line:  # no way to find the next packet's start: hang up
                self.count("packets_too_large", 1)
                self._close(conn)
                return
            if len(buffer) < 4 + size:
                return
            packet = bytes(buffer[4:4 + size])
            del buffer[:4 + size]
            try:
                self.handle(packet, lambda payload: None)
            except Exception:
                log.exception("%s: error handling input", self.name)

    def _close(self, conn: socket.socket) -> None:
        super()._close(conn)
        self._framed.pop(conn, None)


class UnixStreamListener:
    """Statsd lines on a Unix stream socket: newline-framed (pystatsd, the Django client),
    or length-prefixed packets (Datadog's clients), told apart per connection."""

    kind = "stream"

    def __init__(self, path: str, ingest: Callable[[bytes], None], *, max_packet_size: int = 65535,
                 count: Callable[[str, float], None] | None = None, mode: int = 0o660,
                 group: str | None = None) -> None:
        self.path = path
        sock, self.file = _bound(socket.SOCK_STREAM, path, mode, group)
        try:
            sock.listen(128)
        except BaseException:
            sock.close()
            self.file.remove()
            raise

        def handle(chunk: bytes, reply: Callable[[bytes], None]) -> bool:
            ingest(chunk)
            return True

        self.server = _StreamServer("", 0, handle, name="statsd-unix-stream", max_line=max_packet_size,
                                    count=count, sock=sock)
        self._started = False

    def start(self) -> UnixStreamListener:
        self.server.start()
        self._started = True
        return self

    def configure(self, max_packet_size: int) -> None:
        self.server.max_line = max_packet_size

    def stop(self) -> None:
        """Stop reading, close the socket and its connections, remove its file."""
        if self._started:
            self.server.stop()  # closes too
        else:
            self.server.close()
        self.file.remove()


def unix_listeners(settings: Settings, ingest: Callable[[bytes], None],
                   count: Callable[[str, float], None]) -> list[UnixListener]:
    """The Unix socket listeners ``settings`` ask for, bound, not started yet.

    ``ingest`` takes one packet (a datagram, or a chunk of whole lines). If one cannot
    be bound, those already bound are closed (their files removed) and the error raised.
    """
    wanted = [(cls, path) for cls, path in ((UnixDatagramListener, settings.unix_dgram_path),
                                            (UnixStreamListener, settings.unix_stream_path)) if path]
    listeners: list[UnixListener] = []
    try:
        for cls, path in wanted:
            listeners.append(cls(path, ingest, max_packet_size=settings.max_packet_size, count=count,
                                 mode=settings.unix_socket_mode, group=settings.unix_socket_group))
    except BaseException:
        for listener in listeners:
            listener.stop()
        raise
    for listener in listeners:
        log.info("statsd listening on unix %s socket %s (mode %o)", listener.kind, listener.path, settings.unix_socket_mode)
    return listeners
