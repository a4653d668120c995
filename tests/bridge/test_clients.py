"""The real statsd clients as oracles: what each sends, what ``serve`` and ``bridge`` make of it.

pystatsd (``statsd``), Datadog's Python client (``datadog``) and hot-shots (npm, installed
into ``$XDG_CACHE_HOME/django-statsd-push/hot-shots`` like etsy statsd for the server
tests) send every metric type and option they have to a loopback UDP socket; those
exact datagrams then go through the daemon's parser and aggregator with each command's
rules, into the Carbon sink's formatting (``serve``) and the series store's /metrics page
(``bridge``). Each feature has one expected result per command, whatever the client.

Over Unix sockets (the daemons' ``--unix-stream-path``/``--unix-dgram-path``), pystatsd's
``UnixSocketStatsClient`` and Datadog's ``socket_path=`` are checked to send the very same
lines, with the same results: the table's last row.

The table in docs/bridge.rst ("What statsd clients send") is this test's output:
``STATSD_PUSH_WRITE_DOCS=1`` rewrites it, otherwise the test fails when it is stale.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pytest
from prometheus_client.parser import text_string_to_metric_families

from django_statsd_push.bridge.collector import BridgeCollector
from django_statsd_push.bridge.mapping import Mapper
from django_statsd_push.bridge.store import SeriesStore
from django_statsd_push.server.aggregate import Aggregator, AggregatorConfig
from django_statsd_push.server.carbon_client import lines_of
from django_statsd_push.server.graphite import GraphiteConfig, format_snapshot
from django_statsd_push.server.protocol import ETSY, EXPORTER
from tests.conftest import require
from tests.server.etsy import node_cache, npm_install

DOCS = Path(__file__).resolve().parents[2] / "docs" / "bridge.rst"
START, END = ".. clients-table-start\n", ".. clients-table-end\n"
HOT_SHOTS_VERSION = "17.1.1"

# feature -> (serve: Carbon name -> value, bridge: (sample name, labels) -> value)
FEATURES: dict[str, tuple[dict[str, str], dict[tuple[str, tuple], float]]] = {
    "counter": ({"stats_counts.counter": "3"}, {("counter_total", ()): 3}),
    "sample rate 0.5": ({"stats_counts.rate": "2"}, {("rate_total", ()): 2}),
    "gauge": ({"stats.gauges.gauge": "7"}, {("gauge", ()): 7}),
    "gauge delta": ({"stats.gauges.gdelta": "3"}, {("gdelta", ()): 3}),
    "timer": ({"stats.timers.timer.count": "1", "stats.timers.timer.upper": "12"},
              {("timer_count", ()): 1, ("timer_sum", ()): 0.012}),
    "histogram": ({"stats_counts.hist": "5"}, {("hist_count", ()): 1, ("hist_sum", ()): 5}),
    "distribution": ({"stats_counts.dist": "5"}, {("dist_count", ()): 1, ("dist_sum", ()): 5}),
    "set": ({"stats.sets.set.count": "1"}, {("set", ()): 1}),
    "tags (one bare)": ({"stats_counts.tagged;env=prod;flag=true": "1"}, {("tagged_total", (("env", "prod"),)): 1}),
    "service check": ({"stats.gauges.service_check.check;env=prod": "2"},
                      {("service_check_check", (("env", "prod"),)): 2}),
    "event": ({"stats_counts.statsd.events_received": "1"},
              {("statsd_push_bridge_daemon_events_total", (("event", "events_received"),)): 1}),
    "timestamp": ({"stats.gauges.tsgauge": "5"}, {("tsgauge", ()): 5}),
}
SERVE_TEXT = {
    "histogram": "counter (as etsy)", "distribution": "counter (as etsy)", "event": "counted, Graphite event",
    "tags (one bare)": "``;env=prod;flag=true``", "service check": "gauge ``service_check.check``",
    "timestamp": "value, this flush",
}
BRIDGE_TEXT = {
    "histogram": "histogram", "distribution": "histogram", "event": "counted", "tags (one bare)": "label ``env``",
    "service check": "gauge ``service_check_check``", "timestamp": "value, this flush",
    "timer": "histogram (s)",
}


def pystatsd(port: int, unix: str | None = None) -> None:
    import statsd

    client = statsd.UnixSocketStatsClient(unix, timeout=10) if unix else statsd.StatsClient("127.0.0.1", port)
    try:
        with mock.patch("random.random", return_value=0.0):  # a sampled call is always sent
            client.incr("counter", 3)
            client.incr("rate", 1, rate=0.5)
            client.gauge("gauge", 7)
            client.gauge("gdelta", 3, delta=True)
            client.timing("timer", 12)
            client.set("set", "a")
    finally:
        client.close()


def datadog(port: int, unix: str | None = None) -> None:
    try:
        from datadog.dogstatsd import base
    except ImportError:
        require(False, "the datadog package is not installed")
    where = {"socket_path": unix, "socket_timeout": 10} if unix else {"host": "127.0.0.1", "port": port}
    client = base.DogStatsd(**where, disable_telemetry=True, container_id="abc123", cardinality="low")
    try:
        with mock.patch.object(base, "random", return_value=0.0):
            client.increment("counter", 3)
            client.increment("rate", 1, sample_rate=0.5)
            client.gauge("gauge", 7)
            client.timing("timer", 12)
            client.histogram("hist", 5)
            client.distribution("dist", 5)
            client.set("set", "a")
            client.increment("tagged", 1, tags=["env:prod", "flag"])
            client.service_check("check", 2, tags=["env:prod"], message="down")
            client.event("Deploy", "done", alert_type="info", tags=["env:prod"])
            client.gauge_with_timestamp("tsgauge", 5, 1700000000)
    finally:
        client.close_socket()


HOT_SHOTS_JS = r"""
const StatsD = require('hot-shots'); Math.random = () => 0;
const c = new StatsD({host: '127.0.0.1', port: +process.argv[1], maxBufferSize: 0});
c.increment('counter', 3); c.increment('rate', 1, 0.5); c.gauge('gauge', 7); c.gaugeDelta('gdelta', 3);
c.timing('timer', 12); c.histogram('hist', 5); c.distribution('dist', 5); c.set('set', 'a');
c.increment('tagged', 1, ['env:prod', 'flag']); c.check('check', 2, {message: 'down'}, ['env:prod']);
c.event('Deploy', 'done', {alert_type: 'info'}, ['env:prod']);
c.close();
"""


def hot_shots(port: int) -> None:
    where = npm_install("hot-shots", HOT_SHOTS_VERSION, node_cache("hot-shots"))
    require(where is not None, "node/npm or the hot-shots package is missing")
    subprocess.run(["node", "-e", HOT_SHOTS_JS, str(port)], check=True, cwd=where.parents[1], timeout=60)


CLIENTS: dict[str, Callable[..., None]] = {"pystatsd": pystatsd, "datadog": datadog, "hot-shots": hot_shots}
# The Unix socket each client can send to (``unix=PATH``), and the daemon flag that reads it.
# hot-shots' Unix mode needs a native module (unix-dgram) that is not installed here.
UNIX_KIND = {"pystatsd": socket.SOCK_STREAM, "datadog": socket.SOCK_DGRAM}
UNIX_TEXT = {socket.SOCK_STREAM: "same lines, stream", socket.SOCK_DGRAM: "same lines, datagram"}


def sent_by(client: Callable[[int], None]) -> list[bytes]:
    """The datagrams a client sends for all its features, as they left it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        client(server.getsockname()[1])
        server.settimeout(0.5)  # the client has returned: its datagrams are queued here
        return queued(server)


def sent_over_unix(client: str) -> list[bytes]:
    """The packets a client sends for all its features to a Unix socket of its kind (a
    stream's lines as one packet: the daemon reads them as one newline-framed chunk)."""
    kind = UNIX_KIND[client]
    with tempfile.TemporaryDirectory(prefix="sp-", dir="/tmp") as where, \
            socket.socket(socket.AF_UNIX, kind) as server:
        path = os.path.join(where, "statsd.sock")
        server.bind(path)
        server.settimeout(0.5 if kind == socket.SOCK_DGRAM else 30)
        if kind == socket.SOCK_STREAM:
            server.listen()
        CLIENTS[client](0, unix=path)
        if kind == socket.SOCK_STREAM:  # the client has sent and closed: read to the end
            conn, _ = server.accept()
            with conn:
                return [b"".join(iter(lambda: conn.recv(65536), b""))]
        return queued(server)


def queued(server: socket.socket) -> list[bytes]:
    """The datagrams waiting on ``server``, read until its timeout passes with none."""
    received = []
    try:
        while True:
            received.append(server.recv(65536))
    except TimeoutError:
        return received


def lines_in(packets: list[bytes]) -> list[str]:
    return sorted(line for packet in packets for line in packet.decode().split("\n") if line)


def serve_view(datagrams: list[bytes]) -> dict[str, str]:
    aggregator = Aggregator(AggregatorConfig(rules=ETSY))
    for datagram in datagrams:
        aggregator.ingest(datagram)
    return {name: value for name, value, _ in lines_of(format_snapshot(aggregator.flush(1000.0), GraphiteConfig()))}


def bridge_view(datagrams: list[bytes]) -> dict[tuple[str, tuple], float]:
    aggregator = Aggregator(AggregatorConfig(rules=EXPORTER, delete_idle_stats=True))
    store = SeriesStore(Mapper([]), idle_repeats=False)
    for datagram in datagrams:
        aggregator.ingest(datagram)
    store.apply(aggregator.flush(1000.0))
    page = BridgeCollector(store).render().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(page) for s in family.samples}


# the metric name (or line start) each feature is sent under
SENT_AS = {"counter": "counter:", "sample rate 0.5": "rate:", "gauge": "gauge:", "gauge delta": "gdelta:",
           "timer": "timer:", "histogram": "hist:", "distribution": "dist:", "set": "set:",
           "tags (one bare)": "tagged:", "service check": "_sc|check|", "event": "_e{", "timestamp": "tsgauge:"}


def line_of(feature: str, datagrams: list[bytes]) -> str | None:
    """The line a client sent for a feature, or None when it has no such call."""
    for datagram in datagrams:
        for line in datagram.decode().split("\n"):
            if line.startswith(SENT_AS[feature]):
                return line
    return None


def check_features(name: str, packets: list[bytes]) -> int:
    """Assert each feature the client sent comes out of serve and bridge as FEATURES say;
    how many features it sent."""
    serve, bridge = serve_view(packets), bridge_view(packets)
    checked = 0
    for feature, (want_serve, want_bridge) in FEATURES.items():
        if line_of(feature, packets) is None:
            continue  # the client has no such call
        checked += 1
        assert {k: serve.get(k) for k in want_serve} == want_serve, (name, feature)
        assert {k: pytest.approx(bridge.get(k)) for k in want_bridge} == want_bridge, (name, feature)
    assert serve["stats_counts.statsd.bad_lines_seen"] == "0", name
    assert bridge["statsd_push_bridge_bad_lines_total", ()] == 0, name
    return checked


@pytest.mark.parametrize("client", CLIENTS)
def test_what_each_client_sends_is_what_serve_and_bridge_get(client: str) -> None:
    datagrams = sent_by(CLIENTS[client])
    assert datagrams, f"{client} sent nothing"
    assert check_features(client, datagrams) >= 6


@pytest.mark.parametrize("client", UNIX_KIND)
def test_over_a_unix_socket_each_client_sends_what_it_sends_over_udp(client: str) -> None:
    packets = sent_over_unix(client)
    assert lines_in(packets) == lines_in(sent_by(CLIENTS[client]))
    assert check_features(f"{client} (unix)", packets) >= 6


UNIX_ROW = "Unix socket"
UNIX_DAEMON = "``--unix-*-path``"


def table(lines: dict[str, list[bytes]], unix: dict[str, int]) -> str:
    """``unix``: the kind of Unix socket each client was checked to send the same lines to."""
    def cell(text: str | None) -> str:
        return "``" + text.replace("`", "'") + "``" if text else "--"

    rows = [["feature", *CLIENTS, "serve (Carbon)", "bridge (/metrics)"]]
    for feature in FEATURES:
        rows.append([feature, *(cell(line_of(feature, lines[c])) for c in CLIENTS),
                     SERVE_TEXT.get(feature, "as sent"), BRIDGE_TEXT.get(feature, "as sent")])
    rows.append([UNIX_ROW, *(UNIX_TEXT[unix[c]] if c in unix else "--" for c in CLIENTS), UNIX_DAEMON, UNIX_DAEMON])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    rule = "  ".join("=" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join([rule, body[0], rule, *body[1:], rule]) + "\n"


def test_docs_table_is_this_tests_output() -> None:
    lines = {name: sent_by(client) for name, client in CLIENTS.items()}
    for name, datagrams in lines.items():  # the table only states what the tests above check
        check_features(name, datagrams)
    unix = {}
    for name, kind in UNIX_KIND.items():
        packets = sent_over_unix(name)
        assert lines_in(packets) == lines_in(lines[name]), name
        check_features(f"{name} (unix)", packets)
        unix[name] = kind
    generated = table(lines, unix)
    text = DOCS.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    if os.environ.get("STATSD_PUSH_WRITE_DOCS"):
        DOCS.write_text(head + START + "\n" + generated + "\n" + END + tail)
    assert START + "\n" + generated + "\n" + END in DOCS.read_text(), "docs/bridge.rst: rerun with STATSD_PUSH_WRITE_DOCS=1"
