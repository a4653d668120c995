"""Several UDP receivers: worker processes sharing the statsd port (``workers`` > 1).

One CPython process parses on one core at a time, whatever its threads; a host with
more cores than that needs more processes. Each worker is a fresh interpreter
(``python -m django_statsd_push.server.workers``, talking over a socket pair: no fork
of a threaded daemon, and no re-import of whatever script started the daemon, as
multiprocessing's spawn would do) with its own UDP socket bound to the daemon's port with ``SO_REUSEPORT`` and its own recording
``Aggregator``; the daemon process keeps the flusher, the sinks, TCP input and the
management interface, and at each flush merges what every worker ``drain``-ed
(``Aggregator.merge``: counters add, timers concatenate, sets unite, gauge
operations in stamp order).

Why one socket per worker rather than one socket read by all: the kernel picks a
``SO_REUSEPORT`` socket by a hash of the sender's address and port, so everything one
client sends lands in one worker, in the order sent. Two workers reading one socket
would race on a client's ``g:5|g`` then ``g:+4|g``. The price: a single client is
served by one worker; a Django site has many processes, each with its own socket.

A worker that dies is noticed at once (its process sentinel), logged, counted in
``statsd.worker_restarts`` and started again; what it had received since the last
drain is lost with it. Workers ignore SIGINT, SIGTERM and SIGHUP (a terminal or a
service manager may signal the whole process group): the daemon stops them itself,
after taking their last tables, and they exit when the daemon's end of their pipe
closes, so they never outlive it.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path

from django_statsd_push.server.aggregate import Aggregator, AggregatorConfig, Drained
from django_statsd_push.server.listener import UdpListener

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0  # seconds for a spawned worker to bind (a loaded machine is slow)
REPLY_TIMEOUT = 30.0  # seconds for a worker to hand over its tables
STOP_TIMEOUT = 2.0  # the same when stopping: SIGTERM must end the daemon within seconds


def main(argv: list[str] | None = None) -> None:
    """A worker process: its first message says where to listen and with what settings."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    conn = Connection(int((argv or sys.argv[1:])[0]))
    try:
        _serve(conn, *conn.recv())
    except (EOFError, OSError):
        pass  # the daemon went away before we started


def _serve(conn: Connection, host: str, port: int, config: AggregatorConfig,
           receive_buffer: int, max_packet_size: int) -> None:
    """Receive into a recording aggregator; answer the daemon's requests on ``conn``.

    One thread polls both the UDP socket and ``conn``, so a drain always falls between
    two datagrams and can tell how far the worker has read (``Drained.through``).
    """
    aggregator = Aggregator(config, recording=True)
    try:
        udp = UdpListener(host, port, aggregator.ingest, receive_buffer=receive_buffer,
                          max_packet_size=max_packet_size, count=aggregator.count, reuse_port=True)
    except OSError as exc:
        conn.send(("error", f"cannot bind {host}:{port}: {exc}"))
        return
    aggregator.clock_ns = udp.arrival_ns
    conn.send(("ready", udp.receive_buffer))
    poller = select.poll()
    poller.register(udp.sock, select.POLLIN)
    poller.register(conn.fileno(), select.POLLIN)
    control = conn.fileno()
    try:
        while True:
            for fd, _ in poller.poll():
                if fd != control:
                    udp.read_queued()
                    continue
                try:
                    command, *args = conn.recv()
                except (EOFError, OSError):  # the daemon is gone
                    return
                if command == "configure":
                    config, max_packet_size, receive_buffer = args
                    aggregator.config = config
                    udp.configure(max_packet_size, receive_buffer)
                    conn.send("configured")  # the reload returns once every worker has it
                    continue
                if command == "stop":  # what is queued now, within reason: senders may not stop
                    for _ in range(64):
                        if udp.read_queued() < 256:
                            break
                drops = udp.new_kernel_drops()
                if drops:
                    aggregator.count("udp_kernel_drops", drops)
                drained = aggregator.drain()
                drained.kernel_drops = drops
                drained.through = udp.processed_through()
                conn.send(drained)
                if command == "stop":
                    return
    finally:
        udp.close()
        conn.close()


class _Worker:
    """The daemon's handle on one worker process."""

    def __init__(self, index: int, process: subprocess.Popen, conn: Connection, receive_buffer: int) -> None:
        self.index, self.process, self.conn = index, process, conn
        self.receive_buffer = receive_buffer
        self.lock = threading.Lock()  # one request and its answer at a time on the pipe
        self.packets = 0  # received since start (as drained)
        try:  # readable when the process ends (Linux); else the pool polls
            self.pidfd: int | None = os.pidfd_open(process.pid)
        except (AttributeError, OSError):
            self.pidfd = None

    def ask(self, command: str, *args, timeout: float = REPLY_TIMEOUT):
        """The worker's answer: its tables (``drain``, ``stop``) or ``"configured"``;
        None if it is dead or mute."""
        with self.lock:
            try:
                self.conn.send((command, *args))
                if not self.conn.poll(timeout):
                    # A late answer would be read as the next one: end it (and, unless
                    # stopping, the pool starts a fresh one).
                    log.error("statsd worker %d did not answer %r within %g s; killing it",
                              self.index, command, timeout)
                    self.process.kill()
                    return None
                answer = self.conn.recv()
            except (EOFError, OSError):
                return None
        if isinstance(answer, Drained):
            self.packets += answer.packets
        return answer

    def rss(self) -> int:
        """Resident memory in bytes (Linux ``/proc``), 0 if unknown."""
        try:
            with open(f"/proc/{self.process.pid}/status") as f:
                for row in f:
                    if row.startswith("VmRSS:"):
                        return int(row.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def close(self) -> None:
        self.conn.close()  # a live worker reads EOF and exits
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


class WorkerPool:
    """``workers`` receiver processes on ``host:port``; ``drain()`` gathers their tables."""

    def __init__(self, host: str, port: int, workers: int, config: AggregatorConfig, *,
                 receive_buffer: int, max_packet_size: int,
                 count: Callable[[str, float], None]) -> None:
        self.host, self.port, self.size = host, port, workers
        self.config, self.receive_buffer_wanted, self.max_packet_size = config, receive_buffer, max_packet_size
        self.count = count
        self.restarts = 0
        self._workers: list[_Worker | None] = [None] * workers
        self._pending: list[Drained] = []  # the last tables of workers already stopped
        self._stopping = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._monitor = threading.Thread(target=self._watch, name="statsd-workers", daemon=True)

    def _spawn(self, index: int) -> _Worker:
        ours_sock, theirs = socket.socketpair()
        # The package's own directory first: the daemon may have been imported from a
        # path the child would not find (a checkout, a test runner's sys.path).
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
        try:
            process = subprocess.Popen([sys.executable, "-m", "django_statsd_push.server.workers", str(theirs.fileno())],
                                       pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=env)
        finally:
            theirs.close()
        ours = Connection(ours_sock.detach())
        try:
            ours.send((self.host, self.port, self.config, self.receive_buffer_wanted, self.max_packet_size))
            if not ours.poll(START_TIMEOUT):
                raise OSError(f"did not start within {START_TIMEOUT:g} s")
            status, detail = ours.recv()
            if status != "ready":
                raise OSError(detail)
        except (EOFError, OSError) as exc:
            ours.close()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            raise OSError(f"statsd worker {index} failed to start: {exc or 'it exited'}") from exc
        return _Worker(index, process, ours, detail)

    def start(self) -> WorkerPool:
        try:
            for index in range(self.size):
                self._workers[index] = self._spawn(index)
        except BaseException:
            self._stopping = True
            self._close_all()
            raise
        self._monitor.start()
        return self

    @property
    def receive_buffer(self) -> int:
        return min((w.receive_buffer for w in self._workers if w is not None), default=0)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w is not None]

    def rss(self) -> list[int]:
        return [w.rss() for w in self._workers if w is not None]

    def packets(self) -> list[int]:
        return [w.packets for w in self._workers if w is not None]

    def drain(self) -> list[Drained]:
        """Every worker's tables since the last drain (and those of stopped workers)."""
        parts, self._pending = self._pending, []
        for worker in list(self._workers):
            if worker is not None and not self._stopping:
                drained = worker.ask("drain")
                if drained is not None:
                    parts.append(drained)
        return parts

    def configure(self, config: AggregatorConfig, max_packet_size: int, receive_buffer: int) -> None:
        """New settings (SIGHUP) for the running workers and the ones started later."""
        self.config, self.max_packet_size, self.receive_buffer_wanted = config, max_packet_size, receive_buffer
        for worker in list(self._workers):
            if worker is not None:
                worker.ask("configure", config, max_packet_size, receive_buffer)

    def _watch(self) -> None:
        """Restart workers that die, until ``stop``."""
        while not self._stopping:
            workers = [w for w in self._workers if w is not None]
            pidfds = [w.pidfd for w in workers if w.pidfd is not None]
            wait([*pidfds, self._wake_r], timeout=None if len(pidfds) == len(workers) else 1.0)
            if self._stopping:
                return
            for worker in workers:
                if worker.process.poll() is not None:
                    self._restart(worker)

    def _restart(self, dead: _Worker) -> None:
        with dead.lock:  # no drain is using its pipe
            code = dead.process.returncode
        log.warning("statsd worker %d (pid %d) exited with code %s; restarting it "
                    "(what it received since the last flush is lost)", dead.index, dead.process.pid, code)
        self.restarts += 1
        self.count("worker_restarts", 1)
        dead.close()
        self._workers[dead.index] = None
        delay = 0.1
        while not self._stopping:
            try:
                self._workers[dead.index] = self._spawn(dead.index)
                return
            except OSError as exc:
                log.error("statsd worker %d could not be restarted: %s; retrying in %g s", dead.index, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def stop(self) -> None:
        """Stop receiving; the workers' last tables are returned by the next ``drain``."""
        if self._stopping:
            return
        self._stopping = True
        self._wake_w.send(b"x")
        if self._monitor.is_alive():
            self._monitor.join(10)
        for worker in self._workers:
            if worker is not None:
                drained = worker.ask("stop", timeout=STOP_TIMEOUT)
                if drained is not None:
                    self._pending.append(drained)
        self._close_all()

    def _close_all(self) -> None:
        for index, worker in enumerate(self._workers):
            if worker is not None:
                worker.close()
                self._workers[index] = None
        self._wake_r.close()
        self._wake_w.close()


if __name__ == "__main__":
    main()
