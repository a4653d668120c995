"""``statsd-push serve`` with the Prometheus sink: one daemon feeds Carbon and /metrics."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from django_statsd_push.bridge.sink import PrometheusSink
from django_statsd_push.server.config import Settings
from django_statsd_push.server.daemon import Daemon
from tests.bridge.test_standalone import scrape, wait_for
from tests.server.etsy import CarbonCapture

MAPPING = Path(__file__).resolve().parents[2] / "graphite" / "statsd-mapping.yml"


def test_daemon_feeds_carbon_and_prometheus_from_one_flush() -> None:
    with CarbonCapture() as carbon:
        settings = Settings(
            port=0, mgmt_port=0, flush_interval_ms=100, graphite_port=carbon.port,
            prometheus_listen="127.0.0.1:0", mapping=str(MAPPING),
        )  # fmt: skip
        with Daemon(settings) as daemon:
            sink = next(s for s in daemon.sinks if isinstance(s, PrometheusSink))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.sendto(b"request.polls_index.GET:250|ms\nresponse.500:1|c", ("127.0.0.1", daemon.port))
            carbon_lines = carbon.lines_until(lambda line: "request.polls_index.GET.count " in line)
            key = ("django_request_duration_seconds_count", frozenset({("view", "polls_index"), ("method", "GET")}))
            wait_for(lambda: scrape(sink.address).get(key) == 1.0)
            samples = scrape(sink.address)
    assert any(line.startswith("stats.timers.request.polls_index.GET.upper 250") for line in carbon_lines)
    status = frozenset({("status", "500"), ("status_class", "5xx")})
    assert samples["django_responses_total", status] == 1.0
    assert samples["django_request_duration_seconds_sum", key[1]] == 0.25


def test_serve_reports_a_bad_mapping_like_any_bad_setting(tmp_path) -> None:
    mapping = tmp_path / "bad.yml"
    mapping.write_text("mappings:\n- match: a\n")
    result = subprocess.run(
        [sys.executable, "-m", "django_statsd_push.cli", "serve", "--port", "0", "--mgmt-port", "0", "--no-graphite",
         "--prometheus-listen", "127.0.0.1:0", "--mapping", str(mapping)],
        capture_output=True, text=True, timeout=30, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert result.returncode != 0
    assert f"{mapping}:2: mapping for 'a' sets no metric 'name'" in result.stderr
    assert "Traceback" not in result.stderr
