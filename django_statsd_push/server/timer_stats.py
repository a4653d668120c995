"""etsy statsd 0.9's per-timer statistics, computed for many timers at once.

Kept apart from the Carbon formatting because the numbers (percentile subsets,
histogram bins) are etsy's definition, not Graphite's. At half a million names the
per-timer Python loop was most of a flush, so ``timer_table`` takes every timer with
the same number of values as the rows of one NumPy array and computes each stat as a
column. The floats still come out bit for bit as etsy's: float64 arithmetic in the same
order (cumulative sums left to right with ``add.accumulate``, never ``sum``, whose
pairwise order differs), and every count derived from the sample count alone (the
values in a percentile, the median's position) is the same for the whole group.

One deliberate difference: for a negative ("top") threshold that covers every value,
etsy reads ``cumulativeValues[-1]`` and writes NaN; here that sum starts at 0.

NumPy is imported when a flush first needs it, not with the module: the daemon (and
so ``statsd-push bridge``, which runs it without a Carbon sink) imports this module
whether or not it writes to Carbon.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import chain
from typing import TYPE_CHECKING

from django_statsd_push.server.js import js_round, js_str

if TYPE_CHECKING:
    import numpy

Bins = Sequence[float | str]  # numbers, and 'inf' for the open last bin
_PERCENT_SUFFIX = re.compile(r"_(top)?\d+\Z")


def clean_name(number: float | str) -> str:
    """``99.5`` -> ``99_5``, ``-10`` -> ``top10`` (etsy replaces the first of each only)."""
    text = number if isinstance(number, str) else js_str(number)
    return text.replace(".", "_", 1).replace("-", "top", 1)


def timer_table(
    rows: Sequence[Sequence[float]],
    counts: Sequence[float],
    interval: float,
    percent_thresholds: Sequence[float] = (90,),
    bins: Bins = (),
    calculated: Sequence[str] | None = None,
) -> dict[str, numpy.ndarray]:
    """The stats etsy writes for timers that each have the same number of values.

    ``rows[i]`` is timer i's values, in any order; ``counts[i]`` its sample-rate
    corrected count. Returns ``{stat: column}`` in etsy's order, each column an array
    in row order; histogram bins are named ``histogram.bin_10`` (the Graphite path
    below the timer).
    """
    import numpy as np

    k = len(rows)
    n = len(rows[0]) if k else 0
    data: dict[str, numpy.ndarray] = {}
    if not n:
        data["count"] = data["count_ps"] = np.zeros(k, dtype=np.int64)
        return _filter(data, calculated)
    values = np.sort(_matrix(rows, k, n), axis=1)
    squares = values * values
    cumulative = np.add.accumulate(values, axis=1)
    cumulative_sq = np.add.accumulate(squares, axis=1)

    for pct in percent_thresholds:
        in_threshold = js_round(abs(pct) / 100 * n) if n > 1 else 1
        if in_threshold == 0:
            continue
        if pct > 0:
            boundary = values[:, in_threshold - 1]
            total = cumulative[:, in_threshold - 1]
            total_sq = cumulative_sq[:, in_threshold - 1]
        else:
            boundary = values[:, n - in_threshold]
            total, total_sq = cumulative[:, -1], cumulative_sq[:, -1]
            before = n - in_threshold - 1
            if before >= 0:
                total, total_sq = total - cumulative[:, before], total_sq - cumulative_sq[:, before]
        suffix = clean_name(pct)
        data["count_" + suffix] = np.full(k, in_threshold)
        data["mean_" + suffix] = total / in_threshold
        data[("upper_" if pct > 0 else "lower_") + suffix] = boundary
        data["sum_" + suffix] = total
        data["sum_squares_" + suffix] = total_sq

    total = cumulative[:, -1]
    mean = total / n
    deviations = values - mean[:, None]
    diffs = np.add.accumulate(deviations * deviations, axis=1)[:, -1]
    count = np.array(counts, dtype=np.float64)
    mid = n // 2
    data["std"] = np.sqrt(diffs / n)
    data["upper"] = values[:, -1]
    data["lower"] = values[:, 0]
    data["count"] = count
    data["count_ps"] = count / interval
    data["sum"] = total
    data["sum_squares"] = cumulative_sq[:, -1]
    data["mean"] = mean
    data["median"] = values[:, mid] if n % 2 else (values[:, mid - 1] + values[:, mid]) / 2
    # etsy walks the sorted values once, bin after bin: a bin takes the values below its
    # edge not taken by an earlier bin (so a bin after a larger edge gets 0).
    taken = np.zeros(k, dtype=np.int64)
    for edge in bins:
        below = np.full(k, n) if edge == "inf" else (values < edge).sum(axis=1)
        reached = np.maximum(taken, below)
        name = "histogram.bin_" + (edge if isinstance(edge, str) else js_str(edge)).replace(".", "_", 1)
        data[name] = (reached - taken)
        taken = reached
    return _filter(data, calculated)


def _matrix(rows: Sequence[Sequence[float]], k: int, n: int) -> numpy.ndarray:
    """``rows`` as one k x n float64 array. The aggregator's ``array('d')`` rows are
    copied as bytes (one ``join``, no float object per value: at 666,000 values a
    flush that was most of the timers' time); other sequences value by value."""
    import numpy as np

    if getattr(rows[0], "typecode", None) == "d":
        flat = np.frombuffer(b"".join(rows), dtype=np.float64)  # type: ignore[arg-type]
    else:  # tuples, lists (tests, other producers)
        flat = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=k * n)
    return flat.reshape(k, n)


def timer_stats(
    values: Sequence[float],
    count: float,
    interval: float,
    percent_thresholds: Sequence[float] = (90,),
    bins: Bins = (),
    calculated: Sequence[str] | None = None,
) -> dict[str, float | dict[str, float]]:
    """One timer's stats as etsy's ``timer_data`` holds them: ``{"count_90": ..., "histogram": {...}}``."""
    data: dict[str, float | dict[str, float]] = {}
    for stat, column in timer_table([values], [count], interval, percent_thresholds, bins, calculated).items():
        group, _, sub = stat.partition(".")
        if sub:
            data.setdefault(group, {})[sub] = column[0].item()  # type: ignore[index]
        else:
            data[stat] = column[0].item()
    return data


def _filter(data: dict, calculated: Sequence[str] | None) -> dict:
    """etsy's ``calculatedTimerMetrics``: keep only the listed stats (``upper_percent`` ...)."""
    if not calculated:
        return data
    return {k: v for k, v in data.items()
            if _PERCENT_SUFFIX.sub("_percent", k.partition(".")[0], count=1) in calculated}
