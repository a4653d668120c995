"""SIGHUP: every setting is applied or logged by name as needing a restart, as the one
table in ``server/config.py`` says; a SIGTERM right behind a SIGHUP is not lost; and a
storm of signals cannot deadlock the main loop."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from django_statsd_push.server.config import RELOAD, RESTART, SETTINGS, Settings, settings_table_rst
from django_statsd_push.server.daemon import Daemon
from django_statsd_push.server.snapshot import SeriesKey

from .etsy import CarbonCapture
from .helpers import Serve, mgmt, send_udp, wait_received

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "daemon.rst"


def test_every_setting_has_one_row_saying_how_it_applies():
    attrs = [s.attr for s in SETTINGS]
    assert sorted(attrs) == sorted(f.name for f in dataclasses.fields(Settings))
    assert len({s.key for s in SETTINGS}) == len(SETTINGS)
    assert {s.applies for s in SETTINGS} == {RELOAD, RESTART}
    assert all(s.how for s in SETTINGS)


def test_the_docs_show_the_codes_table():
    assert settings_table_rst() in DOCS.read_text()


def settings(**extra) -> Settings:
    return Settings.from_mapping({"port": 0, "mgmt_port": 0, **extra})


def test_reload_applies_the_settings_that_were_silently_ignored(caplog):
    root = logging.getLogger()
    level = root.level
    with CarbonCapture() as carbon, Daemon(settings(graphitePort=carbon.port, flushInterval=60000)) as daemon:
        try:
            old_buffer = daemon.udp.receive_buffer
            new = settings(graphitePort=carbon.port, flushInterval=60000, udp_receive_buffer=65536,
                           max_packet_size=100, log_level="ERROR", carbon_buffer_lines=7,
                           carbon_reconnect_max=2.5, max_series=1234)
            with caplog.at_level(logging.INFO, "django_statsd_push.server.daemon"):
                daemon.reload(new)
            assert root.level == logging.ERROR
            assert daemon.udp.receive_buffer != old_buffer
            assert daemon.udp.receive_buffer == daemon.udp.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            assert (daemon.carbon.max_lines, daemon.carbon.reconnect_max) == (7, 2.5)
            assert daemon.aggregator.config.max_series == 1234
            for key in ("udp_receive_buffer", "max_packet_size", "log_level", "carbon_buffer_lines",
                        "carbon_reconnect_max", "max_series"):
                assert f"reload: {key} " in caplog.text
            send_udp(daemon.port, b"big:1|c\n" * 20, b"small:1|c")
            wait_received(daemon, 1)
            assert daemon.aggregator.total("packets_too_large") == 1
            with socket.create_connection(("127.0.0.1", daemon.port)) as tcp:
                tcp.sendall(b"x" * 150)
                deadline = time.monotonic() + 10
                while daemon.aggregator.total("lines_too_long") < 1:
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
            config = mgmt(daemon.mgmt_port, "config")
            assert "max_packet_size: 100\n" in config and "carbon_buffer_lines: 7\n" in config
        finally:
            root.setLevel(level)


def test_a_restart_only_setting_is_logged_by_name_and_the_running_value_shown(caplog):
    with Daemon(settings(graphite_enabled=False, flushInterval=60000)) as daemon:
        port = daemon.port
        with caplog.at_level(logging.INFO, "django_statsd_push.server.daemon"):
            daemon.reload(settings(graphite_enabled=True, prefixStats="other", flushInterval=60000,
                                   address="127.0.0.2"))
        for key in ("graphite_enabled", "prefixStats", "address"):
            assert f"reload: {key} changed to " in caplog.text and "needs a restart" in caplog.text
        assert "reload: port" not in caplog.text  # 0 both times: unchanged
        assert (daemon.settings.graphite_enabled, daemon.settings.prefix_stats) == (False, "statsd")
        config = mgmt(daemon.mgmt_port, "config")
        assert "prefix_stats: statsd\n" in config and "host: 127.0.0.1\n" in config
        send_udp(port, b"still:1|c")
        wait_received(daemon, 1)
        assert SeriesKey("statsd.metrics_received") in daemon.aggregator.flush(time.time()).counters


def test_sigterm_right_after_sighup_is_not_lost(tmp_path):
    with CarbonCapture() as carbon:
        config = tmp_path / "statsd.toml"
        config.write_text(f"port = 0\nmgmt_port = 0\ngraphitePort = {carbon.port}\nflushInterval = 600000\n")
        with Serve("--config", str(config)) as serve:
            send_udp(serve.port, b"before.stop:4|c")
            deadline = time.monotonic() + 10
            while "messages.metrics_received: 1" not in mgmt(serve.mgmt_port, "stats"):
                assert time.monotonic() < deadline
            serve.proc.send_signal(signal.SIGHUP)
            serve.proc.send_signal(signal.SIGTERM)
            assert serve.proc.wait(30) == 0
            lines = carbon.lines_until(lambda line: line.startswith("stats_counts.before.stop "))
            assert lines[-1].split()[1] == "4"
            # Whether the reload ran before the stop is not asserted: the kernel may hand the
            # SIGHUP to another thread that runs its handler after the main thread has taken
            # the SIGTERM (seen on a loaded machine). What must hold is that the SIGTERM is
            # not lost: the process exits 0 after its final flush.


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.applies == RESTART], ids=lambda s: s.key)
def test_restart_rows_are_restart_only_in_the_reload(setting, caplog):
    """Each RESTART row is kept at its running value by ``reload`` (table-driven)."""
    base = settings(graphite_enabled=False, flushInterval=60000)
    changed = dataclasses.replace(base, **{setting.attr: _other(getattr(base, setting.attr))})
    with Daemon(base) as daemon, caplog.at_level(logging.WARNING, "django_statsd_push.server.daemon"):
        daemon.reload(changed)
        assert getattr(daemon.settings, setting.attr) == getattr(base, setting.attr)
        assert f"reload: {setting.key} changed" in caplog.text


def _other(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if value is None:
        return "127.0.0.1:1"
    return value + "x" if not value[0].isdigit() else "127.0.0.3"


# The main loop of ``serve``/``bridge`` with a daemon that reloads at once, under a storm
# of SIGHUPs then a SIGTERM. A Python signal handler runs on the main thread between two
# bytecodes, so a handler that takes a lock the main thread may be holding (as
# ``threading.Event.set`` did, while the loop was inside the same Event's ``wait`` or
# ``clear``) hangs the process for good; ``SimpleQueue.put`` is reentrant. A signal
# handled on the storm thread only sets a flag: the main loop's 0.2 s slices pick it up.
# (The Event-based loop this replaced hung here in 3 runs of 3; this one takes 0.2 s.)
_STORM = textwrap.dedent("""
    import os, signal, threading
    from django_statsd_push.server.cli import run_until_stopped, signal_queue

    class Daemon:
        reloads = 0

        def reload(self, settings):
            self.reloads += 1

        def stop(self):
            print("stopped after", self.reloads, "reloads", flush=True)

    def storm():  # signals the kernel may deliver to this thread or the main one
        for _ in range(20000):
            os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGTERM)

    signals = signal_queue()
    threading.Thread(target=storm, daemon=True).start()
    run_until_stopped(Daemon(), signals, lambda: None)
""")


def test_a_storm_of_signals_never_deadlocks_the_main_loop():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _STORM], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("stopped after ") and " 0 reloads" not in done.stdout
