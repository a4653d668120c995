"""Reference suite, Transform/Calculate groups: nulls, step alignment and names."""

from __future__ import annotations

import pytest

from .conftest import NOW, approx


@pytest.mark.parametrize("target,name,expected", [
    ("scale(a.b1.c, 2)", "scale(a.b1.c,2)", [2, 4, None, 8, 10, 12]),
    ("scale(a.b1.c, 0.5)", "scale(a.b1.c,0.5)", [0.5, 1, None, 2, 2.5, 3]),
    ("offset(a.b1.c, -1)", "offset(a.b1.c,-1)", [0, 1, None, 3, 4, 5]),
    ("scaleToSeconds(a.b1.c, 1)", "scaleToSeconds(a.b1.c,1)", [0.1, 0.2, None, 0.4, 0.5, 0.6]),
    ("absolute(neg)", "absolute(neg)", [1, 2, None, 4, 0, 3]),
    ("derivative(a.b1.c)", "derivative(a.b1.c)", [None, 1, None, None, 1, 1]),
    ("nonNegativeDerivative(counter)", "nonNegativeDerivative(counter)", [None, 10, 10, None, 10, 10]),
    ("nonNegativeDerivative(counter, 30)", "nonNegativeDerivative(counter)", [None, 10, 10, 16, 10, 10]),
    ("nonNegativeDerivative(counter, minValue=0)", "nonNegativeDerivative(counter)", [None, 10, 10, 5, 10, 10]),
    ("perSecond(counter)", "perSecond(counter)", [None, 1, 1, None, 1, 1]),
    ("integral(a.b1.c)", "integral(a.b1.c)", [1, 3, None, 7, 12, 18]),
    ("keepLastValue(a.b2.c)", "keepLastValue(a.b2.c)", [10, 10, 10, 40, 50, 60]),
    ("keepLastValue(a.b2.c, 1)", "keepLastValue(a.b2.c)", [10, None, None, 40, 50, 60]),
    ("transformNull(a.b2.c)", "transformNull(a.b2.c,0)", [10, 0, 0, 40, 50, 60]),
    ("transformNull(a.b2.c, -1.5)", "transformNull(a.b2.c,-1.5)", [10, -1.5, -1.5, 40, 50, 60]),
    ("transformNull(a.b2.c, 0, a.b1.c)", "transformNull(a.b2.c,0,referenceSeries)", [10, 0, None, 40, 50, 60]),
    ("delay(a.b1.c, 2)", "delay(a.b1.c,2)", [None, None, 1, 2, None, 4]),
    ("delay(a.b1.c, -1)", "delay(a.b1.c,-1)", [2, None, 4, 5, 6, None]),
    ("nPercentile(a.b1.c, 50)", "nPercentile(a.b1.c, 50)", [4] * 6),
    ("consolidateBy(a.b1.c, 'max')", 'consolidateBy(a.b1.c,"max")', [1, 2, None, 4, 5, 6]),
    ("pow(neg, 2)", "pow(neg,2)", [1, 4, None, 16, 0, 9]),
    ("squareRoot(neg)", "squareRoot(neg)", [None, 2 ** 0.5, None, None, 0, 3 ** 0.5]),
    ("invert(neg)", "invert(neg)", [-1, 0.5, None, -0.25, None, 1 / 3]),
    ("log(a.b2.c)", "log(a.b2.c, 10)", [1, None, None, 1.6020599913279623, 1.6989700043360187, 1.7781512503836436]),
    ("isNonNull(a.b1.c)", "isNonNull(a.b1.c)", [1, 1, 0, 1, 1, 1]),
    ("offsetToZero(a.b1.c)", "offsetToZero(a.b1.c)", [0, 1, None, 3, 4, 5]),
    ("minMax(a.b1.c)", "minMax(a.b1.c)", [0, 0.2, None, 0.6, 0.8, 1]),
    ("changed(counter)", "changed(counter)", [0, 1, 1, 1, 1, 1]),
    ("changed(a.b2.c)", "changed(a.b2.c)", [0, 0, 0, 1, 1, 1]),
])
def test_transforms(client, data, target, name, expected):
    doc = client.render(target)
    assert [s["target"] for s in doc] == [name]
    assert [v for v, _ in doc[0]["datapoints"]] == approx(expected)
    assert [t for _, t in doc[0]["datapoints"]] == list(range(NOW - 50, NOW + 1, 10))


def test_keep_last_value_fills_a_trailing_gap(client, root):
    from .conftest import write_metric

    write_metric(root, "tail", [1, 2, 3, 4, None, None])
    assert client.values("keepLastValue(tail)") == [1, 2, 3, 4, 4, 4]


def test_summarize_aligns_buckets_to_the_interval(client, data):
    doc = client.render("summarize(long, '10min', 'sum')", **{"from": "-1h"})
    assert doc[0]["target"] == 'summarize(long, "10min", "sum")'
    points = doc[0]["datapoints"]
    assert [t for _, t in points] == list(range(NOW - 3600, NOW + 1, 600))
    assert [v for v, _ in points] == [sum(range(1, 60)), sum(range(60, 120)), sum(range(120, 180)),
                                      sum(range(180, 240)), sum(range(240, 300)), sum(range(300, 360)), 360]
    maxes = client.values("summarize(long, '10min', 'max')", **{"from": "-1h"})
    assert maxes == [59, 119, 179, 239, 299, 359, 360]


def test_summarize_align_to_from(client, data):
    doc = client.render("summarize(long, '10min', 'sum', true)", **{"from": "-1h"})
    assert doc[0]["target"] == 'summarize(long, "10min", "sum", true)'
    assert [t for _, t in doc[0]["datapoints"]] == list(range(NOW - 3590, NOW, 600))
    assert [v for v, _ in doc[0]["datapoints"]] == [sum(range(1 + 60 * k, 61 + 60 * k)) for k in range(6)]


def test_hitcount_turns_rates_into_counts(client, data):
    doc = client.render("hitcount(long, '10min')", **{"from": "-1h"})
    assert doc[0]["target"] == 'hitcount(long, "10min")'
    assert [t for _, t in doc[0]["datapoints"]] == list(range(NOW - 3590, NOW, 600))
    assert [v for v, _ in doc[0]["datapoints"]] == [10 * sum(range(1 + 60 * k, 61 + 60 * k)) for k in range(6)]


def test_time_shift_reads_the_earlier_range(client, data):
    for shift in ("1min", "-1min"):
        doc = client.render(f"timeShift(long, '{shift}')")
        assert doc[0]["target"] == 'timeShift(long, "-1min")'
        assert [v for v, _ in doc[0]["datapoints"]] == [349, 350, 351, 352, 353, 354]
        assert [t for _, t in doc[0]["datapoints"]] == list(range(NOW - 50, NOW + 1, 10))


@pytest.mark.parametrize("target,name,expected", [
    ("movingAverage(long, 3)", "movingAverage(long,3)", [353, 354, 355, 356, 357, 358]),
    ("movingAverage(long, '30s')", 'movingAverage(long,"30s")', [353, 354, 355, 356, 357, 358]),
    ("movingSum(long, 3)", "movingSum(long,3)", [1059, 1062, 1065, 1068, 1071, 1074]),
    ("movingMax(long, 3)", "movingMax(long,3)", [354, 355, 356, 357, 358, 359]),
    ("movingMedian(long, 3)", "movingMedian(long,3)", [353, 354, 355, 356, 357, 358]),
    ("movingWindow(long, 3, 'min')", "movingMin(long,3)", [352, 353, 354, 355, 356, 357]),
    ("movingAverage(a.b1.c, 2)", "movingAverage(a.b1.c,2)", [None, 1, 1.5, 2, 4, 4.5]),
    ("movingAverage(a.b1.c, 2, 1)", "movingAverage(a.b1.c,2)", [None, None, 1.5, None, None, 4.5]),
])
def test_moving_windows_read_history_before_from(client, data, target, name, expected):
    doc = client.render(target)
    assert doc[0]["target"] == name
    assert [v for v, _ in doc[0]["datapoints"]] == approx(expected)
    assert [t for _, t in doc[0]["datapoints"]] == list(range(NOW - 50, NOW + 1, 10))


def test_max_data_points_consolidates_with_the_series_function(client, data):
    avg = client.render("a.b1.c", maxDataPoints="3")[0]["datapoints"]
    assert avg == [[1.5, NOW - 40], [4, NOW - 20], [5.5, NOW]]  # graphite-web's nudge, values kept
    mx = client.render("consolidateBy(a.b1.c, 'max')", maxDataPoints="3")[0]["datapoints"]
    assert [v for v, _ in mx] == [2, 4, 6]
    one = client.render("a.b1.c", maxDataPoints="1")[0]["datapoints"]
    assert one == [[3.6, NOW - 50]]
    assert client.render("a.b1.c", maxDataPoints="100")[0]["datapoints"][0] == [1, NOW - 50]


@pytest.mark.parametrize("func,expected", [
    ("sum", [10, 90, 60]), ("avg_zero", [5, 30, 60]), ("last", [10, 50, 60]), ("count", [1, 2, 1]),
    ("average", [10, 45, 60]), ("multiply", [None, None, 60]),
])
def test_summarize_functions_over_gaps(client, data, func, expected):
    doc = client.render(f"summarize(a.b2.c, '30s', '{func}')")
    assert [v for v, _ in doc[0]["datapoints"]] == approx(expected)
    assert [t for _, t in doc[0]["datapoints"]] == [NOW - 60, NOW - 30, NOW]


def test_summarize_honours_the_xfilesfactor(client, data):
    assert client.values("summarize(a.b2.c, '30s', 'sum')", xFilesFactor="0.5") == [None, 90, None]


def test_hitcount_splits_a_step_across_buckets(client, data):
    doc = client.render("hitcount(a.b1.c, '25s')")
    assert doc[0]["datapoints"] == [[10, NOW - 65], [40, NOW - 40], [130, NOW - 15]]


def test_bucket_functions_are_bounded_by_the_points_limit(client, data):
    assert "buckets" in client.error("/render", {"target": "summarize(long, '1s')", "from": "-2d"})


def test_integral_by_interval_restarts_at_each_boundary_from_from(client, data):
    doc = client.render("integralByInterval(a.b1.c, '30s')")
    assert doc[0]["target"] == "integralByInterval(a.b1.c,'30s')"
    assert [v for v, _ in doc[0]["datapoints"]] == [1, 3, 0, 4, 9, 6]  # a null keeps the running total


def test_exponential_moving_average_is_seeded_from_history(client, data):
    doc = client.render("exponentialMovingAverage(long, 3)")
    assert doc[0]["target"] == "exponentialMovingAverage(long,3)"
    assert doc[0]["datapoints"][0] == [353, NOW - 50]  # mean of the three points before the range
    assert [v for v, _ in doc[0]["datapoints"]] == [353, 354, 355, 356, 357, 358, 359]


def test_smart_summarize_buckets_start_at_from(client, data):
    doc = client.render("smartSummarize(long, '10min')", **{"from": "-1h"})
    assert doc[0]["target"] == 'smartSummarize(long, "10min", "sum")'
    assert [t for _, t in doc[0]["datapoints"]] == list(range(NOW - 3590, NOW, 600))


def test_fallback_and_percentile_filters(client, data):
    assert [s["target"] for s in client.render("fallbackSeries(nothing.*, a.b1.c)")] == ["a.b1.c"]
    assert client.values("removeAbovePercentile(a.b1.c, 50)") == [1, 2, None, 4, None, None]
    assert client.values("removeBelowPercentile(a.b1.c, 50)") == [None, None, None, 4, 5, 6]
