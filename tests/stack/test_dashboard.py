"""The dashboard and the Grafana dashboard against the REAL render API over real Whisper files.

The page is loaded in Debian's headless Chromium; the test reads the data-points
attributes the page writes into the DOM after its render queries come back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from django_statsd_push.stack import health
from tests.conftest import require_import
from tests.stack.dashboard_page import panel_points, panels

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "graphite" / "grafana" / "django-statsd-push.json"

# What the daemon writes for the example app (two views, a few status classes, the cache).
METRICS = [
    f"stats.timers.request.{view}.GET.{stat}"
    for view in ("index", "polls_list")
    for stat in ("count_ps", "upper_90", "upper_99", "median", "db_queries.mean", "db_time.mean")
] + [
    "stats.response.2xx", "stats.response.4xx", "stats.response.5xx",
    "stats_counts.cache.default.get.hit", "stats_counts.cache.default.get.miss",
    "stats_counts.request.exception.ZeroDivisionError", "stats.request.exception.ZeroDivisionError",
    "stats.timers.db.default.sqlite.select.upper_90",
    "stats_counts.statsd.packets_received", "stats_counts.statsd.metrics_received",
    "stats_counts.statsd.bad_lines_seen",
]



def dashboard_targets() -> list[str]:
    return [t for panel in panels() for t in panel["targets"]]


def grafana_targets() -> list[str]:
    dash = json.loads(GRAFANA.read_text())
    return [t["target"] for panel in dash["panels"] for t in panel["targets"]]


def write_whisper(root: Path, names: list[str], step: int = 10, points: int = 60) -> None:
    whisper = require_import("whisper")

    now = int(time.time()) // step * step
    for i, name in enumerate(names):
        path = root.joinpath(*name.split(".")).with_suffix(".wsp")
        path.parent.mkdir(parents=True, exist_ok=True)
        whisper.create(str(path), [(step, 360)])
        whisper.update_many(str(path), [(now - k * step, float(i + 1 + k % 7)) for k in range(points)])


@pytest.fixture(scope="module")
def render_api(tmp_path_factory):
    """(host, port) of a real ``statsd-push render`` over fresh Whisper files."""
    root = tmp_path_factory.mktemp("whisper")
    write_whisper(root, METRICS)
    port = health.free_port()
    log = (root.parent / "render.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "django_statsd_push.cli", "render", "--whisper-root", str(root),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    try:
        health.wait_until(lambda: health.http_status("127.0.0.1", port, "/version") == 200,
                          "render API", 30, alive=lambda: proc.poll() is None)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def render_json(host: str, port: int, target: str) -> list[dict]:
    query = urllib.parse.urlencode({"target": target, "from": "-15min", "format": "json"})
    with urllib.request.urlopen(f"http://{host}:{port}/render?{query}", timeout=30) as response:
        assert response.status == 200
        return json.load(response)


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(set(dashboard_targets() + grafana_targets())))
def test_every_panel_target_returns_data(render_api, target: str) -> None:
    series = render_json(*render_api, target)
    assert series, f"{target} matched nothing"
    assert any(v is not None for s in series for v, _ in s["datapoints"]), f"{target}: no points"


@pytest.mark.slow
def test_cache_hit_ratio_is_a_percentage(render_api) -> None:
    (target,) = next(p["targets"] for p in panels() if p["id"] == "cache-hit-ratio")
    (series,) = render_json(*render_api, target)
    values = [v for v, _ in series["datapoints"] if v is not None]
    assert values and all(0 <= v <= 100 for v in values)


@pytest.mark.slow
def test_page_draws_every_chart_in_headless_chromium(render_api, tmp_path: Path) -> None:
    points = panel_points(*render_api, tmp_path / "profile")
    assert list(points) == [p["id"] for p in panels()]
    assert all(n > 0 for n in points.values()), points


def test_grafana_dashboard_imports_with_one_graphite_datasource_input() -> None:
    dash = json.loads(GRAFANA.read_text())
    (source,) = dash["__inputs"]
    assert (source["type"], source["pluginId"]) == ("datasource", "graphite")
    ref = {"type": "graphite", "uid": "${" + source["name"] + "}"}
    ids = [panel["id"] for panel in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        assert panel["datasource"] == ref
        assert panel["targets"] and all(t["datasource"] == ref for t in panel["targets"])
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
