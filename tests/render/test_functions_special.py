"""What the graphite-web oracle cannot show: style options for image rendering, the
request-wide xFilesFactor, random and generated series, and the 400s where graphite-web
1.1.8 crashes, loops or answers with nonsense."""

from __future__ import annotations

import math

import pytest

from django_statsd_push.render.evaluator import Context, Limits, evaluate_target
from django_statsd_push.render.finder import Finder

from .conftest import NOW


def evaluate(root, target: str, start: int = NOW - 60, limits: Limits | None = None):
    ctx = Context(Finder(str(root)), start, NOW, NOW, limits=limits or Limits())
    return evaluate_target(ctx, target)


@pytest.mark.parametrize("target,options", [
    ("alpha(a.b1.c, 0.25)", [{"alpha": 0.25}]),
    ("drawAsInfinite(a.b1.c)", [{"drawAsInfinite": True}]),
    ("areaBetween(a.b{1,2}.c)", [{"stacked": True, "invisible": True}, {"stacked": True}]),
    ("verticalLine('-30s', 'deploy', 'red')", [{"drawAsInfinite": True, "color": "red"}]),
    ("alpha(color(lineWidth(a.b1.c, 2), 'blue'), 0.5)", [{"lineWidth": 2.0, "color": "blue", "alpha": 0.5}]),
])
def test_style_functions_set_series_options_and_keep_values(root, data, target, options):
    result = evaluate(root, target)
    assert [s.options for s in result] == options
    if not target.startswith("verticalLine"):
        assert [v for v in result[-1].values.tolist() if v == v] == ([10, 40, 50, 60] if "b{1,2}" in target
                                                                     else [1, 2, 4, 5, 6])


def test_vertical_line_sits_at_its_time_and_is_named_without_a_label(root, data):
    [line] = evaluate(root, "verticalLine('-30s')")
    assert (line.name, line.start, line.end) == (f"verticalLine({NOW - 30})", NOW - 30, NOW - 30)
    [labelled] = evaluate(root, f"verticalLine({NOW - 10}, 'deploy')")
    assert (labelled.name, labelled.start) == ("deploy", NOW - 10)


def test_set_x_files_factor_applies_to_what_is_evaluated_after_it(client, data):
    # a.b1.c has 5 of 6 points, a.b2.c 4 of 6, a.b3.c none: at xff 0.6 a column needs 2 of 3
    assert client.values("sumSeries(a.b*.c)") == [11, 2, None, 44, 55, 66]
    assert client.values("sumSeries(setXFilesFactor(a.b*.c, 0.6))") == [11, None, None, 44, 55, 66]
    doc = client.render("setXFilesFactor(a.b1.c, 0.6)", "sumSeries(a.b*.c)")
    assert [v for v, _ in doc[1]["datapoints"]] == [11, None, None, 44, 55, 66]
    assert doc[0]["tags"]["xFilesFactor"] == "0.6"


def test_random_walk_starts_at_zero_and_moves_at_most_half_a_unit(client, data):
    values = client.values("randomWalk('walk', 5)", **{"from": "-10min"})
    assert len(values) == 120 and values[0] == 0
    assert all(abs(b - a) <= 0.5 for a, b in zip(values, values[1:]))
    assert values != client.values("randomWalk('walk', 5)", **{"from": "-10min"})


def test_generated_series_follow_the_clock(client, data):
    assert client.values("identity('x')", **{"from": "-3min"}) == [NOW - 180, NOW - 120, NOW - 60]
    assert client.values("time('t', 30)", **{"from": "-1min"}) == [NOW - 60, NOW - 30]
    assert client.values("sin('s', 2, 30)", **{"from": "-1min"}) == pytest.approx(
        [2 * math.sin(NOW - 60), 2 * math.sin(NOW - 30)])


@pytest.mark.parametrize("target,fragment", [
    ("randomWalk('w', 0)", "step must be a positive number"),  # graphite-web loops forever
    ("time('t', -60)", "step must be a positive number"),
    ("areaBetween(a.b*.c)", "exactly 2 series, not 3"),
    ("areaBetween(a.b1.c)", "exactly 2 series, not 1"),
    ("verticalLine('-2h')", "before start of range"),
    ("mapSeries(srv.*.cpu.*, 1)", "series lists (mapSeries), not series"),
    ("sumSeries(mapSeries(srv.*.cpu.*, 1))", 'invalid "seriesList" value'),
    ("reduceSeries(mapSeries(srv.*.cpu.*, 1), 'asPercent', 3, 'user', 'sys')", "no series matching sys"),
    ("reduceSeries(mapSeries(srv.*.cpu.*, 1), 'linearRegression', 3, 'user')", "re-reads its first argument"),
    ("reduceSeries(mapSeries(srv.*.cpu.*, 1), 'nonesuch', 3, 'user')", "unknown function nonesuch()"),
    ("reduceSeries(mapSeries(srv.*.cpu.*, 1), 'sumSeries', 9, 'user')", "has no node 9"),
    ("groupByNode(srv.*.cpu.*, 1, 'sumSeriesLists')", 'missing required parameter "seriesListSecondPos"'),
    ("aggregateSeriesLists(a.b*.c, srv.h1.cpu.user, 'sum')", "same number of series"),
    (r"aliasQuery(a.b1.c, 'a\.b1\.c', 'srv.h1.cpu.sys', 'no format')", "must hold one %-format"),
    ("aliasQuery(a.b1.c, 'a', 'nothing', '%d')", "no series found with query: nothing"),
    ("aliasQuery(a.b1.c, '(', 'x', '%d')", "invalid regular expression"),
    ("useSeriesAbove(a.b1.c, 0, '(', 'x')", "invalid regular expression"),
    ("stdev(a.b1.c, 0)", "points must be positive"),
    ("timeStack(a.b1.c, '1s', 0, 1000000)", "more than 50 series"),
    ("holtWintersForecast(a.b1.c, '1min', '5s')", "shorter than the step"),
    ("linearRegression(a.b1.c, '-1min', '-2min')", "source range"),
    ("timeSlice(a.b1.c, 'yesterday noon-', 'now')", "invalid time"),
    ("legendValue(a.b1.c, 'bogus')", "invalid option"),
    ("cactiStyle(a.b1.c, 'metric')", "invalid option"),
])
def test_bad_arguments_are_400_naming_the_problem(client, data, target, fragment):
    assert fragment in client.error("/render", {"target": target, "from": "-1min"})


def test_generated_series_are_bounded_by_max_points(client, data):
    error = client.error("/render", {"target": "sinFunction('t', 1, 1)", "from": "-7d"})
    assert "604800 points is more than 100000 (--max-points)" in error


def test_find_json_lists_paths_leaves_and_intervals(client, data, root):
    import json
    import os

    status, _, body = client.request("/metrics/find", {"query": "a.*", "format": "json"})
    assert status == 200
    doc = json.loads(body)
    assert [(e["path"], e["is_leaf"]) for e in doc] == [("a.b1", False), ("a.b2", False), ("a.b3", False)]
    status, _, body = client.request("/metrics/find", {"query": "a.b1.*", "format": "json"})
    [leaf] = json.loads(body)
    mtime = os.stat(root / "a" / "b1" / "c.wsp").st_mtime
    assert leaf == {"path": "a.b1.c", "is_leaf": True,
                    "intervals": [{"start": NOW - 60 * 10080, "end": max(mtime, NOW - 60 * 10080)}]}
