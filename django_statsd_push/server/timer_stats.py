"""etsy statsd 0.9's per-timer statistics, computed from one flush's sorted values.

Kept apart from the Carbon formatting because the numbers (percentile subsets,
histogram bins) are etsy's definition, not Graphite's. Arithmetic follows etsy's order
(cumulative sums over sorted values, ``Math.round``) so the floats come out identical.

One deliberate difference: for a negative ("top") threshold that covers every value,
etsy reads ``cumulativeValues[-1]`` and writes NaN; here that sum starts at 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from django_statsd_push.server.js import js_round, js_str

Bins = Sequence[float | str]  # numbers, and 'inf' for the open last bin
_PERCENT_SUFFIX = re.compile(r"_(top)?\d+\Z")


def clean_name(number: float | str) -> str:
    """``99.5`` -> ``99_5``, ``-10`` -> ``top10`` (etsy replaces the first of each only)."""
    text = number if isinstance(number, str) else js_str(number)
    return text.replace(".", "_", 1).replace("-", "top", 1)


def timer_stats(
    values: Sequence[float],
    count: float,
    interval: float,
    percent_thresholds: Sequence[float] = (90,),
    bins: Bins = (),
    calculated: Sequence[str] | None = None,
) -> dict[str, float | dict[str, float]]:
    """The stats etsy writes for one timer: ``{"count_90": ..., "histogram": {...}}``.

    ``values`` must be sorted; ``count`` is the sample-rate corrected count.
    """
    data: dict[str, float | dict[str, float]] = {}
    n = len(values)
    if not n:
        data["count"] = data["count_ps"] = 0
        return _filter(data, calculated)
    lo, hi = values[0], values[-1]
    cumulative, cumulative_sq = [lo], [lo * lo]
    for v in values[1:]:
        cumulative.append(v + cumulative[-1])
        cumulative_sq.append(v * v + cumulative_sq[-1])

    total, total_sq, mean, boundary = lo, lo * lo, lo, hi
    for pct in percent_thresholds:
        in_threshold = n
        if n > 1:
            in_threshold = js_round(abs(pct) / 100 * n)
            if in_threshold == 0:
                continue
            if pct > 0:
                boundary = values[in_threshold - 1]
                total = cumulative[in_threshold - 1]
                total_sq = cumulative_sq[in_threshold - 1]
            else:
                boundary = values[n - in_threshold]
                before = n - in_threshold - 1
                total = cumulative[-1] - (cumulative[before] if before >= 0 else 0)
                total_sq = cumulative_sq[-1] - (cumulative_sq[before] if before >= 0 else 0)
            mean = total / in_threshold
        suffix = clean_name(pct)
        data["count_" + suffix] = in_threshold
        data["mean_" + suffix] = mean
        data[("upper_" if pct > 0 else "lower_") + suffix] = boundary
        data["sum_" + suffix] = total
        data["sum_squares_" + suffix] = total_sq

    total, total_sq = cumulative[-1], cumulative_sq[-1]
    mean = total / n
    diffs = 0.0
    for v in values:
        diffs += (v - mean) * (v - mean)
    mid = n // 2
    data["std"] = math.sqrt(diffs / n)
    data["upper"] = hi
    data["lower"] = lo
    data["count"] = count
    data["count_ps"] = count / interval
    data["sum"] = total
    data["sum_squares"] = total_sq
    data["mean"] = mean
    data["median"] = values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2
    if bins:
        histogram: dict[str, float] = {}
        i = 0
        for edge in bins:
            freq = 0
            while i < n and (edge == "inf" or values[i] < edge):  # type: ignore[operator]
                freq += 1
                i += 1
            histogram["bin_" + (edge if isinstance(edge, str) else js_str(edge)).replace(".", "_", 1)] = freq
        data["histogram"] = histogram
    return _filter(data, calculated)


def _filter(data: dict, calculated: Sequence[str] | None) -> dict:
    """etsy's ``calculatedTimerMetrics``: keep only the listed stats (``upper_percent`` ...)."""
    if not calculated:
        return data
    return {k: v for k, v in data.items() if _PERCENT_SUFFIX.sub("_percent", k, count=1) in calculated}
