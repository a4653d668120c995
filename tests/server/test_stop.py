"""Stopping loses nothing: the daemon's last flush gets its own Whisper step, carbon-cache
writes its cache out before SIGTERM, and carbon-cache does not outlive a killed parent."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import require_import

whisper = require_import("whisper")

from django_statsd_push.stack.carbon_cache import BARRIER_MARKERS, CarbonCache
from django_statsd_push.stack.health import PortHold
from django_statsd_push.server.config import Settings
from django_statsd_push.server.daemon import Daemon
from django_statsd_push.server.snapshot import Snapshot

from .helpers import send_udp, wait_received

ROOT = Path(__file__).resolve().parents[2]


class Stamps:
    """A sink that keeps each flush's timestamp."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self.flushed = threading.Event()

    def flush(self, snapshot: Snapshot) -> None:
        self.stamps.append(snapshot.timestamp)
        self.flushed.set()

    def reload(self, settings: Settings) -> None:
        pass

    def close(self, timeout: float) -> None:
        pass


def daemon_with(clock: list[float], interval_ms: int) -> tuple[Daemon, Stamps]:
    sink = Stamps()
    settings = Settings.from_mapping({"port": 0, "mgmt_port": 0, "flushInterval": interval_ms})
    return Daemon(settings, sinks=[sink], clock=lambda: clock[0]), sink


@pytest.mark.parametrize(("stop_at", "stamp"), [(1005.0, 1060.0), (1100.0, 1100.0)],
                         ids=["within-the-interval", "overdue"])
def test_final_flush_is_stamped_with_the_interval_deadline(stop_at, stamp):
    clock = [1000.0]
    daemon, sink = daemon_with(clock, 60000)
    with daemon:
        clock[0] = stop_at
    assert sink.stamps == [stamp]


def test_final_flush_after_a_regular_one_gets_the_next_deadline():
    clock = [1000.0]
    daemon, sink = daemon_with(clock, 200)
    with daemon:
        assert sink.flushed.wait(30), "no regular flush"
        clock[0] = 1000.03  # SIGTERM 0.03 s after the regular flush
    *regular, final = sink.stamps
    assert regular and final == pytest.approx(regular[-1] + 0.2)


def whisper_points(path: Path) -> dict[int, float]:
    # The last flush may be stamped up to one interval ahead: read past "now".
    now = int(time.time()) + 10
    (start, _end, step), values = whisper.fetch(str(path), now - 600, now, now=now)
    return {start + i * step: v for i, v in enumerate(values) if v is not None}


@pytest.mark.slow
def test_regular_and_final_flush_both_reach_whisper(tmp_path):
    # A frozen clock puts the stop in the regular flush's second every time (a SIGTERM
    # 0.03 s after a flush does so most of the time): stamped with the clock, the final
    # flush (2 hits) would replace the regular flush's 5 hits in that Whisper step.
    frozen = float(int(time.time()))
    with CarbonCache(tmp_path / "carbon", first_retention="1s:1h") as carbon:
        # 5 s: sending and counting a few packets on a loaded machine fits well inside
        # one interval, which the two "a flush came early" checks below rely on.
        settings = Settings.from_mapping({"port": 0, "mgmt_port": 0, "flushInterval": 5000,
                                          "graphitePort": carbon.line_port})
        with Daemon(settings, clock=lambda: frozen) as daemon:
            send_udp(daemon.port, b"demo.hits:1|c\n" * 5)
            wait_received(daemon, 5)
            assert daemon.flushes == 0, "the machine stalled for a whole flush interval"
            deadline = time.monotonic() + 30
            while daemon.flushes == 0:
                assert time.monotonic() < deadline, "no regular flush"
                time.sleep(0.01)
            send_udp(daemon.port, b"demo.hits:2|c")
            wait_received(daemon, 6)
            daemon.stop()
            assert daemon.flushes == 2, "a second regular flush came before the stop"
            assert daemon.carbon.sent_lines and daemon.carbon.pending == 0
        carbon.stop()  # the points of the final flush are still in carbon's cache now
        assert not carbon.running
        assert whisper_points(carbon.whisper_file("stats_counts.demo.hits")) == {
            int(frozen): 5.0, int(frozen) + 5: 2.0}


@pytest.mark.slow
def test_points_sent_right_before_stop_are_on_disk(tmp_path):
    now = int(time.time())
    with CarbonCache(tmp_path / "carbon", first_retention="1s:1h") as carbon:
        with socket.create_connection((carbon.host, carbon.line_port)) as s:
            s.sendall("".join(f"late.m{i} {i} {now}\n" for i in range(1, 51)).encode())
        carbon.stop()
        for i in range(1, 51):
            assert whisper.fetch(str(carbon.whisper_file(f"late.m{i}")), now - 60)[1].count(i) == 1
    assert not (carbon.whisper_dir / "carbon" / "write_barrier").exists()  # the markers' files are gone


@pytest.mark.slow
def test_write_barrier_is_bounded_in_time(tmp_path, caplog):
    with CarbonCache(tmp_path / "carbon") as carbon:
        os.kill(carbon.proc.pid, signal.SIGSTOP)  # accepts connections, writes nothing
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, "django_statsd_push.stack.carbon_cache"):
            carbon.stop(timeout=1.0)
        assert time.monotonic() - began < 5
        assert not carbon.running
        assert "did not confirm its writes within 1s" in caplog.text
        assert not carbon.whisper_file(BARRIER_MARKERS[0]).exists()


@pytest.mark.slow
def test_no_barrier_when_carbon_holds_points_back(tmp_path, caplog):
    with CarbonCache(tmp_path / "carbon", settings={"MIN_TIMESTAMP_LAG": "3600"}) as carbon:
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, "django_statsd_push.stack.carbon_cache"):
            carbon.stop(timeout=10.0)
        assert time.monotonic() - began < 5  # not the barrier's 10 s
        assert "MIN_TIMESTAMP_LAG = 3600: no write barrier is possible" in caplog.text


CHILD = """
import sys, time
from django_statsd_push.stack.carbon_cache import CarbonCache
carbon = CarbonCache(sys.argv[1]).start()
print(carbon.proc.pid, flush=True)
time.sleep(600)
"""


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody has reaped yet."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_carbon_cache_exits_when_its_parent_is_killed(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    parent = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "carbon")],
                              stdout=subprocess.PIPE, cwd=ROOT, env=env)
    carbon_pid = None
    try:
        carbon_pid = int(parent.stdout.readline())
        assert not gone(carbon_pid)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 60
        while not gone(carbon_pid):
            assert time.monotonic() < deadline, "carbon-cache outlived its killed parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        parent.stdout.close()
        if carbon_pid is not None and not gone(carbon_pid):
            os.kill(carbon_pid, signal.SIGKILL)


class Refusing:
    """Nothing listens: every connect is refused (a held port: nothing else can take it)."""

    def __enter__(self) -> int:
        self.hold = PortHold()
        return self.hold.port

    def __exit__(self, *exc) -> None:
        self.hold.close()


class BacklogFull:
    """A listener whose accept queue is full: the kernel drops new SYNs, so a connect
    hangs as for an unreachable host."""

    def __enter__(self) -> int:
        self.server = socket.create_server(("127.0.0.1", 0), backlog=0)
        port = self.server.getsockname()[1]
        self.fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            self.fillers.append(filler)
        time.sleep(0.2)  # let the handshakes of the fillers finish (nothing to await)
        return port

    def __exit__(self, *exc) -> None:
        for s in [*self.fillers, self.server]:
            s.close()


class NotReading:
    """Accepts connections and never reads: writes block once the buffers are full."""

    def __enter__(self) -> int:
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by accepted sockets
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        return self.server.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.server.close()


@pytest.mark.slow
@pytest.mark.parametrize("carbon", [Refusing, BacklogFull, NotReading], ids=lambda c: c.__name__)
def test_sigterm_exits_within_5_seconds_whatever_carbon_does(carbon):
    from .helpers import Serve

    with carbon() as carbon_port, Serve("--graphite-port", str(carbon_port), "--flush-interval", "600000") as serve:
        # 40,000 distinct counters: 80,000 Carbon lines, several MB, more than socket buffers hold
        for start in range(0, 40_000, 2000):
            send_udp(serve.port, *[("\n".join(f"stop.m{i}:1|c" for i in range(j, j + 20))).encode()
                                   for j in range(start, start + 2000, 20)])
        wait_mgmt_received(serve.mgmt_port, 40_000)
        signalled = time.monotonic()
        serve.proc.send_signal(signal.SIGTERM)
        code = serve.proc.wait(60)
        took = time.monotonic() - signalled
        assert code == 0, serve.log()
        print(f"{carbon.__name__}: exit {took:.2f}s after SIGTERM")
        assert took < 5.0, f"exit took {took:.1f}s after SIGTERM:\n{serve.log()}"
        serve.wait_log(r"stopping: \d+ points not delivered to Carbon")


def wait_mgmt_received(port: int, n: int, timeout: float = 60.0) -> None:
    from .helpers import mgmt

    deadline = time.monotonic() + timeout
    while True:
        stats = mgmt(port, "stats")
        received = float(stats.split("messages.metrics_received: ")[1].split()[0])
        if received >= n:
            return
        assert time.monotonic() < deadline, f"only {received} of {n} metrics received"
        time.sleep(0.05)
