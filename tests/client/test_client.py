"""The ``statsd`` object, asserted on real datagrams read from a UDP socket."""

from __future__ import annotations

import asyncio
import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from django_statsd_push import names, statsd
from django_statsd_push.client import batching, current_batch, pack

ROOT = Path(__file__).resolve().parents[2]


def test_import_reads_no_settings_and_never_imports_the_daemon_side():
    code = """
import sys
import django_statsd_push, django_statsd_push.client, django_statsd_push.middleware
import django_statsd_push.testing, django_statsd_push.checks, django_statsd_push.apps
import django_statsd_push.browser, django_statsd_push.urls, django_statsd_push.migrating
import django_statsd_push.templatetags.statsd_push
import django_statsd_push.management.commands.statsd_check
from django.conf import settings
from django_statsd_push import statsd
assert not settings.configured, "a settings read at import"
assert statsd._state is None, "configured at import"
daemon = [m for m in sys.modules if m.startswith(
    ("django_statsd_push.server", "django_statsd_push.bridge", "django_statsd_push.render",
     "twisted", "whisper", "prometheus_client"))]
assert not daemon, daemon
"""
    # Not django_statsd_push.panels: debug_toolbar itself reads settings when imported
    # (its utils build the exception reporter filter); the toolbar imports the panel
    # only from a configured project.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT)


def test_pystatsd_api_on_the_wire(udp):
    statsd.incr("a")
    statsd.incr("a", 5)
    statsd.decr("b")
    statsd.timing("t", 12.5)
    statsd.timing("td", datetime.timedelta(milliseconds=3))
    statsd.gauge("g", 7)
    statsd.gauge("g", 2, delta=True)
    statsd.gauge("g", -2, delta=True)
    statsd.set("users", "u-1")
    assert udp.lines() == [
        "a:1|c", "a:5|c", "b:-1|c", "t:12.500000|ms", "td:3.000000|ms",
        "g:7|g", "g:+2|g", "g:-2|g", "users:u-1|s",
    ]


def test_negative_gauge_is_reset_then_set_in_one_datagram(udp):
    statsd.gauge("g", -5)
    assert udp.datagrams() == ["g:0|g\ng:-5|g"]


def test_timer_context_manager_and_decorators(udp):
    with statsd.timer("ctx"):
        pass

    @statsd.timer("sync")
    def work():
        return 41 + 1

    @statsd.timer("async")
    async def awork():
        await asyncio.sleep(0)
        return "done"

    assert work() == 42
    assert asyncio.run(awork()) == "done"
    lines = udp.lines()
    assert [line.split(":")[0] for line in lines] == ["ctx", "sync", "async"]
    assert all(line.endswith("|ms") for line in lines)


def test_pipeline_packs_lines(udp):
    with statsd.pipeline() as pipe:
        pipe.incr("p1")
        pipe.timing("p2", 1)
        pipe.incr(names.metric("p3", ("k", "v")))
    assert udp.datagrams() == ["p1:1|c\np2:1.000000|ms\np3.v:1|c"]


def test_prefix(udp, settings):
    settings.STATSD_PREFIX = "myapp."
    statsd.incr("x")
    statsd.incr(names.request("home", "get"))
    assert udp.lines() == ["myapp.x:1|c", "myapp.request.home.GET:1|c"]


@pytest.mark.parametrize(
    "tag_format, expected",
    [
        (None, "db.default.postgresql.select:1.000000|ms|@0.5"),
        ("dogstatsd", "db:1.000000|ms|@0.5|#alias:default,vendor:postgresql,verb:select"),
        ("graphite", "db;alias=default;vendor=postgresql;verb=select:1.000000|ms|@0.5"),
    ],
)
def test_tag_formats_on_the_wire(udp, settings, tag_format, expected, monkeypatch):
    settings.STATSD_TAG_FORMAT = tag_format
    monkeypatch.setattr("random.random", lambda: 0.0)  # always inside the sample
    statsd.timing(names.db_query("default", "postgresql", "select"), 1, rate=0.5)
    assert udp.lines() == [expected]


def test_sample_rate_setting_multiplies_and_zero_sends_nothing(udp, settings):
    settings.STATSD_SAMPLE_RATE = 0.0
    for _ in range(50):
        statsd.incr("sampled")
    statsd.gauge("sampled", 1)
    assert udp.lines(timeout=0.1) == []


def test_disabled_sends_nothing(udp, settings):
    settings.STATSD_ENABLED = False
    statsd.incr("off")
    assert udp.lines(timeout=0.1) == []


def test_override_settings_moves_the_client(udp, receiver):
    from tests.client.conftest import Receiver

    other = Receiver()
    try:
        statsd.incr("first")
        with override_settings(STATSD_PORT=other.port):
            statsd.incr("second")
        statsd.incr("third")
        assert udp.lines() == ["first:1|c", "third:1|c"]
        assert other.lines() == ["second:1|c"]
    finally:
        other.close()


def test_batch_is_one_datagram_until_the_packet_size(udp, settings):
    settings.STATSD_MAXUDPSIZE = 100
    with batching() as batch:
        assert current_batch() is batch
        for i in range(12):
            statsd.incr(f"metric.number{i:02d}")  # 19 bytes per line
        assert udp.datagrams(timeout=0.05) == []  # buffered, nothing sent yet
    assert current_batch() is None
    datagrams = udp.datagrams()
    assert all(len(d) < 100 for d in datagrams)
    assert len(datagrams) == 3  # 5 + 5 + 2 lines
    assert [line for d in datagrams for line in d.split("\n")] == [
        f"metric.number{i:02d}:1|c" for i in range(12)
    ]


@pytest.mark.parametrize("size", [64, 100, 19, 20, 21, 512])
def test_pack_is_pystatsds_packing(size):
    """``pack`` (batches) and pystatsd's UDP Pipeline (``statsd.pipeline()``) cut alike."""
    from statsd.client.udp import Pipeline as PystatsdPipeline

    lines = [f"m{i}:{'1' * (i % 7)}|c" for i in range(40)] + ["x" * 30 + ":1|c", "y:1|c"]
    sent: list[str] = []

    class Client:
        _prefix, _maxudpsize, _after = None, size, sent.append

    pipe = PystatsdPipeline(Client())
    pipe._stats.extend(lines)
    pipe._send()
    assert pack(lines, size) == sent
    assert pack([], size) == []


def test_names_are_sanitised_on_the_wire(udp):
    statsd.incr("bad name:with|pipes\nand newline")
    statsd.incr(names.metric("request", ("view", "a.b/c d"), "x"))
    assert udp.lines() == ["bad_name_with_pipes_and_newline:1|c", "request.a_b_c_d.x:1|c"]


def test_bad_values_never_raise(udp):
    statsd.timing("t", "not a number")
    statsd.gauge("g", "x")
    statsd.incr(object())  # odd stat types are stringified, not fatal
    assert udp.lines()[-1].endswith(":1|c")


def test_values_pystatsd_cannot_format_never_raise(udp):
    statsd.incr("c", (1, 2))  # "%s|c" % count
    statsd.decr("c", "a")  # -count
    statsd.set("s", (1, 2))
    statsd.gauge("g", (1, 2))  # value < 0
    with statsd.pipeline() as pipe:
        pipe.incr("p", (1, 2))
        pipe.incr("p")
    statsd.incr("c", count=3)
    assert udp.lines() == ["p:1|c", "c:3|c"]


def test_log_client(settings, caplog):
    settings.STATSD_CLIENT = "log"
    with caplog.at_level("INFO", logger="django_statsd_push"):
        statsd.incr("logged")
    assert "logged:1|c" in caplog.text


def test_capture_client_keeps_datagrams(settings):
    settings.STATSD_CLIENT = "capture"
    statsd.incr("kept")
    assert list(statsd.transport.datagrams) == ["kept:1|c"]


def test_bad_setting_disables_names_it_and_counts(settings, receiver, caplog):
    settings.STATSD_CLIENT = "carrier-pigeon"
    statsd.incr("x")
    statsd.timing("y", 1)
    assert not statsd.state.enabled
    (record,) = caplog.records
    assert record.getMessage() == (
        "statsd: metrics are disabled: STATSD_CLIENT = 'carrier-pigeon' is not valid: "
        "unknown value. Set STATSD_CLIENT to one of 'udp', 'tcp', 'unix', 'null', 'log', "
        "'capture'."
    )
    assert record.exc_info is None  # the setting is named: no traceback
    assert statsd.transport.dropped == 2
    assert receiver.datagrams(timeout=0.05) == []


@pytest.mark.statsd_send
def test_numeric_strings_from_the_environment_are_used(settings, receiver):
    settings.STATSD_HOST = "127.0.0.1"
    settings.STATSD_CLIENT = "udp"
    settings.STATSD_PORT = str(receiver.port)  # os.environ.get("STATSD_PORT", 8125)
    settings.STATSD_MAXUDPSIZE = "1432"
    statsd.incr("from.env")
    assert receiver.lines() == ["from.env:1|c"]
    assert statsd.transport.packet_size == 1432


def test_malformed_hooks_setting_keeps_the_client_working(udp, settings):
    settings.STATSD_HOOKS = 42
    statsd.incr("still.sent")
    assert udp.lines() == ["still.sent:1|c"]


def test_every_name_client_py_exported_is_still_importable():
    """client.py became a package: old imports keep working."""
    import django_statsd_push.client as client

    for name in (
        "statsd", "StatsdClient", "Pipeline", "Batch", "current_batch", "activate_batch",
        "deactivate_batch", "batching", "Transport", "NullTransport", "LogTransport",
        "CaptureTransport", "UDPTransport", "StreamTransport", "TCPTransport",
        "UnixTransport", "Resolver", "build_transport", "State", "load_state", "Heads",
        "Captured", "TIMING_VALUE", "COUNT_VALUE", "HEADS_MAXLEN", "FIRST_LOOKUP_WAIT",
        "STREAM_TIMEOUT", "STREAM_RETRY_AFTER", "STREAM_PACKET_SIZE", "CAPTURE_MAXLEN",
    ):
        assert hasattr(client, name), name
