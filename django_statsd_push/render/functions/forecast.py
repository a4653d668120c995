"""Forecasting (Calculate): Holt-Winters smoothing with a seasonal component and its
confidence bands, and least-squares linear regression. Both re-read their input from
earlier than ``from`` (a bootstrap period, a source range) so the model has history."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..registry import Param, render_function
from ..series import Series
from ..timeparse import interval_seconds
from .graph import areaBetween

SERIES = Param("seriesList", "seriesList", required=True)
DELTA = Param("delta", "integer", default=3)
BOOTSTRAP = Param("bootstrapInterval", "interval", default="7d", suggestions=("7d", "30d"))
SEASONALITY = Param("seasonality", "interval", default="1d", suggestions=("1d", "7d"))

# graphite-web's fixed smoothing constants: level and seasonal (alpha, gamma), trend (beta)
ALPHA = GAMMA = 0.1
BETA = 0.0035


@dataclass
class HoltWinters:
    predictions: list
    deviations: list


def holt_winters(values: list, season: int) -> HoltWinters:
    """Triple exponential smoothing over ``values`` (NaN = missing) with a season of
    ``season`` points: the prediction made for each point before seeing it, and the
    smoothed seasonal deviation of the actual values from those predictions.

    A missing value has no prediction to carry, so the next point has none either, and the
    level restarts from the next actual value; written as a plain loop in graphite-web's
    order of operations so the floating-point results are the same."""
    levels: list = []
    trends: list = []
    seasonals: list = []
    predictions: list = []
    deviations: list = []

    def season_ago(series: list, i: int) -> float:
        return series[i - season] if i >= season else 0

    upcoming = None  # prediction for the next point
    for i, actual in enumerate(values):
        if actual != actual:
            levels.append(None)
            trends.append(0)
            seasonals.append(0)
            predictions.append(upcoming)
            deviations.append(0)
            upcoming = None
            continue
        if i == 0:
            last_level, last_trend, prediction = actual, 0, actual
        else:
            last_level, last_trend = levels[-1], trends[-1]
            if last_level is None:
                last_level = actual
            prediction = upcoming
        level = ALPHA * (actual - season_ago(seasonals, i)) + (1 - ALPHA) * (last_level + last_trend)
        trend = BETA * (level - last_level) + (1 - BETA) * last_trend
        seasonal = GAMMA * (actual - level) + (1 - GAMMA) * season_ago(seasonals, i)
        upcoming = level + trend + season_ago(seasonals, i + 1)
        deviation = GAMMA * math.fabs(actual - (prediction or 0)) + (1 - GAMMA) * season_ago(deviations, i)
        levels.append(level)
        trends.append(trend)
        seasonals.append(seasonal)
        predictions.append(prediction)
        deviations.append(deviation)
    return HoltWinters(predictions, deviations)


def _array(values: list) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def _analysed(ctx, seriesList, bootstrapInterval: str, seasonality: str):
    """Each input series re-read from ``bootstrapInterval`` before ``from``, with its model
    and the number of leading points that belong to the bootstrap period."""
    preview = interval_seconds(bootstrapInterval)
    season_seconds = interval_seconds(seasonality)
    out = []
    for s in ctx.shifted(start=ctx.start - preview).reevaluate_first_argument():
        season = season_seconds // s.step
        if season < 1:
            raise InputError(f"seasonality {seasonality!r} is shorter than the step of {s.name} ({s.step}s)")
        out.append((s, holt_winters(s.points().tolist(), season), preview // s.step, preview))
    return out


@render_function("Calculate", [SERIES, BOOTSTRAP, SEASONALITY])
def holtWintersForecast(ctx, seriesList, bootstrapInterval="7d", seasonality="1d"):
    """The Holt-Winters prediction of each series: what its recent level, trend and season say
    each point should be. The model (Holt-Winters triple exponential smoothing: level, trend and a season of
    ``seasonality``, default ``1d``) is trained on ``bootstrapInterval`` (default ``7d``) of data
    read from before ``from``.

    Example:

    .. code-block:: none

      &target=holtWintersForecast(Server.instance01.threads.busy,'7d','1d')
    """
    out = []
    for s, model, skip, preview in _analysed(ctx, seriesList, bootstrapInterval, seasonality):
        tags = dict(s.tags, holtWintersForecast="1", holtWintersDeviation="1")
        out.append(Series(f"holtWintersForecast({s.name})", s.start + preview, s.end, s.step,
                          _array(model.predictions[skip:]), tags=tags, xff=s.xff))
    return out


def _bands(ctx, seriesList, delta, bootstrapInterval, seasonality) -> list[Series]:
    out = []
    for s, model, skip, preview in _analysed(ctx, seriesList, bootstrapInterval, seasonality):
        forecast = _array(model.predictions[skip:])
        spread = delta * _array(model.deviations[skip:])
        tags = dict(s.tags, holtWintersForecast="1", holtWintersDeviation="1", holtWintersConfidenceUpper="1",
                    holtWintersConfidenceLower="1")
        for kind, values in (("Lower", forecast - spread), ("Upper", forecast + spread)):
            out.append(Series(f"holtWintersConfidence{kind}({s.name})", s.start + preview, s.end, s.step, values,
                              tags=dict(tags), path_expression=s.path_expression, xff=s.xff))
    return out


@render_function("Calculate", [SERIES, DELTA, BOOTSTRAP, SEASONALITY])
def holtWintersConfidenceBands(ctx, seriesList, delta=3, bootstrapInterval="7d", seasonality="1d"):
    """Two series for each input, its lower and upper confidence band: the Holt-Winters forecast
    minus and plus ``delta`` (default 3) times the smoothed deviation of the actual values from
    it. The model (Holt-Winters triple exponential smoothing: level, trend and a season of
    ``seasonality``, default ``1d``) is trained on ``bootstrapInterval`` (default ``7d``) of data
    read from before ``from``.

    Example:

    .. code-block:: none

      &target=holtWintersConfidenceBands(Server.instance01.threads.busy,3,'7d','1d')
    """
    return _bands(ctx, seriesList, delta, bootstrapInterval, seasonality)


@render_function("Calculate", [SERIES, DELTA, BOOTSTRAP, SEASONALITY])
def holtWintersConfidenceArea(ctx, seriesList, delta=3, bootstrapInterval="7d", seasonality="1d"):
    """The Holt-Winters confidence bands of one series (see holtWintersConfidenceBands: ``delta``,
    ``bootstrapInterval``, ``seasonality``) drawn as a filled area between them (areaBetween),
    named ``holtWintersConfidenceArea(path)``.

    Example:

    .. code-block:: none

      &target=holtWintersConfidenceArea(Server.instance01.threads.busy,3,'7d','1d')
    """
    out = []
    for s in areaBetween(ctx, _bands(ctx, seriesList, delta, bootstrapInterval, seasonality)):
        tags = {k: v for k, v in s.tags.items() if k != "areaBetween"}
        tags["holtWintersConfidenceArea"] = "1"
        out.append(s.copy(name=s.name.replace("areaBetween", "holtWintersConfidenceArea"), tags=tags))
    return out


@render_function("Calculate", [SERIES, DELTA, BOOTSTRAP, SEASONALITY])
def holtWintersAberration(ctx, seriesList, delta=3, bootstrapInterval="7d", seasonality="1d"):
    """How far each value lies outside its Holt-Winters confidence bands (``delta`` times the
    smoothed deviation around the forecast): the value minus the upper band where it is above
    it, minus the lower band where it is below it (negative), 0 inside the bands or for nulls.
    The model (Holt-Winters triple exponential smoothing: level, trend and a season of
    ``seasonality``, default ``1d``) is trained on ``bootstrapInterval`` (default ``7d``) of data
    read from before ``from``.

    Example:

    .. code-block:: none

      &target=holtWintersAberration(Server.instance01.threads.busy,3,'7d','1d')
    """
    bands = {b.name: b.values for b in _bands(ctx, seriesList, delta, bootstrapInterval, seasonality)}
    out = []
    for s in seriesList:
        lower = bands.get(f"holtWintersConfidenceLower({s.name})")
        upper = bands.get(f"holtWintersConfidenceUpper({s.name})")
        if lower is None or upper is None:
            raise InputError(f"holtWintersAberration: no data before from to model {s.name}")
        actual = s.points()
        n = len(actual)
        if len(lower) < n:
            raise InputError(f"holtWintersAberration: the bands of {s.name} are shorter than the series")
        lo, hi = lower[:n], upper[:n]
        values = np.where(np.isnan(actual), 0.0,
                          np.where(actual > hi, actual - hi, np.where(actual < lo, actual - lo, 0.0)))
        out.append(Series(f"holtWintersAberration({s.name})", s.start, s.end, s.step, values,
                          tags=dict(s.tags, holtWintersAberration="1"),
                          xff=s.xff))
    return out


def least_squares(values: np.ndarray, start: int, step: int) -> tuple[float, float] | None:
    """``(slope per second, value at epoch 0)`` of the line fitted to the non-null values,
    None when fewer than two distinct points define it."""
    index = np.flatnonzero(~np.isnan(values))
    known = values[index].tolist()
    positions = index.tolist()
    n = len(known)
    sum_i, sum_v = sum(positions), sum(known)
    sum_ii = sum(i * i for i in positions)
    sum_iv = sum(i * v for i, v in zip(positions, known))
    denominator = float(n * sum_ii - sum_i * sum_i)
    if denominator == 0:
        return None
    slope = (n * sum_iv - sum_i * sum_v) / denominator / step
    return slope, (sum_ii * sum_v - sum_iv * sum_i) / denominator - slope * start


@render_function("Calculate", [SERIES, Param("startSourceAt", "date"), Param("endSourceAt", "date")])
def linearRegression(ctx, seriesList, startSourceAt=None, endSourceAt=None):
    """The least-squares straight line through each series' values between ``startSourceAt`` and
    ``endSourceAt`` (at-time syntax; default: the requested range), drawn over the requested
    range: a trend to extrapolate. Series with fewer than two values are dropped.

    Example:

    .. code-block:: none

      &target=linearRegression(Server.instance01.threads.busy, '-1d')
      &target=linearRegression(Server.instance*.threads.busy, "00:00 20140101","11:59 20140630")
    """
    start = ctx.start if startSourceAt is None else ctx.at_time(startSourceAt)
    end = ctx.end if endSourceAt is None else ctx.at_time(endSourceAt)
    if start >= end:
        raise InputError(f"linearRegression: the source range {start}..{end} is empty")
    sources = ctx.shifted(start=start, end=end).reevaluate_first_argument()
    out = []
    for source, s in zip(sources, seriesList):
        fit = least_squares(source.points(), source.start, source.step)
        if fit is None:
            continue
        slope, intercept = fit
        name = f"linearRegression({s.name}, {start}, {end})"
        times = s.start + s.step * np.arange(len(s), dtype=np.float64)
        out.append(Series(name, s.start, s.end, s.step, intercept + times * slope,
                          tags=dict(s.tags, linearRegressions=f"{start}, {end}"), xff=s.xff))
    return out
