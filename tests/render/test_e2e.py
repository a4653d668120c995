"""End to end: statsd packets -> our daemon -> REAL carbon-cache -> Whisper -> render API."""

from __future__ import annotations

import http.client
import io
import json
import socket
import time
import urllib.request
from urllib.parse import urlencode

import numpy as np
import pytest
import statsd
import whisper

from django_statsd_push.render.app import RenderApp
from django_statsd_push.stack import carbon_cache
from django_statsd_push.render.carbonlink import CarbonLink
from django_statsd_push.render.httpserver import BackgroundServer

from ..conftest import require

pytestmark = pytest.mark.slow


def query(url: str, path: str, params) -> object:
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", f"{path}?{urlencode(params, doseq=True)}")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, body
        return json.loads(body)
    finally:
        conn.close()


def wait_for_values(url: str, target: str, expected: list[float], timeout: float = 60.0) -> None:
    """Carbon writes each file asynchronously: poll the render API (with a deadline) until the
    non-null points are the expected ones (a sum over two files may first see only one)."""
    deadline = time.monotonic() + timeout
    while True:
        doc = query(url, "/render", {"target": target, "from": "-5min", "format": "json"})
        values = [v for series in doc for v, _ in series["datapoints"] if v is not None]
        if values == expected:
            return
        assert time.monotonic() < deadline, f"{target}: {values}, expected {expected}"
        time.sleep(0.2)


def carbon_launcher() -> type[carbon_cache.CarbonCache]:
    try:
        carbon_cache.find_carbon_cache()
    except carbon_cache.CarbonCacheError as exc:
        require(False, str(exc))
    return carbon_cache.CarbonCache


def png_pixels(url: str, params: dict):
    """A /render PNG (the default format) decoded by Pillow into an RGB array."""
    from PIL import Image

    with urllib.request.urlopen(f"{url}/render?{urlencode(params)}", timeout=30) as response:
        assert response.headers["Content-Type"] == "image/png"
        with Image.open(io.BytesIO(response.read())) as image:
            return np.asarray(image.convert("RGB")).astype(int)


def test_statsd_packets_are_rendered(tmp_path):
    from django_statsd_push.server.config import Settings
    from django_statsd_push.server.daemon import Daemon

    with carbon_launcher()(tmp_path / "carbon", first_retention="1s:1h") as carbon:
        settings = Settings.from_mapping({"port": 0, "mgmt_port": 0, "flushInterval": 60000,
                                          "graphitePort": carbon.line_port})
        with Daemon(settings) as daemon:
            client = statsd.StatsClient("127.0.0.1", daemon.port)
            try:
                client.incr("e2e.hits", 3)
                client.incr("e2e.hits", 4)
                client.incr("e2e.misses", 5)
                for ms in (10, 30, 20):
                    client.timing("e2e.lat", ms)
            finally:
                client.close()
            deadline = time.monotonic() + 30
            while daemon.status()["messages.metrics_received"] < 6:
                assert time.monotonic() < deadline, "daemon did not receive the packets"
                time.sleep(0.01)
            daemon.flush()
            assert daemon.carbon.wait_sent(30)
            with BackgroundServer(RenderApp(str(carbon.whisper_dir), static_dir=None)) as url:
                wait_for_values(url, "stats_counts.e2e.hits", [7])
                wait_for_values(url, "sumSeries(stats_counts.e2e.*)", [12])
                wait_for_values(url, "stats.timers.e2e.lat.upper", [30])
                wait_for_values(url, "aliasByNode(stats.timers.e2e.lat.mean, 4)", [20])
                doc = query(url, "/render", {"target": "sumSeries(stats_counts.e2e.*)", "from": "-5min",
                                                 "format": "json"})
                assert doc[0]["target"] == "sumSeries(stats_counts.e2e.*)"
                found = query(url, "/metrics/find", {"query": "stats_counts.e2e.*"})
                assert {(n["text"], n["leaf"]) for n in found} == {("hits", 1), ("misses", 1)}
                # and drawn: the one flushed point (12 of 0..24) is red at the graph's middle row
                # (staircase: a lone point is a step; as a slope it is a line of no length)
                pixels = png_pixels(url, {"target": "color(sumSeries(stats_counts.e2e.*),'ff0000')", "from": "-5min",
                                          "graphOnly": "true", "yMin": "0", "yMax": "24", "lineWidth": "4",
                                          "lineMode": "staircase", "width": "300", "height": "200"})
                red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
                rows = np.flatnonzero(red.any(axis=1))
                assert len(rows) and 96 <= rows.min() and rows.max() <= 104, rows


def test_carbonlink_merges_points_carbon_has_not_written(tmp_path):
    """carbon holds points younger than MIN_TIMESTAMP_LAG in memory: only carbonlink sees them."""
    settings = {"CACHE_WRITE_STRATEGY": "timesorted", "MIN_TIMESTAMP_LAG": "3600"}
    with carbon_launcher()(tmp_path / "carbon", first_retention="1s:1h", settings=settings) as carbon:
        path = carbon.whisper_file("held.metric")
        path.parent.mkdir(parents=True)
        whisper.create(str(path), [(1, 3600)])  # the file exists, as carbon would have created it
        with socket.create_connection(("127.0.0.1", carbon.line_port)) as sock:
            sock.sendall(f"held.metric 42 {int(time.time())}\n".encode())
        link = CarbonLink("127.0.0.1", carbon.query_port)
        deadline = time.monotonic() + 30
        while not link.query(["held.metric"]).get("held.metric"):
            assert time.monotonic() < deadline, "carbon never cached the point"
            time.sleep(0.05)
        plain = RenderApp(str(carbon.whisper_dir), static_dir=None)
        linked = RenderApp(str(carbon.whisper_dir), static_dir=None, carbonlink=link)
        with BackgroundServer(plain) as plain_url, BackgroundServer(linked) as linked_url:
            params = {"target": "held.metric", "from": "-5min", "format": "json"}
            assert {v for v, _ in query(plain_url, "/render", params)[0]["datapoints"]} == {None}
            assert [v for v, _ in query(linked_url, "/render", params)[0]["datapoints"] if v is not None] == [42]
    assert CarbonLink("127.0.0.1", carbon.query_port, timeout=0.2).query(["held.metric"]) == {}  # carbon gone
