"""The store's series as Prometheus text format 0.0.4, rendered incrementally.

``prometheus_client.generate_latest`` spends ~4.7 µs on every line, re-escaping the
same label set for each of a histogram's 14 lines on every scrape: 10k histogram
series took ~0.9 s. Here the constant part of every line (sample name, escaped label
set with ``le``/``quantile`` in its sorted place) is built once per series into a
``%``-template; a render only formats the values (prometheus_client's
``floatToGoString``), and a series whose values did not change since the last render
reuses its text. HELP/TYPE lines come from ``generate_latest`` itself, once per family.

prometheus_client's name and label-value escapers are not called: they are private or
absent in part of the supported range (``_escape`` changed signature after 0.22, the
name escapers appeared in 0.22). Names need no escaping (the mapping makes every metric
and label name a valid legacy name, which prometheus_client writes unchanged), and a
label value takes the text format's three escapes, as generate_latest writes them in
every version. Tests hold the output byte-equal to ``generate_latest`` over the same
store (``tests/bridge/test_exposition.py``, ``test_fuzz.py``), so the speed-up cannot
drift from the format unnoticed.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable

from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.utils import floatToGoString

from django_statsd_push.bridge.store import COUNTER, HISTOGRAM, SUMMARY, Family, Series

__all__ = ["TextRenderer", "quantile_values"]


def quantile_values(family: Family, series: Series, now: float) -> list[float]:
    """A summary's quantiles over the observations of the last ``max_age`` (exact, on a
    bounded window; nearest rank). Drops the observations that aged out."""
    window = series.window
    assert window is not None
    while window and now - window[0][0] > family.max_age:
        window.popleft()
    values = sorted(v for _, v in window)
    if not values:
        return [math.nan] * len(family.quantiles)
    last = len(values) - 1
    return [values[min(last, max(0, math.ceil(q * len(values)) - 1))] for q, _error in family.quantiles]


class _Metrics:
    """The one-method object ``generate_latest`` reads (it only calls ``collect``)."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


def render_metrics(metrics: Iterable[Metric]) -> bytes:
    """prometheus_client's own text for ready-made metric families."""
    return generate_latest(_Metrics(metrics))  # type: ignore[arg-type]


def _line(name: str, labels: str) -> str:
    """One sample line up to its value, as generate_latest's ``sample_line`` writes it,
    with ``%s`` for the value (``labels`` joined, ``%``-doubled)."""
    return f"{name}{{{labels}}} %s\n" if labels else f"{name} %s\n"


class _FamilyText:
    """What every series of one family shares: HELP/TYPE (generate_latest's own, for an
    empty family), the sample and label names, the ``le``/``quantile`` pairs."""

    __slots__ = ("header", "sample", "tails", "bare_tails", "label_names", "at", "extra", "values")

    def __init__(self, family: Family) -> None:
        self.header = render_metrics([Metric(family.name, family.help, family.type)])
        name = family.name
        self.label_names = family.label_names  # sorted, as generate_latest orders them
        self.values = _VALUES.get(family.type, _scalar_values)
        self.extra: list[str] = []
        self.at = 0
        if family.type == HISTOGRAM:
            key, self.sample, bounds = "le", name + "_bucket", [floatToGoString(b) for b in family.buckets] + ["+Inf"]
        elif family.type == SUMMARY:
            key, self.sample, bounds = "quantile", name, [floatToGoString(q) for q, _error in family.quantiles]
        else:
            self.sample = name + "_total" if family.type == COUNTER else name
            self.tails = self.bare_tails = ""  # one line per series
            return
        # the reserved label sorts into the same place on every line of a series
        self.at = bisect_left(family.label_names, key)
        self.extra = [f'{key}="{bound}"' for bound in bounds]
        tails = (name + "_count", name + "_sum")
        self.tails = "".join(_line(tail, "\0") for tail in tails)  # "\0": where the labels go
        self.bare_tails = "".join(_line(tail, "") for tail in tails)

    def template(self, series: Series, escaped: _Escaped) -> str:
        """Every line of one series with a ``%s`` where each value goes, in
        generate_latest's sample order (buckets or quantiles, then ``_count``, ``_sum``)."""
        labels = [f'{name}="{escaped[value]}"' for name, value in zip(self.label_names, series.labels)]
        joined = ",".join(labels)
        if not self.tails:
            return _line(self.sample, joined)
        tails = self.tails.replace("\0", joined) if joined else self.bare_tails  # one pass: labels are not rescanned
        if not self.extra:
            return tails
        before, after = ",".join(labels[: self.at]), ",".join(labels[self.at :])
        head = self.sample + "{" + (before + "," if before else "")
        tail = ("," + after if after else "") + "} %s\n"
        return head + (tail + head).join(self.extra) + tail + tails


def _histogram_values(series: Series, now: float) -> tuple[float, ...]:
    return (*series.buckets, series.count, series.count, series.sum)  # type: ignore[misc]


def _summary_values(series: Series, now: float) -> tuple[float, ...]:
    return (*quantile_values(series.family, series, now), series.count, series.sum)


def _scalar_values(series: Series, now: float) -> tuple[float, ...]:
    return (series.value,)


_VALUES = {HISTOGRAM: _histogram_values, SUMMARY: _summary_values}


class _Formatted(dict[float, bytes]):
    """floatToGoString, remembered for one render (bucket counts repeat a lot). Zeros
    are not remembered: 0.0 == -0.0 as a key, yet they print differently."""

    def __missing__(self, value: float) -> bytes:
        text = floatToGoString(value).encode()
        if value:
            self[value] = text
        return text


class _Escaped(dict[str, str]):
    """Label values as they appear between the quotes (``%``-doubled for the template),
    remembered for one render: values repeat across series (methods, statuses)."""

    def __missing__(self, value: str) -> str:
        text = value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"').replace("%", "%%")
        self[value] = text
        return text


# Per series: (template, the values its text shows, text), UTF-8: ``bytes % values``
# is ~3x faster than ``str %`` and leaves nothing to encode. A tuple of bytes and floats
# drops out of the garbage collector's view; 10k tracked objects per render made the
# collector a visible share of it (a full collection walks the whole store).
_Rendered = tuple[bytes, tuple[float, ...], bytes]


class TextRenderer:
    """Keeps, per live series, its template and its last text; per family its header.

    Not thread-safe: the caller holds the store's lock (the series must not change
    underneath) and renders from one thread at a time.
    """

    def __init__(self) -> None:
        self._series: dict[Series, _Rendered] = {}
        self._families: dict[Family, _FamilyText] = {}

    def render(self, families: Iterable[Family], now: float, on_error: Callable[[Family], None]) -> bytes:
        """The page's part for ``families``, UTF-8. A family that cannot be rendered is
        left out and reported to ``on_error(family)``; the rest of the page stands."""
        old_series, old_families = self._series, self._families
        self._series, self._families = {}, {}
        formatted, escaped = _Formatted(), _Escaped()
        parts: list[bytes] = []
        for family in families:
            mark = len(parts)
            try:
                self._family(family, now, old_series, old_families, parts, formatted, escaped)
            except Exception:  # noqa: BLE001 - one bad family must not fail the scrape
                del parts[mark:]
                on_error(family)
        return b"".join(parts)

    def _family(
        self,
        family: Family,
        now: float,
        old_series: dict[Series, _Rendered],
        old_families: dict[Family, _FamilyText],
        parts: list[bytes],
        formatted: _Formatted,
        escaped: _Escaped,
    ) -> None:
        shared = old_families.get(family)
        if shared is None:
            shared = _FamilyText(family)
        self._families[family] = shared
        parts.append(shared.header)
        append, keep, values_of, fmt = parts.append, self._series, shared.values, formatted.__getitem__
        for series in family.series.values():
            rendered = old_series.get(series)
            if rendered is None:
                rendered = (shared.template(series, escaped).encode(), (), b"")
            values = values_of(series, now)
            # a zero is always re-rendered: 0.0 == -0.0, yet they print differently
            if values != rendered[1] or not values[-1]:
                rendered = (rendered[0], values, rendered[0] % tuple(map(fmt, values)))
            keep[series] = rendered
            append(rendered[2])
