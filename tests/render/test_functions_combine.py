"""Reference suite, Combine group: values and names as graphite-web documents them."""

from __future__ import annotations

import pytest

from .conftest import NOW, approx


def test_sum_series_names_by_path_expression_and_skips_nulls(client, data):
    doc = client.render("sumSeries(a.*.c)")
    assert [s["target"] for s in doc] == ["sumSeries(a.*.c)"]
    assert [v for v, _ in doc[0]["datapoints"]] == [11, 2, None, 44, 55, 66]
    assert [t for _, t in doc[0]["datapoints"]] == list(range(NOW - 50, NOW + 1, 10))
    assert doc[0]["tags"] == {"name": "sumSeries(a.*.c)", "aggregatedBy": "sum"}


def test_sum_alias_and_several_arguments(client, data):
    assert client.values("sum(a.b1.c, a.b2.c)") == [11, 2, None, 44, 55, 66]
    assert client.render("sumSeries(a.b1.c,a.b2.c)")[0]["target"] == "sumSeries(a.b1.c,a.b2.c)"


@pytest.mark.parametrize("target,expected", [
    ("averageSeries(a.b{1,2}.c)", [5.5, 2, None, 22, 27.5, 33]),
    ("avg(a.b{1,2}.c)", [5.5, 2, None, 22, 27.5, 33]),
    ("maxSeries(a.b*.c)", [10, 2, None, 40, 50, 60]),
    ("minSeries(a.b*.c)", [1, 2, None, 4, 5, 6]),
    ("diffSeries(a.b2.c, a.b1.c)", [9, 2, None, 36, 45, 54]),
    ("multiplySeries(a.b1.c, a.b2.c)", [10, None, None, 160, 250, 360]),
    ("countSeries(a.*.c)", [3] * 6),
    ("aggregate(a.b{1,2}.c, 'median')", [5.5, 2, None, 22, 27.5, 33]),
    ("aggregate(a.b{1,2}.c, 'count')", [2, 1, None, 2, 2, 2]),
    ("aggregate(a.b{1,2}.c, 'last')", [10, 2, None, 40, 50, 60]),
    ("aggregate(a.b{1,2}.c, 'range')", [9, 0, None, 36, 45, 54]),
    ("aggregate(a.b{1,2}.c, 'stddev')", [4.5, 0, None, 18, 22.5, 27]),
    ("aggregate(a.b{1,2}.c, 'avg_zero')", [5.5, 1, None, 22, 27.5, 33]),
    ("aggregate(a.b{1,2}.c, 'sum', 0.6)", [11, None, None, 44, 55, 66]),
    ("percentileOfSeries(a.b{1,2}.c, 50)", [10, 2, None, 40, 50, 60]),
    ("percentileOfSeries(a.b{1,2}.c, 50, true)", [5.5, 2, None, 22, 27.5, 33]),
])
def test_aggregates(client, data, target, expected):
    assert client.values(target) == approx(expected)


@pytest.mark.parametrize("target,name", [
    ("averageSeries(a.b{1,2}.c)", "averageSeries(a.b{1,2}.c)"),
    ("aggregate(a.b*.c, 'max')", "maxSeries(a.b*.c)"),
    ("aggregate(a.b*.c, 'sumSeries')", "sumSeries(a.b*.c)"),
    ("countSeries(a.*.c)", "countSeries(a.*.c)"),
    ("percentileOfSeries(a.b{1,2}.c, 50)", "percentileOfSeries(a.b{1,2}.c,50)"),
    ("multiplySeries(a.b1.c)", "a.b1.c"),
])
def test_aggregate_names(client, data, target, name):
    assert client.render(target)[0]["target"] == name


def test_xfilesfactor_request_parameter_applies_to_aggregates(client, data):
    assert client.values("sumSeries(a.b{1,2}.c)", xFilesFactor="0.6") == [11, None, None, 44, 55, 66]


def test_count_series_of_nothing_is_a_zero_line(client, data):
    assert client.values("countSeries()") == [0, 0, 0]


def test_divide_series(client, data):
    doc = client.render("divideSeries(a.b2.c, a.b1.c)")
    assert doc[0]["target"] == "divideSeries(a.b2.c,a.b1.c)"
    assert [v for v, _ in doc[0]["datapoints"]] == [10, None, None, 10, 10, 10]
    assert client.values("divideSeries(a.b1.c, offset(a.b1.c, -1))") == [None, 2, None, approx([4 / 3])[0], 1.25, 1.2]
    missing = client.render("divideSeries(a.b1.c, nothing.here)")
    assert missing[0]["target"] == "divideSeries(a.b1.c,MISSING)"
    assert {v for v, _ in missing[0]["datapoints"]} == {None}
    assert "exactly 1 series" in client.error("/render", {"target": "divideSeries(a.b1.c, a.b*.c)", "from": "-1min"})


def test_as_percent(client, data):
    doc = client.render("asPercent(a.b{1,2}.c)")
    assert [s["target"] for s in doc] == ["asPercent(a.b1.c,sumSeries(a.b{1,2}.c))",
                                          "asPercent(a.b2.c,sumSeries(a.b{1,2}.c))"]
    assert [v for v, _ in doc[0]["datapoints"]] == approx([100 / 11, 100, None, 100 / 11, 100 / 11, 100 / 11])
    assert [v for v, _ in doc[1]["datapoints"]] == approx([1000 / 11, None, None, 1000 / 11, 1000 / 11, 1000 / 11])
    number = client.render("asPercent(a.b1.c, 10)")
    assert number[0]["target"] == "asPercent(a.b1.c,10)"
    assert [v for v, _ in number[0]["datapoints"]] == approx([10, 20, None, 40, 50, 60])
    one = client.render("asPercent(a.b1.c, a.b2.c)")
    assert one[0]["target"] == "asPercent(a.b1.c,a.b2.c)"
    assert [v for v, _ in one[0]["datapoints"]] == approx([10, None, None, 10, 10, 10])


def test_as_percent_by_nodes(client, data):
    doc = client.render("asPercent(srv.*.cpu.*, None, 1)")
    assert [s["target"] for s in doc] == ["asPercent(srv.h1.cpu.sys,sumSeries(srv.*.cpu.*))",
                                          "asPercent(srv.h1.cpu.user,sumSeries(srv.*.cpu.*))",
                                          "asPercent(srv.h2.cpu.user,srv.h2.cpu.user)"]
    assert doc[0]["datapoints"][0][0] == pytest.approx(200 / 3)
    assert doc[2]["datapoints"][0][0] == 100


def test_group_by_node_and_nodes(client, data):
    doc = client.render("groupByNode(srv.*.cpu.*, 1, 'sum')")
    assert [s["target"] for s in doc] == ["h1", "h2"]
    assert [v for v, _ in doc[0]["datapoints"]] == [3] * 6
    assert [v for v, _ in doc[1]["datapoints"]] == [3, None, 3, 3, 3, 3]
    assert client.render("groupByNode(srv.*.cpu.*, 1)")[0]["datapoints"][0][0] == 1.5  # average by default
    assert client.render("groupByNode(srv.*.cpu.*, 1, 'sumSeries')")[0]["datapoints"][0][0] == 3
    doc = client.render("groupByNodes(srv.*.cpu.*, 'max', 1, 3)")
    assert [s["target"] for s in doc] == ["h1.sys", "h1.user", "h2.user"]


def test_sum_series_with_wildcards(client, data):
    doc = client.render("sumSeriesWithWildcards(srv.*.cpu.*, 1)")
    assert [s["target"] for s in doc] == ["srv.cpu.sys", "srv.cpu.user"]
    assert [v for v, _ in doc[1]["datapoints"]] == [4, 1, 4, 4, 4, 4]


def test_mixed_steps_are_normalised_to_the_lcm(client, root):
    from .conftest import write_metric

    write_metric(root, "fine", [1, 2, 3, 4, 5, 6], step=10)
    write_metric(root, "coarse", [100], step=30, retentions=((30, 1000),))
    doc = client.render("sumSeries(fine, coarse)")
    step = doc[0]["datapoints"][1][1] - doc[0]["datapoints"][0][1]
    assert step == 30


def test_as_percent_by_nodes_with_a_total_list(client, data):
    doc = client.render("asPercent(srv.*.cpu.user, srv.*.cpu.sys, 1)")
    assert [s["target"] for s in doc] == ["asPercent(srv.h1.cpu.user,srv.h1.cpu.sys)",
                                          "asPercent(srv.h2.cpu.user,MISSING)"]
    assert {v for v, _ in doc[0]["datapoints"]} == {50}
    assert {v for v, _ in doc[1]["datapoints"]} == {None}
    missing = client.render("asPercent(srv.h1.cpu.user, srv.*.cpu.user, 1)")
    assert [s["target"] for s in missing] == ["asPercent(srv.h1.cpu.user,srv.h1.cpu.user)",
                                              "asPercent(MISSING,srv.h2.cpu.user)"]
