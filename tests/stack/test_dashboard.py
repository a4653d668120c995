"""The dashboard and the Grafana dashboard against the REAL render API over real Whisper files.

The page is loaded in Debian's headless Chromium; the test reads the data-points
attributes the page writes into the DOM after its render queries come back.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_import
from tests.render.conftest import render_process
from tests.stack.dashboard_page import dump_dom, panel_points, panels

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
    "stats.timers.browser.index.load.upper_90", "stats.timers.browser.polls_list.ttfb.upper_90",
] + [f"stats.demo_traffic.responses;status={c}xx" for c in (2, 4, 5)]  # tagged: under _tagged/, found by seriesByTag



def dashboard_targets() -> list[str]:
    return [t for panel in panels() for t in panel["targets"]]


def grafana_targets(prefix: str = "", view: str = "*", method: str = "*") -> list[str]:
    """The Grafana targets with its template variables replaced as Grafana does: the
    textbox ``prefix`` as typed, ``view``/``method`` and the others at their "All" value."""
    dash = json.loads(GRAFANA.read_text())
    values = {var["name"]: var.get("allValue") or "" for var in dash["templating"]["list"]}
    values.update(prefix=prefix, view=view, method=method)
    return [
        re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", lambda m: values[m[1] or m[2]], t["target"])
        for panel in dash["panels"] for t in panel["targets"]
    ]


def write_whisper(root: Path, names: list[str], step: int = 10, points: int = 60) -> None:
    whisper = require_import("whisper")

    from django_statsd_push.render import tagdb

    now = int(time.time()) // step * step
    for i, name in enumerate(names):
        path = (Path(tagdb.whisper_paths(str(root), tagdb.canonical(name))[1]) if ";" in name
                else root.joinpath(*name.split(".")).with_suffix(".wsp"))
        path.parent.mkdir(parents=True, exist_ok=True)
        whisper.create(str(path), [(step, 360)])
        whisper.update_many(str(path), [(now - k * step, float(i + 1 + k % 7)) for k in range(points)])


@contextlib.contextmanager
def render_api_over(root: Path) -> Iterator[tuple[str, int]]:
    """(host, port) of a real ``statsd-push render`` over the Whisper files in ``root``
    (its tag and event stores go beside ``root``), on a port it picked itself."""
    with render_process(root) as render:
        yield render.host, render.port


@pytest.fixture(scope="module")
def render_api(tmp_path_factory):
    root = tmp_path_factory.mktemp("render") / "whisper"
    root.mkdir()
    write_whisper(root, METRICS)
    with render_api_over(root) as address:
        yield address


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


EVENT_AGO = 300  # seconds; on a data point (the 10 s step) well inside the page's 15 minutes


@pytest.fixture(scope="module")
def deploy_event(render_api) -> int:
    when = int(time.time()) // 10 * 10 - EVENT_AGO
    body = json.dumps({"what": "deploy v1.4", "tags": ["deploy", "web"], "when": when}).encode()
    request = urllib.request.Request(f"http://{render_api[0]}:{render_api[1]}/events/", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    return when


@pytest.mark.slow
def test_event_markers_are_drawn_where_the_event_is(render_api, deploy_event, tmp_path: Path) -> None:
    dom = dump_dom(*render_api, tmp_path / "profile")
    assert 'data-events-total="1"' in dom
    sections = re.findall(r'<section class="panel" id="([\w-]+)".*?</section>', dom, re.S)
    checked = 0
    for panel_id, section in zip(sections, re.findall(r'<section class="panel".*?</section>', dom, re.S)):
        if 'data-points="0"' in section:
            continue
        checked += 1
        assert 'data-events="1"' in section, panel_id
        marker = re.search(r'<g class="event" data-when="(\d+)"><title>deploy v1.4 \[deploy, web\]</title>'
                           r'<line x1="([\d.]+)" x2="\2"[^>]*class="event-line"', section)
        assert marker and int(marker.group(1)) == deploy_event, section[:3000]
        # where the event is: its time on the chart's time axis
        axis = dict(re.findall(r'data-(t0|t1|x0|x1)="([\d.]+)"', section))
        t0, t1, x0, x1 = (float(axis[k]) for k in ("t0", "t1", "x0", "x1"))
        assert t0 < deploy_event < t1
        assert float(marker.group(2)) == pytest.approx(x0 + (deploy_event - t0) / (t1 - t0) * (x1 - x0), abs=0.06)
        assert "deploy v1.4</text>" in section
    assert checked == len(panels()), checked


@pytest.mark.slow
def test_events_none_hides_markers(render_api, deploy_event, tmp_path: Path) -> None:
    dom = dump_dom(*render_api, tmp_path / "profile", query="events=none")
    assert 'data-events-total="0"' in dom and 'class="event"' not in dom


def test_grafana_dashboard_has_deploy_annotations_and_a_tag_variable() -> None:
    dash = json.loads(GRAFANA.read_text())
    (annotation,) = dash["annotations"]["list"]
    assert annotation["tags"] == "deploy" and annotation["enable"]
    (var,) = [v for v in dash["templating"]["list"] if v["name"] == "status"]
    assert var["query"].startswith("tag_values(status")
    assert any("$" + "{status:regex}" in t["target"] for p in dash["panels"] for t in p["targets"])
