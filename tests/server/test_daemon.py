"""The daemon on real sockets: UDP/TCP in, Carbon lines out, management, signals."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from django_statsd_push.server.config import Settings
from django_statsd_push.server.daemon import Daemon

from .etsy import CarbonCapture
from .helpers import Serve, mgmt, send_udp, wait_received


def settings(carbon_port: int, **extra) -> Settings:
    return Settings.from_mapping({"port": 0, "mgmt_port": 0, "graphitePort": carbon_port, **extra})


def test_udp_and_tcp_input_reach_carbon():
    with CarbonCapture() as carbon, Daemon(settings(carbon.port, flushInterval=200)) as daemon:
        send_udp(daemon.port, b"udp.hits:3|c\nudp.t:5|ms")
        with socket.create_connection(("127.0.0.1", daemon.port)) as tcp:
            tcp.sendall(b"tcp.hits:2|c\ntcp.")
            tcp.sendall(b"g:7|g\n")
        seen = {}
        wanted = {"stats_counts.udp.hits": "3", "stats_counts.tcp.hits": "2", "stats.gauges.tcp.g": "7",
                  "stats.timers.udp.t.upper": "5"}

        def done(line: str) -> bool:
            name, value, _ = line.split()
            if name in wanted and value == wanted[name]:
                seen[name] = value
            return seen == wanted

        carbon.lines_until(done)


def test_management_interface_speaks_etsy():
    with CarbonCapture() as carbon, Daemon(settings(carbon.port, flushInterval=60000)) as daemon:
        assert mgmt(daemon.mgmt_port, "health") == "health: up\n"
        assert mgmt(daemon.mgmt_port, "health down") == "health: down\n"
        send_udp(daemon.port, b"a.b:1|c\na.c:2|c\nbad\ng:1|g")
        deadline = time.monotonic() + 5
        while "messages.metrics_received: 4" not in (stats := mgmt(daemon.mgmt_port, "stats")):
            assert time.monotonic() < deadline, stats
        assert stats.startswith("uptime: ") and stats.endswith("END\n\n")
        assert "messages.bad_lines_seen: 1" in stats
        counters = mgmt(daemon.mgmt_port, "counters")
        assert "'a.b': 1" in counters and "'statsd.metrics_received': 4" in counters
        assert "deleted: a.b" in mgmt(daemon.mgmt_port, "delcounters a.*")
        assert "'a.b'" not in mgmt(daemon.mgmt_port, "counters")
        assert "'g': 1" in mgmt(daemon.mgmt_port, "gauges")
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
        assert int(lines[-1].split()[1]) > 0
        assert "udp.kernel_drops: " in mgmt(daemon.mgmt_port, "stats")


def test_prometheus_sink_is_fed_the_same_snapshot():
    pytest.importorskip("prometheus_client")
    s = settings(0, flushInterval=60000, graphite_enabled=False, prometheus_listen="127.0.0.1:0")
    with Daemon(s) as daemon:
        (sink,) = daemon.sinks
        send_udp(daemon.port, b"app.requests:5|c")
        wait_received(daemon, 1)
        daemon.flush()
        host, port = sink.address
        body = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
        assert "app_requests" in body


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
