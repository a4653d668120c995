"""The one function record: /functions and validation both read it."""

from __future__ import annotations

import inspect
import re

import pytest

from django_statsd_push.render import evaluator  # noqa: F401  (registers the functions)
from django_statsd_push.render.errors import InputError
from django_statsd_push.render.registry import FUNCTIONS, Param, catalogue, render_function

REQUIRED = {"sumSeries", "sum", "averageSeries", "avg", "maxSeries", "minSeries", "diffSeries", "divideSeries",
            "multiplySeries", "asPercent", "countSeries", "groupByNode", "groupByNodes", "sumSeriesWithWildcards",
            "aggregate", "percentileOfSeries", "scale", "scaleToSeconds", "offset", "derivative",
            "nonNegativeDerivative", "perSecond", "integral", "summarize", "hitcount", "timeShift", "keepLastValue",
            "transformNull", "absolute", "consolidateBy", "delay", "movingAverage", "movingSum", "movingMedian",
            "movingMax", "nPercentile", "highestCurrent", "highestMax", "highestAverage", "lowestCurrent", "limit",
            "exclude", "grep", "removeBelowValue", "removeAboveValue", "currentAbove", "averageAbove",
            "removeEmptySeries", "sortByMaxima", "sortByName", "sortByTotal", "alias", "aliasByNode",
            "aliasByMetric", "aliasSub", "constantLine", "threshold", "color", "lineWidth", "stacked", "dashed",
            "secondYAxis"}


def test_every_required_function_is_registered():
    assert REQUIRED <= set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_records_match_the_python_signatures(name):
    info = FUNCTIONS[name]
    sig = list(inspect.signature(info.func).parameters.values())[1:]  # after ctx
    assert [p.name for p in sig] == [p.name for p in info.params], name
    for param, py in zip(info.params, sig):
        assert param.multiple == (py.kind is inspect.Parameter.VAR_POSITIONAL), (name, param.name)
    assert info.description and info.group


def test_catalogue_is_the_registry():
    doc = catalogue()
    assert set(doc) == set(FUNCTIONS)
    assert doc["avg"]["function"] == "avg(*seriesLists)"
    assert doc["summarize"]["function"] == "summarize(seriesList, intervalString, func='sum', alignToFrom=False)"
    assert set(catalogue(grouped=True)["Alias"]) >= {"alias", "aliasByNode", "aliasSub", "aliasByMetric"}


def test_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="registered twice"):
        render_function("Combine", [Param("seriesLists", "seriesList", multiple=True)], name="sumSeries")(
            lambda ctx, *seriesLists: [])


def test_unknown_parameter_type_is_a_programming_error():
    with pytest.raises(TypeError):
        Param("x", "colour")


def test_validation_converts_and_names_parameters():
    info = FUNCTIONS["movingAverage"]
    assert info.validate([[], "5min"], {"xFilesFactor": 1}) == ([[], "5min"], {"xFilesFactor": 1.0})
    with pytest.raises(InputError, match='parameter "windowSize"'):
        info.validate([[], 1.5], {})
    with pytest.raises(InputError, match='given twice'):
        info.validate([[], 5], {"windowSize": 5})


def _described(name: str) -> list[str]:
    """What the /functions description of ``name`` lacks: Grafana's function editor shows it
    as the function's help, so it names every parameter and shows a target using it."""
    info = FUNCTIONS[name]
    text = info.description
    missing = [p.name for p in info.params if p.type not in ("seriesList", "seriesLists") and p.name not in text]
    if not any(f"&target={key}(" in text for key in (info.name, *info.aliases)):
        missing.append("an example (&target=...)")
    return missing


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_descriptions_name_every_parameter_and_show_an_example(name):
    assert _described(name) == [], name


@pytest.mark.parametrize("name", sorted({info.name for info in FUNCTIONS.values()}))
def test_description_examples_are_valid_targets(name, tmp_path):
    """Each example parses and its arguments pass validation (over an empty store, so only
    data-dependent complaints such as a time outside the range may remain)."""
    from django_statsd_push.render.evaluator import Context, evaluate_target
    from django_statsd_push.render.finder import Finder

    ctx = Context(Finder(str(tmp_path)), 1_700_000_000 - 86400, 1_700_000_000, 1_700_000_000)
    examples = re.findall(r"&target=(.*)", FUNCTIONS[name].description)
    assert examples, name
    for target in examples:
        try:
            evaluate_target(ctx, target.strip())
        except InputError as exc:
            assert not any(word in str(exc) for word in ("invalid", "unknown function", "missing required",
                                                           "too many arguments", "unexpected")), (target, exc)
