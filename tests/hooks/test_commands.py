"""``manage.py statsd_check``: one real datagram, and where it went."""

from __future__ import annotations

import io
import socket

import pytest
from django.core.management import CommandError, call_command


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("statsd_check", *args, stdout=out)
    return out.getvalue()


def test_sends_one_datagram_and_reports_where(udp):
    out = run()
    assert udp.datagrams() == ["statsd_check:1|c"]
    assert "client:    udp" in out
    assert "transport: UDPTransport" in out
    assert "host:      127.0.0.1" in out
    assert f"port:      {udp.port}" in out
    assert f"address:   127.0.0.1:{udp.port}" in out
    assert "metric:    sent: statsd_check:1|c" in out


def test_prefix_and_custom_name(udp, settings):
    settings.STATSD_PREFIX = "shop"
    out = run("--name", "deploy.check")
    assert udp.datagrams() == ["shop.deploy.check:1|c"]
    assert "sent: shop.deploy.check:1|c" in out


@pytest.mark.statsd_send
def test_refused_tcp_is_reported(settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.STATSD_CLIENT = "tcp"
    settings.STATSD_HOST = "127.0.0.1"
    settings.STATSD_PORT = port
    out = io.StringIO()
    with pytest.raises(CommandError, match="could not be sent"):
        call_command("statsd_check", stdout=out)
    assert f"address:   127.0.0.1:{port}" in out.getvalue()
    assert "metric:    dropped: statsd_check:1|c" in out.getvalue()


def test_disabled_is_reported(settings):
    settings.STATSD_ENABLED = False
    with pytest.raises(CommandError, match="disabled"):
        run()
