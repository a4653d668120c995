"""Several receivers (``workers`` > 1): real worker processes on one SO_REUSEPORT port,
their tables merged into what one receiver would have flushed."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from django_statsd_push.server.aggregate import Aggregator, AggregatorConfig
from django_statsd_push.server.config import ConfigError, Settings
from django_statsd_push.server.daemon import Daemon
from django_statsd_push.server.snapshot import SeriesKey
from django_statsd_push.server.workers import WorkerPool

from .etsy import CarbonCapture
from .helpers import Collect, Serve, mgmt, wait_received
from .test_graphite_output import assert_fixture_output, run_fixture

SENDERS = 16  # source ports: the kernel hashes each to one worker, so several are needed


def senders() -> list[socket.socket]:
    return [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(SENDERS)]


def send_spread(port: int, packets: list[bytes]) -> None:
    """Each packet from the next of ``SENDERS`` sockets, as many clients would send."""
    socks = senders()
    try:
        for i, packet in enumerate(packets):
            socks[i % SENDERS].sendto(packet, ("127.0.0.1", port))
    finally:
        for s in socks:
            s.close()


def until(condition, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return result


def test_gauge_operations_merge_in_arrival_order():
    """A delta in one worker applies to a value another worker set before it, and not
    to one set after it; a worker's operations before its own last set are dropped."""
    def flushed(*workers: list[tuple[int, bytes]]) -> float:
        main = Aggregator()
        sources = []
        for ops in workers:
            source = Aggregator(recording=True)
            for stamp, packet in ops:
                source.clock_ns = lambda stamp=stamp: stamp
                source.ingest(packet)
            sources.append(source.drain())
        main.merge(sources)
        return main.flush(1.0).gauges[SeriesKey("g")]

    assert flushed([(1, b"g:5|g")], [(2, b"g:+4|g")]) == 9
    assert flushed([(2, b"g:5|g")], [(1, b"g:+4|g")]) == 5
    assert flushed([(1, b"g:+1|g"), (3, b"g:10|g")], [(2, b"g:+2|g"), (4, b"g:+3|g")]) == 13
    assert flushed([(1, b"g:7|g"), (5, b"g:-1|g")], [(3, b"g:2|g")]) == 1


def test_gauge_operations_wait_for_a_worker_that_lags_behind():
    """Worker A has read a delta that arrived at 8; worker B has only read up to 3, so
    a set that arrived at 6 may still be in its queue: the delta waits for it."""
    from django_statsd_push.server.aggregate import Drained

    main = Aggregator()
    main.merge([Drained(gauge_ops={"g": [(8, 4.0, True)]}, through=10), Drained(through=3)])
    assert main.held_ops and "g" not in main.gauges
    main.merge([Drained(through=20), Drained(gauge_ops={"g": [(6, 5.0, False)]}, through=20)])
    assert main.gauges["g"] == 9 and not main.held_ops
    main.merge([Drained(gauge_ops={"g": [(30, 1.0, True)]}, through=30), Drained(through=25)])
    assert main.gauges["g"] == 9
    main.merge([], final=True)  # the daemon stops: nothing older can come
    assert main.gauges["g"] == 10


@pytest.fixture
def pool():
    """Two worker processes on a port of their own (held by a placeholder until they bind)."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    counted: list[tuple[str, float]] = []
    try:
        workers = WorkerPool("127.0.0.1", holder.getsockname()[1], 2, AggregatorConfig(flush_interval=1.0),
                             receive_buffer=1 << 20, max_packet_size=65535,
                             count=lambda stat, n: counted.append((stat, n))).start()
    finally:
        holder.close()
    try:
        yield workers
    finally:
        workers.stop()


def test_fixture_through_worker_processes_matches_etsy(pool):
    """The etsy fixture packets from 16 sockets, all at once, into two real workers: the
    flush equals etsy's (the gauges' set and deltas cross workers: kernel arrival stamps
    keep their order though the workers parse concurrently)."""
    def feed(aggregator: Aggregator, packets: list[bytes]) -> None:
        send_spread(pool.port, packets)
        got = 0

        def merged_all() -> bool:
            nonlocal got
            parts = pool.drain()
            aggregator.merge(parts)
            got += sum(p.packets for p in parts)
            return got >= len(packets)

        until(merged_all, what=f"{len(packets)} packets")
        assert got == len(packets)

    collect = Collect()
    run_fixture(collect, feed)
    assert all(n > 0 for n in pool.packets()), f"a worker got nothing: {pool.packets()}"
    assert_fixture_output(collect)


def settings(carbon_port: int, **extra) -> Settings:
    return Settings.from_mapping({"port": 0, "mgmt_port": 0, "graphitePort": carbon_port, **extra})


def test_a_dead_worker_is_restarted_and_counted():
    with CarbonCapture() as carbon, Daemon(settings(carbon.port, workers=2, flushInterval=60000)) as daemon:
        first = daemon.pool.pids()
        os.kill(first[0], signal.SIGKILL)
        until(lambda: daemon.status()["workers.restarts"] == 1, what="the restart")
        until(lambda: len(daemon.pool.pids()) == 2, what="two workers again")
        assert daemon.pool.pids()[0] != first[0] and daemon.pool.pids()[1] == first[1]
        send_spread(daemon.port, [b"x:1|c"] * 64)
        wait_received(daemon, 64, timeout=60)
        status = daemon.status()
        assert status["worker.0.packets_received"] > 0 and status["worker.1.packets_received"] > 0
        daemon.flush()
        want = {"stats_counts.x 64 ", "stats_counts.statsd.worker_restarts 1 "}
        seen: set[str] = set()
        carbon.lines_until(lambda line: bool(seen.update(w for w in want if line.startswith(w))) or seen == want)


def test_a_reload_reaches_the_workers():
    """SIGHUP's max_packet_size applies in every worker (each sender's big packet goes
    to the same worker as its small one, before it)."""
    with CarbonCapture() as carbon, Daemon(settings(carbon.port, workers=2, flushInterval=60000)) as daemon:
        daemon.reload(settings(carbon.port, workers=2, flushInterval=60000, max_packet_size=16))
        send_spread(daemon.port, [b"a.rather.long.name:1|c"] * SENDERS + [b"s:1|c"] * SENDERS)
        wait_received(daemon, SENDERS, timeout=60)
        daemon.flush()
        carbon.lines_until(lambda line: line.startswith(f"stats_counts.statsd.packets_too_large {SENDERS} "))


def test_management_sees_and_deletes_what_workers_received():
    with CarbonCapture() as carbon, Daemon(settings(carbon.port, workers=2, flushInterval=60000)) as daemon:
        send_spread(daemon.port, [b"a.b:1|c\ng:3|g"] * 32)
        wait_received(daemon, 64, timeout=60)
        assert "'a.b': 32" in mgmt(daemon.mgmt_port, "counters")
        assert "deleted: a.b" in mgmt(daemon.mgmt_port, "delcounters a.*")
        assert "'a.b'" not in mgmt(daemon.mgmt_port, "counters")
        assert "'g': 3" in mgmt(daemon.mgmt_port, "gauges")


def _children(pid: int) -> set[int]:
    try:
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        pytest.skip("/proc/PID/task/PID/children is not available")


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_serve_with_workers_flushes_on_sigterm_and_workers_never_outlive_it():
    with CarbonCapture() as carbon:
        with Serve("--workers", "2", "--graphite-port", str(carbon.port), "--flush-interval", "60000") as serve:
            serve.wait_log("2 worker processes")
            send_spread(serve.port, [b"w:1|c"] * 40)
            until(lambda: "messages.metrics_received: 40\n" in mgmt(serve.mgmt_port, "stats"), what="40 metrics")
            serve.proc.send_signal(signal.SIGTERM)
            carbon.lines_until(lambda line: line.startswith("stats_counts.w 40 "))
            assert serve.proc.wait(30) == 0
        with Serve("--workers", "2", "--no-graphite") as serve:
            workers = until(lambda: len(_children(serve.proc.pid)) == 2 and _children(serve.proc.pid),
                            what="two worker processes")
            serve.proc.kill()
            serve.proc.wait(30)
            until(lambda: all(_gone(pid) for pid in workers), timeout=30, what="the workers to exit")


@pytest.mark.parametrize("value", [0, -1, 257, True])
def test_workers_setting_is_checked(value):
    with pytest.raises(ConfigError, match="workers"):
        Settings.from_mapping({"workers": value})


def test_workers_flag_and_key():
    from django_statsd_push.server.cli import parser, settings_from

    assert settings_from(parser().parse_args(["--workers", "3"])).workers == 3
    assert Settings.from_mapping({"workers": 4}).workers == 4
    assert Settings().workers == 1
