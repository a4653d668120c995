"""The daemon: listeners -> aggregator -> sinks, flushed on a deadline by its own thread.

Threads: one blocking UDP reader, one selector thread for statsd-over-TCP, one for
the management interface, one flusher, one Carbon writer. The aggregator is guarded by
one lock, held per datagram by the readers and for the table swap by the flusher;
sinks run outside it, so receiving never waits for formatting or for Carbon.

With ``workers`` > 1 the UDP reader is replaced by that many worker processes
(``workers.py``); TCP and Unix socket input go into a recording aggregator of this
process (``local``), and ``collect()`` merges the workers' and the local tables into the
main aggregator before every flush and before the management interface reads it.

Flushes happen on a deadline (``next += interval``), not by counting ticks, so a slow
flush does not shift the ones after it. ``stop()`` flushes once more (SIGTERM does
that) and ``reload()`` applies a new ``Settings`` (SIGHUP) without dropping a point.

Each flush is stamped with the end of the interval it closes. For a regular flush
that is the moment it runs; the flush ``stop()`` makes closes an interval cut short,
so it is stamped with the deadline that interval would have ended at. Stamped with
the clock instead it would share a Whisper step with the regular flush just before
it (a SIGTERM right after a flush), and Carbon keeps one value per step: the last.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django_statsd_push.server.aggregate import Aggregator, Drained
from django_statsd_push.server.carbon_client import CarbonClient
from django_statsd_push.server.config import RESTART, SETTINGS, ConfigError, Settings
from django_statsd_push.server.gc_pause import paused_gc
from django_statsd_push.server.graphite_sink import GraphiteSink
from django_statsd_push.server.listener import LineServer, UdpListener
from django_statsd_push.server.mgmt import Management
from django_statsd_push.server.sink import Sink, build_sinks
from django_statsd_push.server.unix_listener import UnixListener, unix_listeners
from django_statsd_push.server.workers import WorkerPool

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, settings: Settings, sinks: list[Sink] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """``sinks``: what the caller built (``statsd-push bridge`` hands its Prometheus
        sink); by default, ``build_sinks`` makes the ones ``settings`` ask for."""
        self.settings = settings
        self.clock = clock
        self.lock = threading.Lock()
        self.aggregator = Aggregator(settings.aggregator_config())
        # workers > 1: what this process receives itself (TCP), merged like a worker's
        self.local = Aggregator(settings.aggregator_config(), recording=True) if settings.workers > 1 else None
        self.pool: WorkerPool | None = None
        self._collect_lock = threading.Lock()  # merges in the order the drains were taken
        self.health = settings.health_status
        self.started = clock()
        self.sinks: list[Sink] = list(sinks) if sinks is not None else \
            build_sinks(settings, self.aggregator.count, lambda: self.running)
        self.udp: UdpListener | None = None
        self.tcp: LineServer | None = None
        self.mgmt: LineServer | None = None
        self.unix: list[UnixListener] = []  # the Unix socket inputs settings ask for
        self.flushes = 0
        # Where the interval being collected ends: the stamp of the flush stop() makes.
        self.next_flush_at = self.started + settings.flush_interval_ms / 1000
        self.kernel_drops = 0
        self._stop = threading.Event()
        self._stopped = False
        self._flusher = threading.Thread(target=self._flush_loop, name="statsd-flush", daemon=True)
        self._flush_lock = threading.Lock()  # one flush at a time (timer, SIGTERM, tests)

    @property
    def graphite(self) -> GraphiteSink | None:
        """The Carbon sink, if one runs (for ``stats`` and tests)."""
        return next((s for s in self.sinks if isinstance(s, GraphiteSink)), None)

    @property
    def carbon(self) -> CarbonClient | None:
        writer = self.graphite.writer if self.graphite is not None else None
        return writer if isinstance(writer, CarbonClient) else None

    def start(self) -> Daemon:
        s = self.settings
        lock = self.lock
        ingest = (self.local or self.aggregator).ingest

        def ingest_locked(data: bytes) -> None:
            with lock:
                ingest(data)

        def ingest_tcp(chunk: bytes, reply: Callable[[bytes], None]) -> bool:
            ingest_locked(chunk)
            return True

        count = self.aggregator.count
        try:
            for attempt in range(20):  # port 0: UDP and TCP must get the same number
                # With workers, this socket only holds the port until they have bound it too.
                self.udp = UdpListener(s.host, s.port, ingest_locked, receive_buffer=s.udp_receive_buffer,
                                       max_packet_size=s.max_packet_size, count=count,
                                       reuse_port=s.workers > 1)
                try:
                    self.tcp = LineServer(s.host, self.udp.address[1], ingest_tcp, name="statsd-tcp",
                                          max_line=s.max_packet_size, count=count)
                    break
                except OSError:
                    self.udp.close()
                    self.udp = None
                    if s.port or attempt == 19:
                        raise
            self.unix = unix_listeners(s, ingest_locked, count)
            self.mgmt = LineServer(s.mgmt_host, s.mgmt_port, Management(self).handle, name="statsd-mgmt")
            self.udp.start()
            if s.workers > 1:
                self.pool = WorkerPool(s.host, self.udp.address[1], s.workers, s.aggregator_config(),
                                       receive_buffer=s.udp_receive_buffer, max_packet_size=s.max_packet_size,
                                       count=count).start()
                self.udp.stop()  # what it received is in self.local
                self.udp.close()
        except BaseException:
            if self.udp is not None:
                self.udp.stop()
            for server in (self.udp, self.tcp, self.mgmt):
                if server is not None:
                    server.close()
            self._close_sinks(0)
            for listener in self.unix:
                listener.stop()
            raise
        self.tcp.start()
        self.mgmt.start()
        for listener in self.unix:
            listener.start()
        self.next_flush_at = self.clock() + s.flush_interval_ms / 1000
        self._flusher.start()
        log.info("statsd listening on %s:%d (UDP+TCP), management on %s:%d, flush every %g ms%s",
                 *self.udp.address, *self.mgmt.address, s.flush_interval_ms,
                 f", {s.workers} worker processes" if self.pool else "")
        return self

    @property
    def running(self) -> bool:
        """Receiving and flushing: ``start()`` has bound every listener, ``stop()`` has not begun.

        What the Prometheus sink's ``/-/ready`` waits for: its HTTP port answers from
        construction on, before the statsd ports exist.
        """
        return self._flusher.is_alive() and not self._stopped

    @property
    def port(self) -> int:
        assert self.udp is not None
        return self.udp.address[1]

    @property
    def mgmt_port(self) -> int:
        assert self.mgmt is not None
        return self.mgmt.address[1]

    # --- flushing ----------------------------------------------------------------
    def _flush_loop(self) -> None:
        next_at = time.monotonic() + self.settings.flush_interval_ms / 1000
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            stamp = self.clock()
            try:
                self.flush(stamp)
            except Exception:  # keep flushing on schedule whatever one flush did
                log.exception("flush failed")
            interval = self.settings.flush_interval_ms / 1000
            self.next_flush_at = stamp + interval
            next_at += interval
            now = time.monotonic()
            if next_at <= now:  # fell behind (suspended, overloaded): skip, do not burst
                next_at = now + interval

    def flush(self, stamp: float | None = None, final: bool = False) -> None:
        """Swap the tables and feed the snapshot, stamped ``stamp`` (default: now), to every sink.

        ``final``: the flush ``stop()`` makes; series idle since the previous flush are
        left out of it (``Aggregator.swap(last=True)``).

        The collector is held off for the whole flush (``gc_pause``), not step by step:
        turned back on between the snapshot and the formatting, it ran a full pass over
        every live object right there (460 ms measured at 500k names).
        """
        with self._flush_lock, paused_gc():
            if self.udp is not None and self.pool is None:
                self._kernel_drops(self.udp.new_kernel_drops())
            self.collect(final)
            with self.lock:
                swapped = self.aggregator.swap(self.clock() if stamp is None else stamp, last=final)
            snapshot = swapped.snapshot()  # sorting and copying, without the lock
            for sink in self.sinks:
                try:
                    sink.flush(snapshot)
                except Exception:
                    log.exception("sink %r failed to flush", sink)
            self.flushes += 1

    def _kernel_drops(self, drops: int) -> None:
        if drops:
            self.kernel_drops += drops
            log.warning("the kernel dropped %d statsd datagrams (receive buffer full)", drops)
            if self.pool is None:  # a worker counts its own
                self.aggregator.count("udp_kernel_drops", drops)

    def collect(self, final: bool = False) -> None:
        """With workers: merge what they and this process received into the main
        aggregator (before a flush, and before the management interface reads it);
        ``final``: they have stopped, so every held gauge operation applies now."""
        if self.local is None:
            return
        with self._collect_lock:
            parts: list[Drained] = self.pool.drain() if self.pool is not None else []
            self._kernel_drops(sum(p.kernel_drops for p in parts))
            with self.lock:
                parts.append(self.local.drain())
                self.aggregator.merge(parts, final)

    # --- control -----------------------------------------------------------------
    def reload(self, settings: Settings) -> None:
        """Apply new settings (SIGHUP), as ``config.SETTINGS`` says for each one.

        A changed setting that needs a restart is logged by name and its running value
        kept in ``settings``, so the management ``config`` command shows what is in
        force. The sinks take the new settings first: one that refuses them (a bad
        mapping file) raises ``ConfigError`` and the sinks already reloaded go back to
        the running settings, so the running configuration is kept whole.
        """
        old = self.settings
        changed = [s for s in SETTINGS if getattr(old, s.attr) != getattr(settings, s.attr)]
        for setting in changed:
            if setting.applies == RESTART:
                log.warning("reload: %s changed to %r; it needs a restart (%s): keeping %r",
                            setting.key, getattr(settings, setting.attr), setting.how, getattr(old, setting.attr))
                setattr(settings, setting.attr, getattr(old, setting.attr))
        reloaded: list[Sink] = []
        try:
            for sink in self.sinks:
                sink.reload(settings)
                reloaded.append(sink)
        except ConfigError:
            for sink in reloaded:
                sink.reload(old)
            raise
        for setting in changed:
            if setting.applies != RESTART:
                log.info("reload: %s %r -> %r", setting.key, getattr(old, setting.attr), getattr(settings, setting.attr))
        with self.lock:
            self.aggregator.config = settings.aggregator_config()
            if self.local is not None:
                self.local.config = settings.aggregator_config()
        if self.pool is not None:
            self.pool.configure(settings.aggregator_config(), settings.max_packet_size, settings.udp_receive_buffer)
        elif self.udp is not None:
            self.udp.configure(settings.max_packet_size, settings.udp_receive_buffer)
        if self.tcp is not None:
            self.tcp.max_line = settings.max_packet_size
        for listener in self.unix:
            listener.configure(settings.max_packet_size)
        logging.getLogger().setLevel(settings.log_level.upper())
        if settings.health_status != old.health_status:
            self.health = settings.health_status
        self.settings = settings
        log.info("configuration reloaded")

    def status(self) -> dict[str, float]:
        """The management interface's ``stats`` (besides uptime)."""
        now = round(self.clock())
        agg = self.aggregator
        self.collect()
        with self.lock:
            out: dict[str, float] = {
                "messages.bad_lines_seen": agg.total("bad_lines_seen"),
                "messages.packets_received": agg.total("packets_received"),
                "messages.metrics_received": agg.total("metrics_received"),
                "messages.events_received": agg.total("events_received"),
                "messages.service_checks_received": agg.total("service_checks_received"),
                "series.counters": len(agg.counters),
                "series.timers": len(agg.timers),
                "series.gauges": len(agg.gauges),
                "series.sets": len(agg.sets),
                "flushes": self.flushes,
            }
            out.update({f"messages.{k}": v for k, v in agg.totals.items() if k.startswith("rejected.")})
            out.update({f"messages.rejected.{k}": out.get(f"messages.rejected.{k}", 0) + v
                        for k, v in agg.rejections.items()})
        if self.pool is not None:
            out["udp.receive_buffer"] = self.pool.receive_buffer
            out["udp.kernel_drops"] = self.kernel_drops
            out["workers"] = self.pool.size
            out["workers.restarts"] = self.pool.restarts
            for i, (packets, rss) in enumerate(zip(self.pool.packets(), self.pool.rss())):
                out[f"worker.{i}.packets_received"] = packets
                out[f"worker.{i}.rss_bytes"] = rss
        elif self.udp is not None:
            out["udp.receive_buffer"] = self.udp.receive_buffer
            out["udp.kernel_drops"] = self.udp.total_kernel_drops()
        g = self.graphite
        if g is not None:
            out.update({"graphite.last_flush": now - g.last_flush,
                        "graphite.last_exception": now - g.last_exception,
                        "graphite.flush_time": g.flush_time, "graphite.flush_length": g.flush_length})
        carbon = self.carbon
        if carbon is not None:
            out.update({"carbon.connected": int(carbon.connected), "carbon.pending": carbon.pending,
                        "carbon.sent": carbon.sent_lines, "carbon.dropped": carbon.dropped_lines})
        return out

    def stop(self, timeout: float = 3.0) -> None:
        """Stop receiving, flush once more, close the sinks, in about ``timeout`` seconds.

        The sinks get what is left of ``timeout`` to deliver the last flush (one bounded
        attempt for Carbon: what it cannot deliver is counted and logged, not waited
        for), so SIGTERM ends the process within a few seconds whatever Carbon does.
        The last flush is stamped with the current interval's deadline (see the module
        docstring), so it may lie up to one interval in the future.

        Idempotent: the context manager calls it again after an explicit stop.
        """
        if self._stopped:
            return
        deadline = time.monotonic() + timeout
        self._stopped = True
        self._stop.set()
        if self._flusher.is_alive():
            self._flusher.join()
        for listener in self.unix:
            listener.stop()
        for server in (self.udp, self.tcp):
            if server is not None:
                server.stop()
        if self.pool is not None:
            self.pool.stop()  # their last tables go into the flush below
        try:
            # Overdue (the flusher fell behind): now is the end of the interval.
            self.flush(max(self.clock(), self.next_flush_at), final=True)
        finally:
            if self.udp is not None and self.pool is None:
                self.udp.close()
            self._close_sinks(max(0.0, deadline - time.monotonic()))
            if self.mgmt is not None:
                self.mgmt.stop()

    def _close_sinks(self, timeout: float) -> None:
        """Close every sink within ``timeout`` seconds in all (shared out in order)."""
        deadline = time.monotonic() + timeout
        for sink in self.sinks:
            try:
                sink.close(max(0.0, deadline - time.monotonic()))
            except Exception:
                log.exception("sink %r failed to close", sink)

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
