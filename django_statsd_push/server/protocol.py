"""The statsd line protocol, parsed exactly once: raw datagram -> samples.

This is the only parser of the wire format on the daemon side (the client side
formats with pystatsd). It follows etsy statsd 0.9's ``stats.js`` rules so that the
same packets give the same numbers:

* a datagram holds lines separated by ``\\n``; empty lines are skipped, every other
  line counts as one *metric received* (``lines``);
* a line is ``name:value|type[|@rate][|#tag,tag...]``; one name may carry several
  values (``name:1|c:2|ms``), each value checked on its own;
* ``|#`` starts DogStatsD tags; they are kept as the raw strings (``"env:prod"``)
  in ``Sample.tags``, separately from the name;
* a line without ``:`` means value ``1`` without a type, which is a bad line;
* any type other than ``ms``, ``g`` and ``s`` is a counter (etsy counts ``h`` and
  unknown types as counters); ``Sample.type`` keeps the raw type so a sink that
  knows DogStatsD (``h``, ``d``) can tell them apart;
* numbers follow JavaScript's ``Number()`` (whitespace trimmed, ``0x`` hex allowed);
  timers must be ``>= 0``; gauges starting with ``+``/``-`` are deltas;
* a bad value is counted in ``bad_lines`` and skipped, never raised.

Deliberate differences from etsy, where etsy crashes or writes garbage: a value or
sample rate that is not finite, a sample rate of 0, or a rate etsy cannot read
(``@+0.5`` kills etsy's process) is a bad line here.

The names stay RAW: etsy's sanitising (``my metric/x`` -> ``my_metric-x``) is a
Graphite concern done by the Carbon sink, because the Prometheus bridge needs the
original names and tags.

``Sample`` fields:

``name``   raw metric name (``str``, decoded as UTF-8 with replacement)
``tags``   tuple of raw DogStatsD tag strings in the order sent (``()`` if none)
``value``  ``float`` for counters, timers and gauges; ``str`` for sets
``type``   the raw type with surrounding whitespace removed (``"c"``, ``"ms"``, ``"g"``,
           ``"s"``, ``"h"``, ...); use ``kind`` for etsy's meaning
``rate``   sample rate (``1.0`` when absent)
``delta``  ``True`` for a gauge written as ``+N``/``-N`` (add to the current value)
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from django_statsd_push.server.js import js_number

COUNTER = "c"
TIMER = "ms"
GAUGE = "g"
SET = "s"

_INF = math.inf
_RATE_DIGITS = re.compile(r"[0-9.]+")


class Sample(NamedTuple):
    name: str
    tags: tuple[str, ...]
    value: float | str
    type: str
    rate: float = 1.0
    delta: bool = False

    @property
    def kind(self) -> str:
        """etsy's meaning of the type: ``c``, ``ms``, ``g`` or ``s``."""
        return kind_of(self.type)


class Parsed(NamedTuple):
    samples: list[Sample]
    lines: int
    bad_lines: int


def kind_of(type_: str) -> str:
    return type_ if type_ in (TIMER, GAUGE, SET) else COUNTER


def _finite(text: str) -> float | None:
    """A value for a sample: ``Number(text)`` when it is finite, else ``None``.

    The fast path (plain decimal) is one ``float()`` call and two comparisons.
    """
    try:
        value = float(text)
    except ValueError:
        value = js_number(text) if text else None
        if value is None:
            return None
    if "_" in text or not -_INF < value < _INF or not text.isascii():
        value = js_number(text)
        if value is None or not -_INF < value < _INF:
            return None
    return value


def _rate(field: str) -> float | None:
    """The sample rate in ``@0.1``; ``None`` when etsy rejects it (or crashes on it)."""
    if len(field) < 2 or field[0] != "@":
        return None
    number = field[1:]
    if number[0] == "-" or js_number(number) is None:
        return None
    match = _RATE_DIGITS.match(number)
    if match is None:
        return None
    rate = js_number(match.group())
    if rate is None or not 0 < rate < _INF:
        return None
    return rate


def parse_line(line: str, out: list[Sample]) -> int:
    """Append the samples of one non-empty line to ``out``; return how many values were bad."""
    tags: tuple[str, ...] = ()
    if "|#" in line:
        parts = line.split("|#")
        line = parts[0]
        if parts[1]:
            tags = tuple(parts[1].split(","))
    bits = line.split(":")
    name = bits[0]
    bad = 0
    for bit in bits[1:] if len(bits) > 1 else ("1",):
        fields = bit.split("|")
        if len(fields) < 2:
            bad += 1
            continue
        rate = 1.0
        if len(fields) > 2:
            parsed_rate = _rate(fields[2])
            if parsed_rate is None:
                bad += 1
                continue
            rate = parsed_rate
        type_ = fields[1].strip()
        raw = fields[0]
        if type_ == SET:
            out.append(Sample(name, tags, raw or "0", type_, rate, False))
            continue
        value = _finite(raw) if raw else None
        if value is None or (type_ == TIMER and value < 0):
            bad += 1
            continue
        delta = type_ == GAUGE and raw[0] in "+-"
        out.append(Sample(name, tags, value, type_, rate, delta))
    return bad


def parse(datagram: bytes | bytearray | str) -> Parsed:
    """Parse one datagram (or one newline-framed TCP chunk) into samples.

    Never raises on bad input: bad values are counted in ``Parsed.bad_lines``.
    """
    text = datagram if isinstance(datagram, str) else datagram.decode("utf-8", "replace")
    samples: list[Sample] = []
    lines = bad = 0
    for line in text.split("\n"):
        if line:
            lines += 1
            bad += parse_line(line, samples)
    return Parsed(samples, lines, bad)
