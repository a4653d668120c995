"""``statsd-push bridge`` without a Carbon side: statsd in on UDP+TCP, /metrics out.

statsd_exporter updates its series on every event; here the daemon's own pipeline is
reused as it is (``server.protocol`` parses, ``server.aggregate.Aggregator`` adds) and
flushed into a :class:`PrometheusSink` every ``flush_interval`` (1 s by default). That
keeps one parser and one aggregation for both products, keeps the per-event cost to
the daemon's (a dict update), and the only price is that /metrics lags input by at
most one flush interval, far below any scrape interval. The aggregator deletes idle
series after each flush (etsy's ``deleteIdleStats``), so every snapshot entry is a
real update and TTL expiry is exact.

One thread owns the sockets (``selectors``: UDP datagrams, TCP connections framed by
newlines); one thread flushes on a deadline (``next += interval``, no drift).
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from pathlib import Path

from django_statsd_push.bridge.http import DEFAULT_LISTEN
from django_statsd_push.bridge.registry import DEFAULT_MAX_SERIES
from django_statsd_push.bridge.sink import PrometheusSink
from django_statsd_push.server.aggregate import Aggregator, AggregatorConfig

__all__ = ["DEFAULT_FLUSH_INTERVAL", "StandaloneBridge"]

log = logging.getLogger(__name__)
DEFAULT_FLUSH_INTERVAL = 1.0  # seconds
MAX_DATAGRAM = 65535
MAX_TCP_LINE = 65535  # a longer TCP "line" is counted bad and skipped, never buffered forever
UDP_RECEIVE_BUFFER = 8 * 1024 * 1024


class StandaloneBridge:
    """Listener + aggregator + flusher + :class:`PrometheusSink`; ports 0 pick free ports."""

    def __init__(
        self,
        mapping_path: str | Path | None = None,
        listen: str = DEFAULT_LISTEN,
        statsd_host: str = "127.0.0.1",
        statsd_port: int = 9125,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> None:
        self.flush_interval = flush_interval
        self.aggregator = Aggregator(AggregatorConfig(flush_interval=flush_interval, delete_idle_stats=True))
        self.lock = threading.Lock()
        family = socket.AF_INET6 if ":" in statsd_host else socket.AF_INET
        self.udp = socket.socket(family, socket.SOCK_DGRAM)
        self.tcp = socket.socket(family, socket.SOCK_STREAM)
        self.sink: PrometheusSink | None = None
        try:
            self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
            self.udp.bind((statsd_host, statsd_port))
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # UDP and TCP share the number: with port 0, TCP takes the one UDP got.
            self.tcp.bind((statsd_host, self.udp.getsockname()[1]))
            self.tcp.listen(128)
            self.sink = PrometheusSink(mapping_path, listen, max_series=max_series, idle_repeats=False)
        except BaseException:
            self.udp.close()
            self.tcp.close()
            raise
        self.udp.setblocking(False)
        self.tcp.setblocking(False)
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._threads: list[threading.Thread] = []

    @property
    def statsd_address(self) -> tuple[str, int]:
        host, port = self.udp.getsockname()[:2]
        return host, port

    @property
    def http_address(self) -> tuple[str, int]:
        assert self.sink is not None
        return self.sink.address

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> StandaloneBridge:
        for target, name in ((self._receive, "bridge-statsd"), (self._flush_loop, "bridge-flush")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def close(self) -> None:
        """Stop receiving, flush what was received once more, stop serving."""
        self._stop.set()
        self._wake_w.send(b"x")
        for thread in self._threads:
            thread.join()
        self._threads = []
        self.flush()
        for sock in (self.udp, self.tcp, self._wake_r, self._wake_w):
            sock.close()
        if self.sink is not None:
            self.sink.close()

    def __enter__(self) -> StandaloneBridge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stop(self) -> None:
        """Ask :meth:`wait` to return (safe from a signal handler); :meth:`close` cleans up."""
        self._stop.set()

    def wait(self) -> None:
        self._stop.wait()

    # -- flushing --------------------------------------------------------------------

    def flush(self) -> None:
        with self.lock:
            snapshot = self.aggregator.flush(time.time())
        assert self.sink is not None
        self.sink.flush(snapshot)

    def _flush_loop(self) -> None:
        deadline = time.monotonic() + self.flush_interval
        while not self._stop.wait(max(0.0, deadline - time.monotonic())):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - a failed flush must not stop the next
                log.exception("flush failed")
            deadline += self.flush_interval
            if deadline < time.monotonic():  # fell behind (suspended): skip, do not burst
                deadline = time.monotonic() + self.flush_interval

    # -- receiving -------------------------------------------------------------------

    def _receive(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.udp, selectors.EVENT_READ, "udp")
        selector.register(self.tcp, selectors.EVENT_READ, "accept")
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        pending: dict[socket.socket, bytes] = {}
        try:
            while not self._stop.is_set():
                for key, _ in selector.select():
                    kind = key.data
                    if kind == "udp":
                        self._drain_udp()
                    elif kind == "accept":
                        self._accept(selector, pending)
                    elif kind == "tcp":
                        self._read_tcp(key.fileobj, selector, pending)  # type: ignore[arg-type]
        finally:
            for conn in pending:
                selector.unregister(conn)
                conn.close()
            selector.close()

    def _drain_udp(self) -> None:
        recv, ingest, lock = self.udp.recv, self.aggregator.ingest, self.lock
        for _ in range(1024):  # then give TCP and the stop flag a turn
            try:
                datagram = recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                log.exception("UDP receive failed")
                return
            with lock:
                ingest(datagram)

    def _accept(self, selector: selectors.BaseSelector, pending: dict[socket.socket, bytes]) -> None:
        try:
            conn, _ = self.tcp.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.setblocking(False)
        selector.register(conn, selectors.EVENT_READ, "tcp")
        pending[conn] = b""

    def _read_tcp(self, conn: socket.socket, selector: selectors.BaseSelector, pending: dict[socket.socket, bytes]) -> None:
        try:
            data = conn.recv(MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        buffered = pending[conn] + data
        if not data:  # closed: what is left is a last line without newline
            selector.unregister(conn)
            del pending[conn]
            conn.close()
            complete, rest = buffered, b""
        else:
            cut = buffered.rfind(b"\n")
            complete, rest = (buffered[:cut], buffered[cut + 1 :]) if cut >= 0 else (b"", buffered)
            if len(rest) > MAX_TCP_LINE:
                with self.lock:
                    self.aggregator.bad += 1
                rest = b""
            pending[conn] = rest
        if complete:
            with self.lock:
                self.aggregator.ingest(complete)
