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
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from django_statsd_push.server.aggregate import Aggregator

COUNTER = "c"
TIMER = "ms"
GAUGE = "g"
SET = "s"

_INF = math.inf
_NAN = math.nan
# JavaScript's StrDecimalLiteral (what Number() accepts besides hex/octal/binary/Infinity).
_JS_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_JS_RADIX = re.compile(r"0([xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)\Z")
_RATE_DIGITS = re.compile(r"[0-9.]+")
_RADIX_BASE = {"x": 16, "o": 8, "b": 2}


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


def js_number(text: str) -> float | None:
    """JavaScript ``Number(text)`` for a non-empty string; ``None`` where JS gives NaN.

    Infinity is returned as ``inf``; callers reject non-finite values.
    """
    try:
        value = float(text)
    except ValueError:
        stripped = text.strip()
        if not stripped:
            return 0.0
        match = _JS_RADIX.match(stripped)
        if match:
            return float(int(match.group(1)[1:], _RADIX_BASE[match.group(1)[0].lower()]))
        return None
    # float() is more liberal than Number(): "1_000", "nan", "inf", "infinity", and
    # digits of other scripts ("١٢").
    if value != value or value in (_INF, -_INF) or "_" in text or not text.isascii():
        stripped = text.strip()
        if stripped in ("Infinity", "+Infinity"):
            return _INF
        if stripped == "-Infinity":
            return -_INF
        if not _JS_DECIMAL.match(stripped):
            return None
    return value


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


def parse(datagram: bytes | str) -> Parsed:
    """Parse one datagram (or one newline-framed TCP chunk) into samples.

    Never raises on bad input: bad values are counted in ``Parsed.bad_lines``.
    """
    text = datagram.decode("utf-8", "replace") if isinstance(datagram, bytes) else datagram
    samples: list[Sample] = []
    lines = bad = 0
    for line in text.split("\n"):
        if line:
            lines += 1
            bad += parse_line(line, samples)
    return Parsed(samples, lines, bad)


def fold(datagram: bytes | str, aggregator: Aggregator) -> tuple[int, int]:
    """Parse a datagram straight into an aggregator; returns ``(lines, bad_lines)``.

    The same rules as ``parse``, specialised for the hot path: a line of the common
    shape ``name:value|c`` (``|ms``, ``|g``, ``|s``) for an untagged series already in
    the tables is added to the plain dicts directly, with no ``Sample`` made. Any other
    line (tags, a rate, several values, a new series, a number ``float()`` and
    JavaScript might disagree on) goes through ``parse_line`` and ``aggregator.add``,
    in order. ``tests/server/test_protocol.py`` holds the two paths together.
    """
    if not datagram.isascii():  # non-ASCII digits and spaces: float() != Number()
        parsed = parse(datagram)
        for sample in parsed.samples:
            aggregator.add(sample)
        return parsed.lines, parsed.bad_lines
    text = datagram.decode("ascii") if isinstance(datagram, bytes) else datagram
    tagged = "|#" in text  # a tag could hide anywhere in a line: no shortcut then
    counters, timers, timer_counts = aggregator.counters, aggregator.timers, aggregator.timer_counts
    gauges, sets = aggregator.gauges, aggregator.sets
    fast_gauges = not aggregator.track_gauge_ttl
    add = aggregator.add
    samples: list[Sample] = []
    lines = bad = 0
    for line in text.split("\n"):
        if not line:
            continue
        lines += 1
        if not tagged:
            name, _, rest = line.partition(":")
            value, _, type_ = rest.partition("|")
            # Counters first (most lines are), and the dict lookup before float():
            # a line for a new series goes the slow way whatever its value. Each
            # branch parses its own value: one shared parse after the lookups measured
            # about 2% slower on counters (it has to branch on the type twice).
            if type_ == "c":
                old = counters.get(name)
                if old is not None and "_" not in value:
                    try:
                        v = float(value)
                    except ValueError:
                        v = _NAN
                    if v - v == 0:  # finite, and a number for JavaScript too
                        counters[name] = old + v
                        continue
            elif type_ == "ms":
                values = timers.get(name)
                if values is not None and "_" not in value:
                    try:
                        v = float(value)
                    except ValueError:
                        v = _NAN
                    if v - v == 0 and v >= 0:
                        values.append(v)
                        timer_counts[name] += 1.0
                        continue
            elif type_ == "g":
                if fast_gauges and "_" not in value:
                    old = gauges.get(name)
                    if old is not None:
                        try:
                            v = float(value)
                        except ValueError:
                            v = _NAN
                        if v - v == 0:
                            gauges[name] = old + v if value[0] in "+-" else v
                            continue
            elif type_ == "s":
                members = sets.get(name)
                if members is not None and ":" not in value:
                    members.add(value or "0")
                    continue
        bad += parse_line(line, samples)
        if samples:
            for sample in samples:
                add(sample)
            samples.clear()
    return lines, bad
