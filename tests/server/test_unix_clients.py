"""Real clients over Unix sockets into real ``statsd-push serve`` and ``bridge`` processes.

The Django client's ``unix`` transport and pystatsd's ``UnixSocketStatsClient`` write
newline-framed lines to the stream socket; Datadog's ``DogStatsd(socket_path=...)``
writes datagrams (DogStatsD's Unix mode) to the datagram socket. Each metric is looked
for where a user would look: the management ``counters``/``gauges``, or ``/metrics``.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

import pytest

from django_statsd_push import statsd
from tests.conftest import require_import

from .helpers import ROOT, Serve, eventually, mgmt


def serve(short_dir: str, *args: str) -> Serve:
    return Serve("--no-graphite", "--flush-interval", "3600000",
                 "--unix-dgram-path", os.path.join(short_dir, "d.sock"),
                 "--unix-stream-path", os.path.join(short_dir, "s.sock"), *args)


@pytest.mark.statsd_send
def test_django_unix_transport_into_serve(short_dir, settings):
    with serve(short_dir) as daemon:
        settings.STATSD_CLIENT = "unix"
        settings.STATSD_UNIX_SOCKET = os.path.join(short_dir, "s.sock")
        try:
            statsd.incr("django.unix.hits", 3)
            statsd.gauge("django.unix.level", 7)
            counters = eventually(lambda: mgmt(daemon.mgmt_port, "counters"),
                                  lambda text: "'django.unix.hits': 3" in text)
            assert "'django.unix.hits': 3" in counters, counters
            assert "'django.unix.level': 7" in mgmt(daemon.mgmt_port, "gauges")
        finally:
            statsd.reset()


def test_pystatsd_unix_socket_client_into_serve(short_dir):
    pystatsd = require_import("statsd")
    with serve(short_dir) as daemon:
        client = pystatsd.UnixSocketStatsClient(os.path.join(short_dir, "s.sock"), timeout=10)
        try:
            client.incr("py.unix.hits", 2)
            with client.pipeline() as pipe:
                pipe.incr("py.unix.hits")
                pipe.timing("py.unix.time", 12)
        finally:
            client.close()
        counters = eventually(lambda: mgmt(daemon.mgmt_port, "counters"),
                              lambda text: "'py.unix.hits': 3" in text)
        assert "'py.unix.hits': 3" in counters, counters
        assert "'py.unix.time': [ 12 ]" in mgmt(daemon.mgmt_port, "timers")


def dogstatsd(path: str):
    base = require_import("datadog.dogstatsd.base")
    return base.DogStatsd(socket_path=path, disable_telemetry=True, socket_timeout=10)


def test_datadog_dogstatsd_socket_path_into_serve(short_dir):
    with serve(short_dir, "--unix-socket-mode", "620") as daemon:
        path = os.path.join(short_dir, "d.sock")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o620
        client = dogstatsd(path)
        try:
            client.increment("dd.unix.hits", 4)
            client.gauge("dd.unix.level", 9)
            client.service_check("dd.unix.check", 1)
            client.event("Deploy", "v1 is out", tags=["env:prod"])
        finally:
            client.close_socket()
        stats = eventually(lambda: mgmt(daemon.mgmt_port, "stats"),
                           lambda text: "messages.events_received: 1" in text)
        assert "messages.events_received: 1" in stats and "messages.bad_lines_seen: 0" in stats, stats
        assert "'dd.unix.hits': 4" in mgmt(daemon.mgmt_port, "counters")
        gauges = mgmt(daemon.mgmt_port, "gauges")
        assert "'dd.unix.level': 9" in gauges and "'service_check.dd.unix.check': 1" in gauges, gauges
        daemon.proc.terminate()
        assert daemon.proc.wait(30) == 0
    assert not os.path.exists(path)  # removed at stop


@pytest.mark.parametrize("scheme", ["unixstream://", ""])
def test_datadog_dogstatsd_on_the_stream_socket_length_prefixed(short_dir, scheme):
    """``unixstream://``, or a bare path that is a stream socket (the client tries a
    datagram first, then a stream): DogStatsD's length-prefixed packets."""
    with serve(short_dir) as daemon:
        client = dogstatsd(scheme + os.path.join(short_dir, "s.sock"))
        try:
            for _ in range(3):
                client.increment("dd.stream.hits", 2, tags=["env:prod"])
            client.gauge("dd.stream.level", 5)
        finally:
            client.close_socket()
        gauges = eventually(lambda: mgmt(daemon.mgmt_port, "gauges"), lambda text: "'dd.stream.level': 5" in text)
        assert "'dd.stream.level': 5" in gauges, daemon.log()
        stats = mgmt(daemon.mgmt_port, "stats")
        assert "messages.metrics_received: 4" in stats and "messages.bad_lines_seen: 0" in stats, stats


def test_datadog_dogstatsd_socket_path_into_bridge(short_dir):
    from tests.bridge.test_standalone import Cli

    path = os.path.join(short_dir, "d.sock")
    command = lambda port, listen: ["bridge", "--statsd-port", str(port), "--listen", listen,  # noqa: E731
                                    "--flush-interval", "50", "--unix-dgram-path", path]
    with Cli(command) as bridge:
        client = dogstatsd(path)
        try:
            client.increment("dd.bridge.hits", 5, tags=["env:prod"])
            client.histogram("dd.bridge.size", 3)
        finally:
            client.close_socket()
        hits = eventually(lambda: bridge.metric("dd_bridge_hits_total", env="prod"), lambda v: v == 5.0)
        assert hits == 5.0
        assert bridge.metric("dd_bridge_size_sum") == 3.0
    assert bridge.proc.returncode == 0, bridge.log()
    assert re.search(r"statsd listening on unix datagram socket .*d\.sock", bridge.log()), bridge.log()
    assert not os.path.exists(path)


def test_bad_unix_settings_are_clear_errors(short_dir):
    from django_statsd_push.server import cli

    path = os.path.join(short_dir, "x.sock")
    assert cli.main(["--port", "0", "--mgmt-port", "0", "--no-graphite", "--unix-dgram-path", path,
                     "--unix-stream-path", path]) == 2
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["--unix-socket-mode", "rw-rw----"])
    with open(path, "w"):
        pass
    result = subprocess.run([sys.executable, "-m", "django_statsd_push.cli", "serve", "--port", "0", "--mgmt-port",
                             "0", "--no-graphite", "--unix-dgram-path", path], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1 and f"{path} exists and is not a socket" in result.stderr, result.stderr
    assert os.path.isfile(path)
