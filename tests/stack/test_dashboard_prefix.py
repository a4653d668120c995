"""Dashboards that follow the settings: with STATSD_PREFIX set, the bundled dashboard
(``?prefix=``) and the Grafana dashboard (variables ``prefix``, ``view``, ``method``) find
the prefixed series, and only those, over a REAL render API and real Whisper files; the
bundled page is drawn in headless Chromium."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.stack.dashboard_page import panel_points_and_dom, panels
from tests.stack.test_dashboard import GRAFANA, METRICS, grafana_targets, render_api_over, render_json, write_whisper

PREFIX = "shop"
DAEMON_OWN = "stats_counts.statsd."  # the daemon's own counters: never prefixed
DEMO_TRAFFIC = "stats.demo_traffic."  # the stack's traffic generator's own tagged series, not Django's


def prefixed(name: str) -> str:
    """Where the daemon writes ``name`` when the client sends it with STATSD_PREFIX."""
    if name.startswith(DAEMON_OWN) or name.startswith(DEMO_TRAFFIC):
        return name
    for root in ("stats.timers.", "stats_counts.", "stats."):
        if name.startswith(root):
            return f"{root}{PREFIX}.{name[len(root):]}"
    raise AssertionError(name)


# Another project's unprefixed series on the same Graphite: must not show up.
DECOYS = ["stats.timers.request.other.GET.count_ps", "stats.timers.request.other.GET.upper_90"]


@pytest.fixture(scope="module")
def render_api(tmp_path_factory):
    root = tmp_path_factory.mktemp("whisper-prefix")
    write_whisper(root, [prefixed(name) for name in METRICS] + DECOYS)
    with render_api_over(root) as address:
        yield address


@pytest.mark.slow
def test_bundled_dashboard_takes_the_prefix_from_its_url(render_api, tmp_path: Path) -> None:
    points, dom = panel_points_and_dom(*render_api, tmp_path / "profile", f"prefix={PREFIX}")
    assert list(points) == [p["id"] for p in panels()]
    assert all(n > 0 for n in points.values()), points
    legends = set(re.findall(r'<span class="name">([^<]*)</span>', dom))
    assert {"index.GET", "polls_list.GET", "2xx", "ZeroDivisionError"} <= legends, legends
    assert "other.GET" not in legends
    # The range links keep the prefix.
    assert re.search(rf'<a href="\?[^"]*\bprefix={PREFIX}&amp;[^"]*from=-5min"', dom), dom[:3000]


@pytest.mark.slow
def test_bundled_dashboard_without_the_prefix_finds_only_the_unprefixed(render_api, tmp_path: Path) -> None:
    points, dom = panel_points_and_dom(*render_api, tmp_path / "profile")
    assert points["request-rate"] > 0  # the decoys
    assert points["status-codes"] == 0
    assert "other.GET" in set(re.findall(r'<span class="name">([^<]*)</span>', dom))


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(set(grafana_targets(prefix=f"{PREFIX}."))))
def test_every_grafana_target_with_the_prefix_returns_data(render_api, target: str) -> None:
    series = render_json(*render_api, target)
    assert series, f"{target} matched nothing"
    assert any(v is not None for s in series for v, _ in s["datapoints"]), f"{target}: no points"
    assert not any("other" in s["target"] for s in series)


@pytest.mark.slow
def test_grafana_view_and_method_variables(render_api) -> None:
    host, port = render_api
    dash = json.loads(GRAFANA.read_text())
    queries = {v["name"]: v for v in dash["templating"]["list"]}
    assert queries["prefix"]["type"] == "textbox"

    def find(query: str) -> list[str]:
        query = query.replace("${prefix}", f"{PREFIX}.")
        url = f"http://{host}:{port}/metrics/find?" + urllib.parse.urlencode({"query": query})
        with urllib.request.urlopen(url, timeout=10) as response:
            return sorted(node["text"] for node in json.load(response))

    assert find(queries["view"]["query"]) == ["index", "polls_list"]
    assert find(queries["method"]["query"].replace("$view", "index")) == ["GET"]
    for name in ("view", "method"):
        assert queries[name]["includeAll"] and queries[name]["allValue"] == "*"

    (rate, total) = grafana_targets(prefix=f"{PREFIX}.", view="index", method="GET")[:2]
    assert [s["target"] for s in render_json(host, port, rate)] == ["index.GET"]
    (series,) = render_json(host, port, total)
    assert series["target"] == "total"
