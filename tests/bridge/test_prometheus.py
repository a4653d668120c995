"""End to end with a REAL Prometheus server scraping the bridge on loopback.

statsd packets in, Prometheus scrapes /metrics every second, and the values and labels
are read back through Prometheus's own query API (/api/v1/query).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from django_statsd_push.bridge.standalone import StandaloneBridge
from tests.conftest import require_program

pytestmark = pytest.mark.slow

MAPPING = Path(__file__).resolve().parents[2] / "graphite" / "statsd-mapping.yml"


def poll(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Call ``check`` until it returns something truthy (external process: poll, deadline)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not before {timeout}s (last: {last!r})")


class Prometheus:
    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.base + path, timeout=30) as response:
            return response.read()

    def query(self, expr: str) -> list[dict]:
        body = json.loads(self.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, expr: str, expected: float, timeout: float = 60.0) -> dict:
        """Wait until the query has one series with ``expected``; return its labels."""

        def check() -> dict | None:
            result = self.query(expr)
            if len(result) == 1 and float(result[0]["value"][1]) == pytest.approx(expected):
                return result[0]["metric"]
            return None

        return poll(check, timeout, f"{expr} == {expected}")


@pytest.fixture
def bridge() -> Iterator[StandaloneBridge]:
    with StandaloneBridge(MAPPING, "127.0.0.1:0", "127.0.0.1", 0, flush_interval=0.2) as running:
        yield running


@pytest.fixture
def prometheus(tmp_path: Path, bridge: StandaloneBridge, held_port) -> Iterator[Prometheus]:
    binary = require_program("prometheus")
    host, port = bridge.http_address
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: bridge\n    static_configs:\n"
        f"      - targets: ['{host}:{port}']\n"
    )
    web = held_port()  # Go listens with SO_REUSEADDR; prometheus does not say which port 0 gave it
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{web}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        server = Prometheus(f"http://127.0.0.1:{web}")

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited: {(tmp_path / 'prometheus.log').read_text()}")
            return server.get("/-/ready").strip().startswith(b"Prometheus Server is Ready")

        poll(ready, 30, "prometheus ready")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_prometheus_scrapes_mapped_statsd_metrics(bridge: StandaloneBridge, prometheus: Prometheus) -> None:
    packets = [
        # plain Graphite-style names, as the Django side sends them by default
        b"request.polls_index.GET:12|ms\nrequest.polls_index.GET:30|ms\nrequest.polls_index.GET:400|ms",
        b"response.200:1|c\nresponse.2xx:1|c\nresponse.200:1|c|@0.5\nresponse.500:1|c\nresponse.5xx:1|c",
        b"db.default.postgresql.select:2|ms\ncache.default.get.miss:1|c\nmigrations.default.unapplied:3|g",
        # the tagged (DogStatsD) form lands on the same names
        b"request:20|ms|#view:polls_detail,method:POST\ncelery.sent:1|c|#task:send_mail",
        # InfluxDB-style tags on an unmapped name
        b"jobs.done,queue=high:4|c",
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for packet in packets:
            udp.sendto(packet, bridge.statsd_address)

    labels = prometheus.value('django_responses_total{status="200"}', 3.0)
    assert labels["status_class"] == "2xx" and labels["job"] == "bridge"
    prometheus.value('django_responses_total{status_class="5xx"}', 1.0)
    index = '{view="polls_index",method="GET"}'
    prometheus.value(f"django_request_duration_seconds_count{index}", 3.0)
    prometheus.value(f"django_request_duration_seconds_sum{index}", 0.442)
    prometheus.value('django_request_duration_seconds_bucket{view="polls_index",le="0.025"}', 1.0)
    prometheus.value('django_request_duration_seconds_bucket{view="polls_index",le="0.5"}', 3.0)
    prometheus.value('django_request_duration_seconds_count{view="polls_detail",method="POST"}', 1.0)
    labels = prometheus.value("django_db_query_duration_seconds_count", 1.0)
    assert (labels["alias"], labels["vendor"], labels["verb"]) == ("default", "postgresql", "select")
    prometheus.value('django_cache_results_total{alias="default",op="get",result="miss"}', 1.0)
    prometheus.value('django_migrations{alias="default",state="unapplied"}', 3.0)
    prometheus.value('celery_task_events_total{task="send_mail",event="sent"}', 1.0)
    prometheus.value('jobs_done_total{queue="high"}', 4.0)
    # the bridge's own health is scraped too
    prometheus.value("statsd_push_bridge_lines_total", 14.0)
    prometheus.value('statsd_push_bridge_dropped_total{reason="mapping_drop"}', 2.0)
    assert prometheus.query('up{job="bridge"}')[0]["value"][1] == "1"
