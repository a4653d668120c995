"""The standalone bridge on real loopback sockets: statsd over UDP and TCP in, /metrics out."""

from __future__ import annotations

import http.client
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from django_statsd_push.bridge.standalone import StandaloneBridge
from tests.bridge.test_http import get
from tests.server.helpers import Child

REPO = Path(__file__).resolve().parents[2]
MAPPING = REPO / "graphite" / "statsd-mapping.yml"


def scrape(address: tuple[str, int]) -> dict[tuple[str, frozenset], float]:
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        connection.request("GET", "/metrics")
        body = connection.getresponse().read().decode()
    finally:
        connection.close()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.02)


@pytest.fixture
def bridge() -> Iterator[StandaloneBridge]:
    with StandaloneBridge(MAPPING, "127.0.0.1:0", "127.0.0.1", 0, flush_interval=0.05) as running:
        yield running


def test_udp_and_tcp_input_reach_metrics(bridge: StandaloneBridge) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"request.polls_index.GET:12|ms\nresponse.200:1|c\nresponse.2xx:1|c", bridge.statsd_address)
    with socket.create_connection(bridge.statsd_address) as tcp:
        tcp.sendall(b"response.200:1|c\nresponse.404:1|c\nrequest:40|ms|#view:detail,method:GET\n")
        tcp.sendall(b"cache.default.get.hit:1|c\nbroken\n")

    def seen() -> bool:
        return scrape(bridge.http_address).get(("statsd_push_bridge_lines_total", frozenset())) == 8.0

    wait_for(seen)
    samples = scrape(bridge.http_address)
    responses = "django_responses_total"
    assert samples[responses, frozenset({("status", "200"), ("status_class", "2xx")})] == 2.0
    assert samples[responses, frozenset({("status", "404"), ("status_class", "4xx")})] == 1.0
    index = frozenset({("view", "polls_index"), ("method", "GET")})
    assert samples["django_request_duration_seconds_count", index] == 1.0
    assert samples["django_request_duration_seconds_sum", index] == pytest.approx(0.012)
    detail = frozenset({("view", "detail"), ("method", "GET")})
    assert samples["django_request_duration_seconds_count", detail] == 1.0
    hits = frozenset({("alias", "default"), ("op", "get"), ("result", "hit")})
    assert samples["django_cache_results_total", hits] == 1.0
    assert samples["statsd_push_bridge_bad_lines_total", frozenset()] == 1.0
    assert samples["statsd_push_bridge_dropped_total", frozenset({("reason", "mapping_drop")})] == 1.0


def test_ready_only_once_the_statsd_ports_listen() -> None:
    bridge = StandaloneBridge(None, "127.0.0.1:0", "127.0.0.1", 0)
    try:
        assert get(bridge.http_address, "/-/ready")[0] == 503  # the HTTP port answers from construction on
        bridge.start()
        assert get(bridge.http_address, "/-/ready")[0] == 200
    finally:
        bridge.close()


def test_close_flushes_what_was_received() -> None:
    bridge = StandaloneBridge(None, "127.0.0.1:0", "127.0.0.1", 0, flush_interval=3600).start()
    try:
        with socket.create_connection(bridge.statsd_address) as tcp:
            tcp.sendall(b"late:5|c\n")
        wait_for(lambda: bridge.aggregator.total("metrics_received") == 1)
    finally:
        bridge.close()
    assert bridge.sink.store.families["late"].series[()].value == 5.0


def test_cli_rejects_bad_mapping_with_its_line(tmp_path) -> None:
    mapping = tmp_path / "m.yml"
    mapping.write_text("mappings:\n  - match: a.*\n    name: ok\n  - match: b\n    labels: {x: y}\n")
    result = subprocess.run(
        [sys.executable, "-m", "django_statsd_push.cli", "bridge", "--mapping", str(mapping),
         "--statsd-port", "0", "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=30, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"{mapping}:4:" in result.stderr and "sets no metric 'name'" in result.stderr


class Cli(Child):
    """A ``statsd-push`` child process (``bridge``, or ``serve`` with its Prometheus sink)
    on loopback ports it picks itself (port 0, read from its log: a port probed free here
    could be taken before it binds it), for signal tests. ``log()`` is its output."""

    STATSD = re.compile(r"statsd (?:listening )?on [^ ]+:(\d+) \(UDP\+TCP\)")
    METRICS = re.compile(r"metrics on http://([^/\s]+):(\d+)/metrics")

    def __init__(self, command: Callable[[int, str], list[str]]) -> None:
        super().__init__(*command(0, "127.0.0.1:0"))
        try:
            self.statsd_port = int(self.wait_log(self.STATSD, 60).group(1))
            metrics = self.wait_log(self.METRICS, 60)
        except BaseException:
            self.close()
            raise
        self.http = (metrics.group(1), int(metrics.group(2)))

    def ready(self) -> bool:
        assert self.proc.poll() is None, self.log()
        try:
            return get(self.http, "/-/ready")[0] == 200
        except OSError:
            return False

    def send(self, lines: bytes) -> None:
        with socket.create_connection(("127.0.0.1", self.statsd_port)) as tcp:
            tcp.sendall(lines)

    def metric(self, name: str, **labels: str) -> float | None:
        assert self.proc.poll() is None, self.log()
        return scrape(self.http).get((name, frozenset(labels.items())))

    def __enter__(self) -> Cli:
        try:
            wait_for(self.ready, timeout=60)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type | None = None, *exc: object) -> None:
        """SIGTERM and wait for it to exit (its output stays in ``log()``); after a failure, kill."""
        if exc_type is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass  # killed by close()
        self.close()


def bridge_command(mapping: str | Path) -> Callable[[int, str], list[str]]:
    return lambda statsd_port, listen: ["bridge", "--mapping", str(mapping), "--statsd-port", str(statsd_port),
                                        "--listen", listen, "--flush-interval", "50"]


def test_cli_serves_then_stops_cleanly_on_sigterm() -> None:
    with Cli(bridge_command(MAPPING)) as cli:
        cli.send(b"response.503:1|c\n")
        wait_for(lambda: cli.metric("django_responses_total", status="503", status_class="5xx") == 1.0)
    assert cli.proc.returncode == 0, cli.log()
    assert "stopping: flushing once more" in cli.log()


def test_lines_other_statsd_clients_send(bridge: StandaloneBridge) -> None:
    """Over real UDP: a relative gauge keeps its base across flushes (the daemon deleted
    the idle gauge in between), DogStatsD fields stay out of label values, packed values
    count once each, a zero counter exists, bad UTF-8 is dropped and counted."""
    address = bridge.statsd_address

    def send(data: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(data, address)

    def value(name: str, **labels: str) -> float | None:
        return scrape(bridge.http_address).get((name, frozenset(labels.items())))

    send(b"g:333|g")
    wait_for(lambda: value("g") == 333.0)
    flushes = value("statsd_push_bridge_flushes_total")
    wait_for(lambda: value("statsd_push_bridge_flushes_total") >= flushes + 2)  # idle flushes: deleted in the daemon
    send(b"g:+4|g\nfoo:100|c|#tag1:value|c:container123|T1656581400\nfoo:42|c|#tag1:value|T1656581400\n"
         b"lat:0.5:120:3|ms\nraw.zero:0|c\ncaf\xe9:1|c\nok:1|c")
    wait_for(lambda: value("ok_total") == 1.0)
    assert value("g") == 337.0
    assert value("foo_total", tag1="value") == 142.0
    assert value("lat_count") == 3.0
    assert value("raw_zero_total") == 0.0
    assert value("statsd_push_bridge_sample_errors_total", reason="invalid_utf8") == 1.0
    assert value("statsd_push_bridge_bad_lines_total") == 1.0
