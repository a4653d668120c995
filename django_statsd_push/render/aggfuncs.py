"""Null-aware reductions over NumPy arrays, with graphite-web's "safe" semantics.

NaN stands for graphite's None. Each reduction works along one axis of a 2-D array
(rows of a consolidation, columns of a cross-series aggregate) and returns what
graphite's ``safe*`` helper returns for that slice — including its quirks: ``count``
of an all-null slice is 0, ``multiply`` is null as soon as one value is, ``diff`` is
the first non-null value minus all the others, ``stddev`` is the population one.
Callers that apply an xFilesFactor mask all-null slices themselves.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from .errors import InputError


def _count(a: np.ndarray, axis: int) -> np.ndarray:
    return np.count_nonzero(~np.isnan(a), axis=axis)


def _nan_where_empty(result: np.ndarray, a: np.ndarray, axis: int) -> np.ndarray:
    result = np.asarray(result, dtype=np.float64)
    return np.where(_count(a, axis) > 0, result, np.nan)


def _sum(a, axis):
    return _nan_where_empty(np.nansum(a, axis=axis), a, axis)


def _average(a, axis):
    count = _count(a, axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.nansum(a, axis=axis) / np.maximum(count, 1), np.nan)


def _null_if_empty(func):
    """NumPy's max/min/median/argmax refuse a slice of length 0; graphite's helpers give None."""
    def wrapped(a, axis):
        if a.shape[axis] == 0:
            return np.full(a.shape[1 - axis], np.nan)
        return func(a, axis)

    return wrapped


@_null_if_empty
def _avg_zero(a, axis):
    return np.nansum(a, axis=axis) / a.shape[axis]


def _quiet(func):
    def wrapped(a, axis):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return func(a, axis)

    return wrapped


def _first_last(a, axis, last):
    valid = ~np.isnan(a)
    if last:
        a, valid = np.flip(a, axis=axis), np.flip(valid, axis=axis)
    idx = np.expand_dims(np.argmax(valid, axis=axis), axis)
    picked = np.take_along_axis(a, idx, axis=axis).squeeze(axis)
    return np.where(valid.any(axis=axis), picked, np.nan)


@_null_if_empty
def _first(a, axis):
    return _first_last(a, axis, last=False)


@_null_if_empty
def _last(a, axis):
    return _first_last(a, axis, last=True)


def _diff(a, axis):
    first = _first(a, axis)
    return _nan_where_empty(first - (np.nansum(a, axis=axis) - np.nan_to_num(first)), a, axis)


def _multiply(a, axis):
    return np.prod(a, axis=axis)  # NaN propagates: None if any factor is None


@_null_if_empty
def _range(a, axis):
    return np.fmax.reduce(a, axis=axis) - np.fmin.reduce(a, axis=axis)


@_null_if_empty
def _fmax(a, axis):
    return np.fmax.reduce(a, axis=axis)


@_null_if_empty
def _fmin(a, axis):
    return np.fmin.reduce(a, axis=axis)


REDUCERS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "average": _average,
    "avg_zero": _avg_zero,
    "median": _null_if_empty(_quiet(lambda a, axis: np.nanmedian(a, axis=axis))),
    "sum": _sum,
    "min": _fmin,
    "max": _fmax,
    "diff": _diff,
    "stddev": _quiet(lambda a, axis: _nan_where_empty(np.nanstd(a, axis=axis), a, axis)),
    "count": lambda a, axis: _count(a, axis).astype(np.float64),
    "range": _range,
    "multiply": _multiply,
    "last": _last,
}
ALIASES = {"rangeOf": "range", "avg": "average", "total": "sum", "current": "last"}
AGG_FUNC_NAMES: list[str] = list(REDUCERS) + list(ALIASES)
#: consolidateBy()/maxDataPoints functions (graphite's TimeSeries consolidation table)
CONSOLIDATION_FUNCS = ["sum", "average", "avg", "avg_zero", "min", "max", "first", "last"]


def canonical(func: str) -> str:
    """``sumSeries`` -> ``sum``, ``avg`` -> ``average``; InputError for anything unknown."""
    name = func[:-6] if func.endswith("Series") else func
    name = ALIASES.get(name, name)
    if name not in REDUCERS:
        raise InputError(f"unsupported aggregation function: {func}")
    return name


def reduce(a: np.ndarray, func: str, axis: int) -> np.ndarray:
    return REDUCERS[canonical(func)](a, axis)


def reduce_series(values: np.ndarray, func: str) -> float | int | None:
    """One value for a whole series (highest/lowest/sortBy/filterSeries keys); a count is
    an int, as graphite's safeLen, because legends and names print it."""
    out = float(reduce(values.reshape(1, -1), func, 1)[0]) if len(values) else None
    if out is None or np.isnan(out):
        return None
    return int(out) if canonical(func) == "count" else out


def xff_mask(a: np.ndarray, axis: int, xff: float, total: int | None = None) -> np.ndarray:
    """True where a slice has some non-null values and enough of them (graphite's ``xff``)."""
    count = _count(a, axis)
    total = a.shape[axis] if total is None else total
    if total == 0:
        return np.zeros(count.shape, dtype=bool)
    return (count > 0) & (count / total >= xff)


def consolidate(values: np.ndarray, per_point: int, func: str, xff: float) -> np.ndarray:
    """Group every ``per_point`` values into one (TimeSeries.consolidate + iteration).

    The last, partial group is kept; its xFilesFactor is still measured against a full
    group, as graphite-web does.
    """
    if per_point <= 1 or len(values) == 0:
        return values
    n = len(values)
    groups = -(-n // per_point)
    padded = np.full(groups * per_point, np.nan)
    padded[:n] = values
    rows = padded.reshape(groups, per_point)
    if func == "first":
        out = _first(rows, 1)
    elif func == "avg_zero":
        sizes = np.full(groups, per_point, dtype=np.float64)
        sizes[-1] = n - (groups - 1) * per_point
        out = np.nansum(rows, axis=1) / sizes
    else:
        out = reduce(rows, func, 1)
    return np.where(xff_mask(rows, 1, xff, per_point), out, np.nan)
