"""The daemon on real sockets: UDP/TCP in, Carbon lines out, management, signals."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from tests.conftest import require_import

from django_statsd_push.server.config import Settings
from django_statsd_push.server.daemon import Daemon

from .etsy import CarbonCapture
from .helpers import Serve, mgmt, send_udp, wait_carbon_values, wait_received


def stats_of(reply: str) -> dict[str, str]:
    """The management ``stats`` reply as ``{key: value}``, so a check compares whole values."""
    return dict(line.split(": ", 1) for line in reply.splitlines() if ": " in line)


def settings(carbon_port: int, **extra) -> Settings:
    return Settings.from_mapping({"port": 0, "mgmt_port": 0, "graphitePort": carbon_port, **extra})


def test_udp_and_tcp_input_reach_carbon():
    with CarbonCapture() as carbon, Daemon(settings(carbon.port, flushInterval=200)) as daemon:
        send_udp(daemon.port, b"udp.hits:3|c\nudp.t:5|ms")
        with socket.create_connection(("127.0.0.1", daemon.port)) as tcp:
            tcp.sendall(b"tcp.hits:2|c\ntcp.")
            tcp.sendall(b"g:7|g\n")
        wanted = {"stats_counts.udp.hits": "3", "stats_counts.tcp.hits": "2", "stats.gauges.tcp.g": "7",
                  "stats.timers.udp.t.upper": "5"}
        wait_carbon_values(carbon, wanted)


def test_management_interface_speaks_etsy():
    with CarbonCapture() as carbon, Daemon(settings(carbon.port, flushInterval=60000)) as daemon:
        assert mgmt(daemon.mgmt_port, "health") == "health: up\n"
        assert mgmt(daemon.mgmt_port, "health down") == "health: down\n"
        send_udp(daemon.port, b"a.b:1|c\na.c:2|c\nbad\ng:1|g")
        wait_received(daemon, 4)
        stats = mgmt(daemon.mgmt_port, "stats")
        assert stats.startswith("uptime: ") and stats.endswith("END\n\n")
        assert stats_of(stats)["messages.bad_lines_seen"] == "1"
        assert stats_of(stats)["messages.metrics_received"] == "4"
        counters = mgmt(daemon.mgmt_port, "counters")
        assert re.search(r"'a\.b': 1\b", counters) and re.search(r"'statsd\.metrics_received': 4\b", counters)
        assert "deleted: a.b" in mgmt(daemon.mgmt_port, "delcounters a.*")
        assert "'a.b'" not in mgmt(daemon.mgmt_port, "counters")
        assert mgmt(daemon.mgmt_port, "gauges") == "{ g: 1 }\nEND\n\n"
        assert mgmt(daemon.mgmt_port, "nonsense") == "ERROR\n"


def test_deleting_the_daemons_own_counters_does_not_stop_flushing():
    """etsy lets ``delcounters statsd.*`` remove its own counters; they start again at 0."""
    with CarbonCapture() as carbon, Daemon(settings(carbon.port, flushInterval=60000)) as daemon:
        assert "deleted: statsd.bad_lines_seen" in mgmt(daemon.mgmt_port, "delcounters statsd.*")
        send_udp(daemon.port, b"a:1|c\nbad")
        wait_received(daemon, 2)
        assert "'statsd.bad_lines_seen': 1" in mgmt(daemon.mgmt_port, "counters")
        daemon.flush()
        carbon.lines_until(lambda line: line.startswith("stats_counts.statsd.bad_lines_seen 1 "))


def test_kernel_drops_are_reported_as_a_metric():
    with CarbonCapture() as carbon, \
            Daemon(settings(carbon.port, flushInterval=60000, udp_receive_buffer=4096)) as daemon:
        with daemon.lock:  # the reader blocks on the lock; the small buffer overflows
            send_udp(daemon.port, *[b"x:1|c" * 20] * 300)
        daemon.flush()
        daemon.flush()  # the drops counted at the first flush are reported as a counter
        lines = carbon.lines_until(lambda line: line.startswith("stats_counts.statsd.udp_kernel_drops "))
        flushed = int(lines[-1].split()[1])
        assert flushed > 0
        assert int(stats_of(mgmt(daemon.mgmt_port, "stats"))["udp.kernel_drops"]) == flushed


def test_prometheus_sink_is_fed_the_same_snapshot():
    require_import("prometheus_client")
    s = settings(0, flushInterval=60000, graphite_enabled=False, prometheus_listen="127.0.0.1:0")
    with Daemon(s) as daemon:
        (sink,) = daemon.sinks
        send_udp(daemon.port, b"app.requests:5|c")
        wait_received(daemon, 1)
        daemon.flush()
        host, port = sink.address
        body = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=30).read().decode()
        assert "app_requests_total 5.0" in body.splitlines()


def serve(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "django_statsd_push.server.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2],
                            **kwargs)


def test_sigterm_flushes_once_more_and_exits_cleanly():
    with CarbonCapture() as carbon, Serve("--graphite-port", str(carbon.port), "--flush-interval", "600000") as proc:
        send_udp(proc.port, b"last.words:9|c")
        deadline = time.monotonic() + 10
        while "messages.metrics_received: 1" not in mgmt(proc.mgmt_port, "stats"):
            assert time.monotonic() < deadline
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.proc.wait(20) == 0
        lines = carbon.lines_until(lambda line: line.startswith("stats_counts.last.words "))
        assert lines[-1].split()[1] == "9"


def test_sighup_reloads_the_config(tmp_path):
    with CarbonCapture() as carbon:
        config = tmp_path / "statsd.toml"
        config.write_text(f"port = 0\nmgmt_port = 0\ngraphitePort = {carbon.port}\n"
                          "flushInterval = 300\npercentThreshold = [90]\n")
        with Serve("--config", str(config)) as proc:
            config.write_text(config.read_text().replace("[90]", "[75]"))
            proc.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 15
            while True:
                send_udp(proc.port, b"t:1|ms\nt:2|ms")
                try:
                    carbon.lines_until(lambda line: line.startswith("stats.timers.t.upper_75 "), timeout=0.5)
                    break
                except TimeoutError:
                    assert time.monotonic() < deadline
            assert proc.proc.poll() is None
            proc.proc.send_signal(signal.SIGTERM)
            assert proc.proc.wait(20) == 0


def test_bad_config_is_a_clear_error(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("deleteIdelStats = true\n")
    proc = serve("--config", str(config))
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert b"unknown setting(s): deleteIdelStats" in out


@pytest.mark.parametrize("toml,message", [
    ("percentThreshold = [90, 101]\n", "percentThreshold"),
    ("flushInterval = \"10s\"\n", "flushInterval must be int or float"),
    ("[graphite]\nglobalPrefix = \"a/b\"\n", "global_prefix"),
    ("prefixStats = \"..\"\n", "prefixStats"),
    ("histogram = [{metric = \"a\", bins = [\"x\"]}]\n", "histogram bins"),
])
def test_invalid_settings_name_the_problem(tmp_path, toml, message):
    from django_statsd_push.server.config import ConfigError

    path = tmp_path / "s.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        Settings.from_file(path)


def test_dogstatsd_lines_reach_carbon_and_are_counted():
    """serve: DogStatsD fields, service checks (a gauge), events (counted, handed to
    sinks in the snapshot), bare and Telegraf tags in a form Carbon accepts."""
    events = []

    class EventSink:
        def flush(self, snapshot) -> None:
            events.extend(snapshot.events)

        def close(self) -> None:
            pass

    with CarbonCapture() as carbon, Daemon(settings(carbon.port, flushInterval=200)) as daemon:
        daemon.sinks.append(EventSink())
        send_udp(daemon.port, b"dd.hits:2|c|#env:prod,canary|c:abc|T1656581400\ndd.t:1:2:3|ms\n"
                              b"_sc|db.up|2|#env:prod|m:refused\n_e{6,4}:Deploy|done|t:info\ntg.hits,env=prod:4|c\n"
                              b"bad:x|c")
        wanted = {"stats_counts.dd.hits;env=prod;canary=true": "2", "stats.timers.dd.t.count": "3",
                  "stats.gauges.service_check.db.up;env=prod": "2", "stats_counts.tg.hits;env=prod": "4",
                  "stats_counts.statsd.events_received": "1", "stats_counts.statsd.service_checks_received": "1",
                  "stats_counts.statsd.bad_lines_seen": "1"}
        wait_carbon_values(carbon, wanted)
        stats = mgmt(daemon.mgmt_port, "stats")
        assert "messages.events_received: 1" in stats and "messages.service_checks_received: 1" in stats
        assert "messages.rejected.malformed_value: 1" in stats
    assert [(e.title, e.text, e.alert_type) for e in events] == [("Deploy", "done", "info")]


def test_parser_options_come_from_the_config_file():
    from django_statsd_push.server.protocol import Rules

    assert Settings().aggregator_config().rules == Rules()
    chosen = Settings.from_mapping({"exporter_rules": True, "origin_tags": True})
    assert chosen.aggregator_config().rules == Rules(exporter=True, origin_tags=True)


def test_the_last_flush_leaves_out_series_idle_since_the_previous_one():
    """At stop nothing follows: idle series are not repeated (a whole flush again, at half
    a million names), what arrived since the previous flush is all there, and so are the
    daemon's own counters and every gauge."""
    from django_statsd_push.server.aggregate import Aggregator

    aggregator = Aggregator()
    aggregator.ingest(b"idle:1|c\nbusy:1|c\nt_idle:1|ms\nt_busy:2|ms\ns_idle:a|s\ns_busy:b|s\ng:5|g")
    aggregator.flush(1000.0)
    aggregator.ingest(b"busy:2|c\nt_busy:3|ms\nt_busy:4|ms\ns_busy:c|s")
    last = aggregator.swap(1004.0, last=True).snapshot()
    assert {k.name: v for k, v in last.counters.items()} == {
        "busy": 2.0, "statsd.bad_lines_seen": 0.0, "statsd.packets_received": 1.0, "statsd.metrics_received": 4.0}
    assert {k.name: sorted(v) for k, v in last.timers.items()} == {"t_busy": [3.0, 4.0]}
    assert {k.name: v for k, v in last.timer_counts.items()} == {"t_busy": 2.0}
    assert {k.name: set(v) for k, v in last.sets.items()} == {"s_busy": {"c"}}
    assert {k.name for k in last.gauges} == {"g", "statsd.timestamp_lag"}
    regular = Aggregator()
    regular.ingest(b"idle:1|c")
    regular.flush(1000.0)
    assert "idle" in {k.name for k in regular.swap(1010.0).snapshot().counters}  # a regular flush repeats it
