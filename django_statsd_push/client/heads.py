"""The fast path's cache of line heads: ``stat -> (head, tail, incr line)``.

Why: rendering a name (prefix, sanitising, tags) and pystatsd's ``_prepare`` cost more
than the rest of a metric together, and the same few hundred names are sent on every
request. So a metric whose name was seen before (rate 1) is written as
``head + value text + tail``, where ``head`` is pystatsd's own line for the rendered name
with an empty value (``"app.cache.default.get:"``), the value text is the expression
pystatsd's ``timing``/``incr`` use (``TIMING_VALUE``, ``COUNT_VALUE``) and ``tail``
carries DogStatsD tags. tests/client/test_fast_path.py compares every such line with
pystatsd's ``StatsClientBase`` output for the same call.
"""

from __future__ import annotations

from typing import Any

from statsd.client.base import StatsClientBase

from django_statsd_push import names

__all__ = ["COUNT_VALUE", "HEADS_MAXLEN", "TIMING_VALUE", "Heads"]

HEADS_MAXLEN = 8192
# pystatsd's value text (StatsClientBase.timing and .incr).
TIMING_VALUE = "%0.6f|ms"
COUNT_VALUE = "%s|c"

STAT_TYPES = (str, names.Metric)
_render = names.render
_format = StatsClientBase._prepare  # pystatsd's line formatting (and sampling)


class _Unprefixed:
    """What pystatsd's ``_prepare`` reads from its ``self``: no prefix (names.render adds it)."""

    _prefix = None


class Heads(dict):
    """``stat -> (head, tail, incr line)`` for one settings state (prefix, tag format).

    One dict per state, so a changed prefix or tag format can never reuse an old head;
    bounded like ``names.render``'s cache. ``memo`` holds other modules' caches of lines
    built from these heads (the middleware's per-route lines): they go with the heads.
    """

    __slots__ = ("prefix", "tag_format", "memo")

    def __init__(self, prefix: str | None, tag_format: str | None) -> None:
        super().__init__()
        self.prefix, self.tag_format = prefix, tag_format
        self.memo: dict[Any, Any] = {}

    def __missing__(self, stat: Any) -> tuple[str, str, str]:
        if not isinstance(stat, STAT_TYPES):
            raise KeyError(stat)  # the slow path turns it into a string first
        name, tail, _ = _render(stat, self.prefix, self.tag_format)
        head = _format(_Unprefixed, name, "", 1)  # type: ignore[arg-type]
        entry = (head, tail, head + COUNT_VALUE % 1 + tail)
        if len(self) >= HEADS_MAXLEN:
            self.clear()
        self[stat] = entry
        return entry
