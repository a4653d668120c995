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
        assert "{ g: 3 }" in mgmt(daemon.mgmt_port, "gauges")


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


# --- the DogStatsD records and the bridge's bookkeeping across the merge -------------

MIXED = [
    b"a:1|c\nx:5|g\nx:1|c",  # x: a gauge first, then a counter (first_seen order)
    b"t:3|ms\n_e{6,4}:Deploy|done|t:info|#env:prod\nbad:1|c|@x",
    b"_sc|db.up|2|#env:prod|m:refused\nh:2|h\nc:1|c|c:",
    b"s:m|s\nx:+2|g\nnew:+3|g\n_e{5,40}:title|text",
    b"tagged:1|c|#k:v\nlate:-1|g\n_e{1,1}:a|b\ng:333|g",
    b"a:2|c\nnot a line\ns:n|s\ng:7|g",
]


def _snapshot_fields(snapshot) -> tuple:
    """Timer values come in arrival order, which several receivers do not share: compared sorted."""
    def ordered(table):
        return {key: sorted(values) for key, values in table.items()}

    return (dict(snapshot.counters), ordered(snapshot.timers), dict(snapshot.timer_counts), dict(snapshot.gauges),
            dict(snapshot.sets), dict(snapshot.gauge_changes), snapshot.first_seen, snapshot.events,
            dict(snapshot.rejections), ordered(snapshot.observations), dict(snapshot.observation_counts))


@pytest.mark.parametrize("rules", ["etsy", "exporter"])
@pytest.mark.parametrize("workers", [2, 3])
def test_merged_snapshots_equal_one_receivers(rules, workers):
    """Over several flushes (gauges deleted as idle in between, so deltas arrive with no
    base): the merged snapshot equals one receiver's in every field, ``first_seen``
    order, events, service checks, rejections and ``gauge_changes`` included."""
    from django_statsd_push.server.protocol import ETSY, EXPORTER

    from .helpers import ingest_as_workers

    def config() -> AggregatorConfig:
        return AggregatorConfig(flush_interval=1.0, delete_idle_stats=True,
                                rules=EXPORTER if rules == "exporter" else ETSY)

    one, merged = Aggregator(config()), Aggregator(config())
    rounds = [MIXED, [b"g:+4|g\nx:+1|g", b"a:1|c"], [], [b"x:3|g\nx:+1|g\n_sc|db.up|0", b"g:+1|g"] * 2, MIXED]
    for i, packets in enumerate(rounds):
        ingest_as_workers(one, packets, 1)
        ingest_as_workers(merged, packets, workers)
        expected, got = one.flush(1000.0 + i), merged.flush(1000.0 + i)
        assert _snapshot_fields(got) == _snapshot_fields(expected), f"flush {i}"
        assert got.events or not expected.events
    assert expected.rejections  # the corpus has bad lines under both rules
    assert one.totals == merged.totals


def test_events_over_the_limit_are_dropped_and_counted_after_the_merge():
    config = AggregatorConfig(max_events=3)
    main = Aggregator(config)
    parts = []
    for worker in range(2):
        source = Aggregator(config, recording=True)
        source.clock_ns = lambda worker=worker: worker
        for n in range(2):
            source.ingest(f"_e{{2,1}}:w{worker}|{n}".encode())
        parts.append(source.drain())
    main.merge(parts)
    snapshot = main.flush(1.0)
    assert [e.title for e in snapshot.events] == ["w0", "w0", "w1"]
    assert snapshot.counters[SeriesKey("statsd.events_dropped")] == 1
    assert snapshot.counters[SeriesKey("statsd.events_received")] == 4


class Captured:
    """A sink that keeps the snapshots it is handed."""

    def __init__(self) -> None:
        self.snapshots: list = []

    def flush(self, snapshot) -> None:
        self.snapshots.append(snapshot)

    def reload(self, settings) -> None:
        pass

    def close(self, timeout: float) -> None:
        pass


def test_dogstatsd_event_service_check_and_rejections_through_worker_processes():
    """A DogStatsD event and a service check sent to real workers are in the merged
    snapshot; rejections are counted per reason in the management stats."""
    sink = Captured()
    config = Settings.from_mapping({"port": 0, "mgmt_port": 0, "workers": 2, "flushInterval": 60000})
    with Daemon(config, sinks=[sink]) as daemon:
        send_spread(daemon.port, [b"_e{6,4}:Deploy|done|t:info|#env:prod", b"_sc|db.up|2|#env:prod|m:refused",
                                  b"bad:1|c|@x", b"bad:1|c|@x\nv:zz|ms", b"ok:1|c"])
        wait_received(daemon, 6, timeout=60)
        stats = mgmt(daemon.mgmt_port, "stats")
        assert "messages.rejected.invalid_sample_factor: 2\n" in stats, stats
        assert "messages.rejected.malformed_value: 1\n" in stats, stats
        assert "messages.events_received: 1\n" in stats and "messages.service_checks_received: 1\n" in stats
        assert "workers: 2\n" in stats
        daemon.flush()
    snapshot = sink.snapshots[0]
    assert [(e.title, e.text, e.tags) for e in snapshot.events] == [("Deploy", "done", ("env:prod",))]
    assert snapshot.gauges[SeriesKey("service_check.db.up", ("env:prod",))] == 2.0
    assert snapshot.rejections == {"invalid_sample_factor": 2, "malformed_value": 1}
    assert ("g", SeriesKey("service_check.db.up", ("env:prod",))) in snapshot.first_seen


def test_bridge_relative_gauge_keeps_its_base_with_workers():
    """statsd_exporter's rule with two receivers: ``g:333|g``, idle flushes (the daemon
    deletes the gauge), then ``g:+4|g`` is 337 on /metrics."""
    from tests.bridge.test_standalone import scrape, wait_for

    from django_statsd_push.bridge.standalone import StandaloneBridge

    with StandaloneBridge(None, "127.0.0.1:0", "127.0.0.1", 0, flush_interval=0.2,
                          options={"workers": 2}) as bridge:
        assert bridge.daemon.pool is not None and bridge.daemon.pool.size == 2

        def value(name: str) -> float | None:
            return scrape(bridge.http_address).get((name, frozenset()))

        send_spread(bridge.statsd_address[1], [b"g:333|g"])
        wait_for(lambda: value("g") == 333.0)
        flushes = value("statsd_push_bridge_flushes_total")
        wait_for(lambda: value("statsd_push_bridge_flushes_total") >= flushes + 2)  # deleted in the daemon
        assert "g" not in bridge.daemon.aggregator.gauges
        send_spread(bridge.statsd_address[1], [b"g:+4|g"] * 3)  # from 16 sockets: both workers
        wait_for(lambda: value("g") == 345.0)


def test_unix_inputs_with_workers_keep_their_order():
    """With workers, what the daemon reads itself (Unix sockets) is merged like a
    worker's part: a client's set then deltas keep their order, and a Unix delta after
    a UDP set applies to it."""
    import shutil
    import tempfile

    from .test_unix_listener import send_dgram, send_stream

    short = tempfile.mkdtemp(prefix="sp-unix-", dir="/tmp")
    try:
        config = Settings(port=0, mgmt_port=0, graphite_enabled=False, flush_interval_ms=3_600_000, workers=2,
                          unix_dgram_path=f"{short}/d.sock", unix_stream_path=f"{short}/s.sock")
        config.validate()
        sink = Captured()
        with Daemon(config, sinks=[sink]) as daemon:
            send_dgram(config.unix_dgram_path, b"u:5|g", b"u:+4|g\nu:-1|g", b"u:10|g", b"u:+2|g", b"uc:1|c")
            send_stream(config.unix_stream_path, b"st:1|g\nst:+1|g\nst:+1|g\n")
            send_spread(daemon.port, [b"mixed:100|g"])
            wait_received(daemon, 10, timeout=60)
            send_dgram(config.unix_dgram_path, b"mixed:+1|g")
            send_stream(config.unix_stream_path, b"mixed:+1|g\n")
            wait_received(daemon, 12, timeout=60)
            assert daemon.status()["messages.packets_received"] == 9
            daemon.flush()
        gauges = sink.snapshots[0].gauges
        assert (gauges[SeriesKey("u")], gauges[SeriesKey("st")], gauges[SeriesKey("mixed")]) == (12.0, 3.0, 102.0)
        assert sink.snapshots[0].counters[SeriesKey("uc")] == 1.0
    finally:
        shutil.rmtree(short, ignore_errors=True)
