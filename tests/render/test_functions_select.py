"""Reference suite: Filter Series, Filter Data, Sorting, Alias and Graph groups."""

from __future__ import annotations

import pytest

from .conftest import NOW, write_metric


def names(client, target, **params):
    return [s["target"] for s in client.render(target, **params)]


@pytest.mark.parametrize("target,expected", [
    ("highestMax(a.b*.c, 1)", ["a.b2.c"]),
    ("highestCurrent(a.b*.c, 2)", ["a.b2.c", "a.b1.c"]),
    ("highestAverage(a.b*.c, 1)", ["a.b2.c"]),
    ("lowestCurrent(a.b*.c, 1)", ["a.b3.c"]),  # an all-null series sorts below everything
    ("highest(a.b*.c, 1, 'sum')", ["a.b2.c"]),
    ("limit(a.b*.c, 2)", ["a.b1.c", "a.b2.c"]),
    ("exclude(a.b*.c, 'b2')", ["a.b1.c", "a.b3.c"]),
    ("grep(a.b*.c, 'b[12]')", ["a.b1.c", "a.b2.c"]),
    ("currentAbove(a.b*.c, 10)", ["a.b2.c"]),
    ("averageAbove(a.b*.c, 3)", ["a.b1.c", "a.b2.c"]),
    ("filterSeries(a.b*.c, 'max', '<', 10)", ["a.b1.c", "a.b3.c"]),
    ("removeEmptySeries(a.b*.c)", ["a.b1.c", "a.b2.c"]),
    ("removeEmptySeries(a.b*.c, 0.8)", ["a.b1.c"]),
    ("sortByMaxima(a.b*.c)", ["a.b2.c", "a.b1.c", "a.b3.c"]),
    ("sortByTotal(a.b*.c)", ["a.b2.c", "a.b1.c", "a.b3.c"]),
    ("sortByName(a.b*.c, false, true)", ["a.b3.c", "a.b2.c", "a.b1.c"]),
    ("alias(a.b1.c, 'x')", ["x"]),
    ("aliasByNode(a.b1.c, 1)", ["b1"]),
    ("aliasByNode(a.b1.c, 0, -1)", ["a.c"]),
    ("aliasByNode(sumSeries(a.b*.c), 1)", ["b*"]),
    ("aliasByMetric(scale(a.b1.c, 2))", ["c"]),
    ("aliasByMetric(a.b*.c)", ["c", "c", "c"]),
    (r"aliasSub(a.b1.c, '^a\.(\w+)\..*', '\1')", ["b1"]),
    (r"aliasSub(a.b*.c, 'b(\d)', 'host\1')", ["a.host1.c", "a.host2.c", "a.host3.c"]),
    ("a.b1.c|aliasByNode(1)|alias('piped')", ["piped"]),
])
def test_selection_and_names(client, data, target, expected):
    assert names(client, target) == expected


def test_natural_name_sort(client, root):
    for n in ("m2", "m10", "m1"):
        write_metric(root, f"nat.{n}", [1])
    assert names(client, "sortByName(nat.*, true)") == ["nat.m1", "nat.m2", "nat.m10"]
    assert names(client, "sortByName(nat.*)") == ["nat.m1", "nat.m10", "nat.m2"]


def test_remove_below_and_above_value(client, data):
    doc = client.render("removeBelowValue(a.b1.c, 3)", "removeAboveValue(a.b1.c, 4)")
    assert [s["target"] for s in doc] == ["removeBelowValue(a.b1.c, 3)", "removeAboveValue(a.b1.c, 4)"]
    assert [v for v, _ in doc[0]["datapoints"]] == [None, None, None, 4, 5, 6]
    assert [v for v, _ in doc[1]["datapoints"]] == [1, 2, None, 4, None, None]


def test_constant_line_and_threshold(client, data):
    doc = client.render("constantLine(42)", "threshold(5, 'limit', 'red')")
    assert doc[0]["target"] == "42.0"
    assert doc[0]["datapoints"] == [[42, NOW - 60], [42, NOW - 30], [42, NOW]]
    assert doc[1]["target"] == "limit"
    assert {v for v, _ in doc[1]["datapoints"]} == {5}


@pytest.mark.parametrize("target,name", [
    ("color(a.b1.c, 'red')", "a.b1.c"),
    ("lineWidth(a.b1.c, 3)", "a.b1.c"),
    ("dashed(a.b1.c)", "dashed(a.b1.c, 5)"),
    ("secondYAxis(a.b1.c)", "secondYAxis(a.b1.c)"),
])
def test_style_functions_pass_values_through(client, data, target, name):
    doc = client.render(target)
    assert doc[0]["target"] == name
    assert [v for v, _ in doc[0]["datapoints"]] == [1, 2, None, 4, 5, 6]


def test_stacked_accumulates_like_graphite(client, data):
    doc = client.render("stacked(a.b{1,2}.c)")
    assert [s["target"] for s in doc] == ["stacked(a.b1.c)", "stacked(a.b2.c)"]
    assert [v for v, _ in doc[1]["datapoints"]] == [11, None, None, 44, 55, 66]


@pytest.mark.parametrize("target,fragment", [
    ("scale(a.b1.c)", 'missing required parameter "factor"'),
    ("scale(a.b1.c, 1, 2)", "too many arguments"),
    ("scale(1, 2)", 'invalid "seriesList" value for function "scale" parameter "seriesList"'),
    ("scale(a.b1.c, 'x')", 'invalid "float" value for function "scale" parameter "factor"'),
    ("groupByNode(a.*.c, 1.5)", 'parameter "nodeNum"'),
    ("summarize(a.b1.c, 'bogus')", 'invalid "interval" value'),
    ("aggregate(a.*.c, 'foo')", 'invalid "aggFunc" value'),
    ("consolidateBy(a.b1.c, 'median')", "invalid option"),
    ("scale(a.b1.c, factor=2, bogus=1)", 'unexpected keyword argument "bogus"'),
    ("notAFunction(a.b1.c)", "unknown function notAFunction()"),
    ("grep(a.b*.c, '(')", "invalid regular expression"),
    ("aliasSub(a.b1.c, 'a', '\\9')", "invalid replacement"),
    ("percentileOfSeries(a.b*.c, 0)", "greater than 0"),
    ("nPercentile(a.b1.c, 150)", "outside [0, 100]"),
    ("scaleToSeconds(a.b1.c, inf)", "scaleToSeconds() cannot use these arguments"),
    ("asPercent(a.b*.c, a.b{1,2}.c)", "must be missing"),
    ("asPercent(a.b*.c, 'x')", '"total" must be a number or a series list'),
    ("a.b1.c, 2", "unexpected ','"),
])
def test_bad_arguments_are_400_naming_the_problem(client, data, target, fragment):
    assert fragment in client.error("/render", {"target": target, "from": "-1min"})
