"""``manage.py statsd_check``: one real datagram, and whether the daemon counted it.

The "counted" answers come from the real ``statsd-push serve`` (etsy's management
interface), started as a child process on port 0.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from django_statsd_push.management.commands.statsd_check import read_counters

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("statsd_check", *args, stdout=out)
    return out.getvalue()


def run_failing(*args: str, match: str) -> str:
    out = io.StringIO()
    with pytest.raises(CommandError, match=match):
        call_command("statsd_check", *args, stdout=out)
    return out.getvalue()


@contextlib.contextmanager
def serve(flush_ms: int = 600_000) -> Iterator[tuple[int, int]]:
    """The real daemon, without Carbon: (udp port, management port)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "django_statsd_push.cli", "serve", "--port", "0", "--mgmt-port", "0",
         "--no-graphite", "--flush-interval", str(flush_ms)],
        stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        seen: list[str] = []
        for line in proc.stderr:  # the daemon logs its ports once both are bound
            seen.append(line)
            ports = re.search(r"listening on [\d.]+:(\d+) .*management on [\d.]+:(\d+)", line)
            if ports:
                yield int(ports[1]), int(ports[2])
                break
        else:
            pytest.fail("statsd-push serve did not start: " + "".join(seen))
    finally:
        proc.terminate()
        proc.wait(30)
        proc.stderr.close()


@pytest.fixture
def daemon():
    with serve() as ports:
        yield ports


@pytest.fixture
def to_daemon(settings, daemon, statsd_send):
    settings.STATSD_CLIENT = "udp"
    settings.STATSD_HOST = "127.0.0.1"
    settings.STATSD_PORT = daemon[0]
    return daemon


def test_the_daemon_confirms_it_counted_the_metric(to_daemon):
    port, mgmt = to_daemon
    out = run("--mgmt-port", str(mgmt))
    assert f"management: 127.0.0.1:{mgmt}\n" in out
    assert "metric:     counted: statsd_check:1|c" in out
    assert read_counters("127.0.0.1", mgmt)["statsd_check"] == 1
    run("--mgmt-port", str(mgmt))  # a second run is counted too (before/after, not == 1)
    assert read_counters("127.0.0.1", mgmt)["statsd_check"] == 2


def test_prefix_and_custom_name_are_what_the_daemon_counts(to_daemon, settings):
    settings.STATSD_PREFIX = "shop"
    out = run("--mgmt-port", str(to_daemon[1]), "--name", "deploy.check")
    assert "counted: shop.deploy.check:1|c" in out
    assert read_counters("127.0.0.1", to_daemon[1])["shop.deploy.check"] == 1


def test_another_daemon_on_the_management_port_is_not_a_confirmation(to_daemon, settings, receiver):
    # The metric goes to a plain socket; the daemon whose port was given never sees it.
    settings.STATSD_PORT = receiver.port
    out = run_failing("--mgmt-port", str(to_daemon[1]), match="did not count it within 3 s")
    assert "metric:     NOT counted: statsd_check:1|c" in out
    assert receiver.datagrams() == ["statsd_check:1|c"] * 3  # one per attempt


def test_counted_even_when_the_daemon_flushes_all_the_time(settings, statsd_send):
    # A flush every 20 ms resets the counters between most "before" and "after"
    # readings; the command still sees the increment (or tries again).
    with serve(flush_ms=20) as (port, mgmt):
        settings.STATSD_CLIENT = "udp"
        settings.STATSD_HOST = "127.0.0.1"
        settings.STATSD_PORT = port
        for _ in range(30):  # one attempt alone missed about 1 in 15 here
            assert "counted: statsd_check:1|c" in run("--mgmt-port", str(mgmt))


def test_the_management_port_is_guessed_as_port_plus_one(udp):
    # Nothing answers at the receiver's port + 1 (it is not a daemon): said, exit 1.
    out = run_failing(match=rf"no management interface at 127.0.0.1:{udp.port + 1}.*--mgmt-port")
    assert f"management: 127.0.0.1:{udp.port + 1} (guessed)" in out
    assert udp.datagrams() == []  # nothing sent before the daemon could be asked


def test_no_confirm_only_sends_and_reports_where(udp):
    out = run("--no-confirm")
    assert udp.datagrams() == ["statsd_check:1|c"]
    assert "client:     udp" in out
    assert "transport:  UDPTransport" in out
    assert "host:       127.0.0.1" in out
    assert f"port:       {udp.port}" in out
    assert f"address:    127.0.0.1:{udp.port}" in out
    assert "metric:     sent: statsd_check:1|c" in out
    assert "management" not in out


@pytest.mark.statsd_send
def test_refused_tcp_is_reported(settings, held_port):
    port = held_port()  # refuses connections, and nothing else can listen there
    settings.STATSD_CLIENT = "tcp"
    settings.STATSD_HOST = "127.0.0.1"
    settings.STATSD_PORT = port
    out = run_failing("--no-confirm", match="could not be sent")
    assert f"address:    127.0.0.1:{port}" in out
    assert "metric:     dropped: statsd_check:1|c" in out


def test_disabled_is_reported(settings):
    settings.STATSD_ENABLED = False
    out = run_failing(match="STATSD_ENABLED = False")
    assert "enabled:    no: STATSD_ENABLED = False" in out


def test_a_bad_setting_is_named_with_its_fix(settings):
    settings.STATSD_PORT = "eighty"
    out = run_failing(match=r"disabled by STATSD_PORT \(check django_statsd_push.E002\)")
    assert "enabled:    no: STATSD_PORT = 'eighty' is not valid: 'eighty' is not an integer." in out
    assert "fix:        Set STATSD_PORT to an integer between 1 and 65535" in out


@pytest.mark.slow
def test_the_real_etsy_statsd_confirms_too(settings, statsd_send, etsy_js):
    """etsy statsd 0.9 (node) prints its counters with node's util.inspect: bare keys."""
    from tests.server.etsy import EtsyStatsd

    with EtsyStatsd(etsy_js, {"flushInterval": 600000, "backends": []}) as etsy:
        settings.STATSD_CLIENT = "udp"
        settings.STATSD_HOST = "127.0.0.1"
        settings.STATSD_PORT = etsy.udp_port
        assert "metric:     counted: statsd_check:1|c" in run("--mgmt-port", str(etsy.mgmt_port))
        settings.STATSD_PREFIX = "shop"
        assert "counted: shop.statsd_check:1|c" in run("--mgmt-port", str(etsy.mgmt_port))
        counters = read_counters("127.0.0.1", etsy.mgmt_port)
    assert counters["statsd_check"] == 1 and counters["shop.statsd_check"] == 1
    assert "statsd.packets_received" in counters  # quoted keys are read too
